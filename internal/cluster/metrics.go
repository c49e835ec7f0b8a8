package cluster

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are a node's view of the cluster.
type nodeMetrics struct {
	// rtt times requests to other nodes (a stanza for a session there, a
	// kick, a resumption hand-over), by operation and result.
	rtt *prometheus.HistogramVec
}

func newMetrics() nodeMetrics {
	return nodeMetrics{rtt: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bluetick_cluster_request_seconds",
		Help:    "Round trips of requests to other nodes over NATS (op: send, offline, kick, ...; result: ok, error).",
		Buckets: []float64{.0002, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
	}, []string{"op", "result"})}
}

// observe records one request's round trip.
func (m nodeMetrics) observe(op string, start time.Time, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.rtt.WithLabelValues(op, result).Observe(time.Since(start).Seconds())
}

// Collectors are the node's cluster metrics: request round trips, the
// sessions of other nodes it knows (its copy of the directory) and the
// nodes whose heartbeat it sees.
func (n *Node) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		n.m.rtt,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bluetick_cluster_remote_sessions",
			Help: "Sessions on other nodes in this node's copy of the session directory."},
			func() float64 {
				n.mu.RLock()
				defer n.mu.RUnlock()
				c := 0
				for _, es := range n.byUser {
					c += len(es)
				}
				return float64(c)
			}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bluetick_cluster_nodes",
			Help: "Nodes whose heartbeat this node sees, itself included."},
			func() float64 {
				n.mu.RLock()
				defer n.mu.RUnlock()
				c := 1
				for node := range n.lastBeat {
					if node != n.id && n.alive(node) {
						c++
					}
				}
				return float64(c)
			}),
	}
}
