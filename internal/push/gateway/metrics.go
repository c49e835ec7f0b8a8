package gateway

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts pushes per provider; it is a prometheus.Collector
// (served at /metrics by cmd/bluetick).
type Metrics struct {
	mu sync.Mutex
	c  map[metricKey]uint64
}

type metricKey struct{ name, provider, at, reason string }

func newMetrics() *Metrics { return &Metrics{c: map[metricKey]uint64{}} }

var metricHelp = map[string]string{
	"bluetick_push_sent_total":         "Pushes the provider accepted.",
	"bluetick_push_failed_total":       "Pushes given up after retries or refused by the provider.",
	"bluetick_push_unregistered_total": "Devices removed because the provider reported them gone.",
	"bluetick_push_retries_total":      "Retries of pushes after 5xx, 429 or transport errors.",
	"bluetick_push_refused_total":      "Web Push endpoints and webhook URLs refused by the gateway (at=register|send; reason: loopback, private, link_local, cgnat, reserved, unspecified, multicast, ip_form, url, not_allowed, dns).",
}

func (m *Metrics) add(name, provider string) { m.addKey(metricKey{name: name, provider: provider}) }

func (m *Metrics) addKey(k metricKey) {
	m.mu.Lock()
	m.c[k]++
	m.mu.Unlock()
}

func (m *Metrics) sent(p string)         { m.add("bluetick_push_sent_total", p) }
func (m *Metrics) failed(p string)       { m.add("bluetick_push_failed_total", p) }
func (m *Metrics) unregistered(p string) { m.add("bluetick_push_unregistered_total", p) }
func (m *Metrics) retried(p string)      { m.add("bluetick_push_retries_total", p) }
func (m *Metrics) refused(p, at, reason string) {
	m.addKey(metricKey{"bluetick_push_refused_total", p, at, reason})
}

// Get returns one counter (for tests); for bluetick_push_refused_total,
// the sum over its at and reason labels.
func (m *Metrics) Get(name, provider string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n uint64
	for k, v := range m.c {
		if k.name == name && k.provider == provider {
			n += v
		}
	}
	return n
}

// Refused returns bluetick_push_refused_total for one provider, at and
// reason (for tests).
func (m *Metrics) Refused(provider, at, reason string) uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.c[metricKey{"bluetick_push_refused_total", provider, at, reason}]
}

// descs are the counters' descriptions: by provider, and for
// bluetick_push_refused_total by where (at) and why too.
var descs = func() map[string]*prometheus.Desc {
	d := map[string]*prometheus.Desc{}
	for n, help := range metricHelp {
		labels := []string{"provider"}
		if n == "bluetick_push_refused_total" {
			labels = append(labels, "at", "reason")
		}
		d[n] = prometheus.NewDesc(n, help, labels, nil)
	}
	return d
}()

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range descs {
		ch <- d
	}
}

// Collect implements prometheus.Collector: the counters that have counted.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k, v := range m.c {
		labels := []string{k.provider}
		if k.name == "bluetick_push_refused_total" {
			labels = append(labels, k.at, k.reason)
		}
		ch <- prometheus.MustNewConstMetric(descs[k.name], prometheus.CounterValue, float64(v), labels...)
	}
}
