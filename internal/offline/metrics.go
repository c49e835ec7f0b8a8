package offline

import (
	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/metrics"
)

// Collectors are the offline store's counters on this node.
func (q *Queue) Collectors() []prometheus.Collector {
	return []prometheus.Collector{
		metrics.Counter("bluetick_offline_stored_total", "Messages written to the offline store for a user without a session to take them (or behind a drain).", nil, metrics.Uint(&q.stored)),
		metrics.Counter("bluetick_offline_acked_total", "Offline messages deleted once the client acknowledged them (drained, or held for a live session and acknowledged).", nil, metrics.Uint(&q.acked)),
		metrics.Counter("bluetick_offline_expired_total", "Offline messages deleted unread after offline.max_age.", nil, metrics.Uint(&q.expired)),
	}
}
