package admission

import (
	"strings"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	refusedDesc = prometheus.NewDesc("bluetick_connections_refused_total",
		"Connections refused as they were accepted, by listener and reason (per_address, rate, low_fds, accept_error).",
		[]string{"listener", "reason"}, nil)
	openDesc = prometheus.NewDesc("bluetick_connections_open",
		"Connections open on all listeners.", nil, nil)
	limitDesc = prometheus.NewDesc("bluetick_connections_limit",
		"Connections the process takes before refusing new ones (its open-files limit less a reserve).", nil, nil)
	perAddrDesc = prometheus.NewDesc("bluetick_connections_per_address_limit",
		"Connections one address may hold open.", nil, nil)
)

// Describe implements prometheus.Collector.
func (g *Gate) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{refusedDesc, openDesc, limitDesc, perAddrDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (g *Gate) Collect(ch chan<- prometheus.Metric) {
	g.refused.Range(func(k, v any) bool {
		listener, reason, _ := strings.Cut(k.(string), "\x00")
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(v.(*atomic.Uint64).Load()), listener, reason)
		return true
	})
	ch <- prometheus.MustNewConstMetric(openDesc, prometheus.GaugeValue, float64(g.Open()))
	ch <- prometheus.MustNewConstMetric(limitDesc, prometheus.GaugeValue, float64(g.budget))
	ch <- prometheus.MustNewConstMetric(perAddrDesc, prometheus.GaugeValue, float64(g.perIP))
}
