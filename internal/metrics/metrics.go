// Package metrics holds the one shape most of Bluetick's Prometheus
// metrics take: a counter kept as an atomic on a hot path (a stanza, a
// login, a push), read by client_golang only when /metrics is scraped. The
// hot path pays an atomic add, never a label lookup.
package metrics

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Counter is a counter named name, with help and constant labels (nil for
// none), whose value v reads at scrape time. Several with the same name
// and help and different label values make one metric family.
func Counter(name, help string, labels prometheus.Labels, v func() float64) prometheus.Collector {
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels}, v)
}

// Uint reads an atomic counter as a float for Counter.
func Uint(c *atomic.Uint64) func() float64 {
	return func() float64 { return float64(c.Load()) }
}

// Text is what a scrape of cs alone shows, in the text format, gathered by
// a pedantic registry (which also checks that cs are consistent: one help
// and one set of label names per metric name). Tests use it.
func Text(cs ...prometheus.Collector) (string, error) {
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(multi(cs)); err != nil {
		return "", err
	}
	mfs, err := reg.Gather()
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&b, mf); err != nil {
			return "", err
		}
	}
	return b.String(), nil
}

// multi is several collectors registered as one.
type multi []prometheus.Collector

func (m multi) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range m {
		c.Describe(ch)
	}
}

func (m multi) Collect(ch chan<- prometheus.Metric) {
	for _, c := range m {
		c.Collect(ch)
	}
}

// Kinds counts stanzas by kind: message, presence, iq, and anything else
// (stream management and other nonzas are not counted by their callers).
type Kinds [4]atomic.Uint64

var kindNames = [4]string{"message", "presence", "iq", "other"}

// Add counts one stanza named name.
func (k *Kinds) Add(name string) {
	i := 3
	switch name {
	case "message":
		i = 0
	case "presence":
		i = 1
	case "iq":
		i = 2
	}
	k[i].Add(1)
}

// Stanzas from clients (In, counted as the c2s streams read them) and to
// clients (Out, as the sessions hand them to their connections), for the
// whole process.
var StanzasIn, StanzasOut Kinds

// DeliveryLatency is the time from a message's queuing to a client's
// session (where the router hands it over) to its write to the client's
// connection: what the server adds to a message's way, queueing behind
// other stanzas and a slow reader included.
var DeliveryLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
	Name:    "bluetick_delivery_latency_seconds",
	Help:    "Time from a message queued to a client's session to its write to the connection.",
	Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10},
})

// StanzaCollectors are bluetick_stanzas_total{direction,kind} and the
// delivery latency.
func StanzaCollectors() []prometheus.Collector {
	const name, help = "bluetick_stanzas_total", "Stanzas read from clients (direction=in) and written to them (out), by kind."
	var cs []prometheus.Collector
	for _, d := range []struct {
		dir string
		k   *Kinds
	}{{"in", &StanzasIn}, {"out", &StanzasOut}} {
		for i, kind := range kindNames {
			cs = append(cs, Counter(name, help, prometheus.Labels{"direction": d.dir, "kind": kind}, Uint(&d.k[i])))
		}
	}
	return append(cs, DeliveryLatency)
}
