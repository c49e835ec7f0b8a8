package push

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/metrics"
)

// Metrics counts what the XEP-0357 side did (served at /metrics through
// Collectors). The gateway
// counts what the providers did (gateway.Metrics).
type Metrics struct {
	Published atomic.Uint64 // publishes the app server accepted
	Failed    atomic.Uint64 // publishes the app server refused or could not deliver
	Coalesced atomic.Uint64 // messages folded into a later push by the rate limit
	QueueFull atomic.Uint64 // notifications dropped because the queue was full
	Disabled  atomic.Uint64 // registrations disabled after a permanent error
}

func (m *Metrics) add(c *atomic.Uint64) { c.Add(1) }

// Collectors are the counters.
func (m *Metrics) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		metrics.Counter("bluetick_push_published_total", "XEP-0357 publishes the app server accepted.", nil, metrics.Uint(&m.Published)),
		metrics.Counter("bluetick_push_publish_failed_total", "XEP-0357 publishes refused or not delivered.", nil, metrics.Uint(&m.Failed)),
		metrics.Counter("bluetick_push_rate_limited_total", "Messages coalesced into a later push by push.min_interval.", nil, metrics.Uint(&m.Coalesced)),
		metrics.Counter("bluetick_push_dropped_total", "Notifications dropped because the push queue was full.", nil, metrics.Uint(&m.QueueFull)),
		metrics.Counter("bluetick_push_disabled_total", "Registrations disabled after a permanent app server error.", nil, metrics.Uint(&m.Disabled)),
	}
}
