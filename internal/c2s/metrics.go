package c2s

import (
	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/fast"
	"bluetick/internal/metrics"
)

// Collectors are the c2s metrics: sessions by transport and state, logins
// by mechanism, sessions cut for not reading, parked connections.
func (s *Service) Collectors() []prometheus.Collector {
	const name, help = "bluetick_c2s_sessions_cut_total", "Sessions cut because the client did not read: a write made no progress for limits.write_timeout, or limits.max_queue stanzas waited."
	return []prometheus.Collector{
		metrics.Counter(name, help, prometheus.Labels{"reason": "write_timeout"}, metrics.Uint(&s.Stuck)),
		metrics.Counter(name, help, prometheus.Labels{"reason": "max_queue"}, metrics.Uint(&s.Overflowed)),
		s.logins,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "bluetick_c2s_parked_connections",
			Help: "Idle client connections parked on the poller (no goroutine)."}, func() float64 { return float64(s.parkedNow.Load()) }),
		sessionsCollector{s},
	}
}

// newLogins is bluetick_c2s_logins_total.
func newLogins() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bluetick_c2s_logins_total",
		Help: "SASL and SASL2 authentications by mechanism (other: one not offered) and result (ok, failed)."},
		[]string{"mechanism", "result"})
}

// countLogin counts the end of st's authentication exchange. The label is
// the mechanism only when it is one this stream offers (or a FAST one), so
// a client cannot mint label values.
func (s *Service) countLogin(st *stream, result string) {
	m := st.mech
	if !st.offers(m) && !fast.IsMechanism(m) {
		m = "other"
	}
	s.logins.WithLabelValues(m, result).Inc()
}

var sessionsDesc = prometheus.NewDesc("bluetick_c2s_sessions",
	"Client sessions on this node by transport (tcp: without TLS; tls: TCP with STARTTLS or direct TLS; websocket; bosh; none: hibernated, waiting for a XEP-0198 resumption) and state (active; inactive: XEP-0352; hibernated).",
	[]string{"transport", "state"}, nil)

// sessionsCollector counts the node's sessions when scraped.
type sessionsCollector struct{ s *Service }

func (c sessionsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- sessionsDesc }

func (c sessionsCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ transport, state string }
	n := map[key]int{}
	for _, si := range c.s.Sessions() {
		n[key{si.Transport, si.State}]++
	}
	for _, t := range []string{"tcp", "tls", "websocket", "bosh"} {
		for _, st := range []string{"active", "inactive"} {
			ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n[key{t, st}]), t, st)
		}
	}
	ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(n[key{"none", "hibernated"}]), "none", "hibernated")
}
