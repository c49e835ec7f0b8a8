package gateway

import (
	"fmt"
	"io"
	"sort"
	"sync"
)

// Metrics counts pushes per provider, exposed in the Prometheus text
// format (WritePrometheus; served at /metrics by cmd/bluetick).
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

// WritePrometheus writes the counters in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	m.mu.Lock()
	keys := make([]metricKey, 0, len(m.c))
	for k := range m.c {
		keys = append(keys, k)
	}
	vals := make(map[metricKey]uint64, len(m.c))
	for k, v := range m.c {
		vals[k] = v
	}
	m.mu.Unlock()
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].name != keys[j].name {
			return keys[i].name < keys[j].name
		}
		if keys[i].provider != keys[j].provider {
			return keys[i].provider < keys[j].provider
		}
		if keys[i].at != keys[j].at {
			return keys[i].at < keys[j].at
		}
		return keys[i].reason < keys[j].reason
	})
	names := make([]string, 0, len(metricHelp))
	for n := range metricHelp {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n", n, metricHelp[n], n)
		for _, k := range keys {
			if k.name != n {
				continue
			}
			labels := fmt.Sprintf("provider=%q", k.provider)
			if k.at != "" {
				labels += fmt.Sprintf(",at=%q", k.at)
			}
			if k.reason != "" {
				labels += fmt.Sprintf(",reason=%q", k.reason)
			}
			fmt.Fprintf(w, "%s{%s} %d\n", n, labels, vals[k])
		}
	}
}
