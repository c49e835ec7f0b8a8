package push

import (
	"fmt"
	"io"
	"sync/atomic"
)

// Metrics counts what the XEP-0357 side did, in the Prometheus text format
// (WritePrometheus; served at /metrics by cmd/bluetick). The gateway
// counts what the providers did (gateway.Metrics).
type Metrics struct {
	Published atomic.Uint64 // publishes the app server accepted
	Failed    atomic.Uint64 // publishes the app server refused or could not deliver
	Coalesced atomic.Uint64 // messages folded into a later push by the rate limit
	QueueFull atomic.Uint64 // notifications dropped because the queue was full
	Disabled  atomic.Uint64 // registrations disabled after a permanent error
}

func (m *Metrics) add(c *atomic.Uint64) { c.Add(1) }

// WritePrometheus writes the counters in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	for _, c := range []struct {
		name, help string
		v          *atomic.Uint64
	}{
		{"bluetick_push_published_total", "XEP-0357 publishes the app server accepted.", &m.Published},
		{"bluetick_push_publish_failed_total", "XEP-0357 publishes refused or not delivered.", &m.Failed},
		{"bluetick_push_rate_limited_total", "Messages coalesced into a later push by push.min_interval.", &m.Coalesced},
		{"bluetick_push_dropped_total", "Notifications dropped because the push queue was full.", &m.QueueFull},
		{"bluetick_push_disabled_total", "Registrations disabled after a permanent app server error.", &m.Disabled},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, c.v.Load())
	}
}
