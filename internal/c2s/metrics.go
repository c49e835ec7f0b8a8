package c2s

import (
	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/metrics"
)

// Collectors are the counts of sessions cut for not reading.
func (s *Service) Collectors() []prometheus.Collector {
	const name, help = "bluetick_c2s_sessions_cut_total", "Sessions cut because the client did not read: a write made no progress for limits.write_timeout, or limits.max_queue stanzas waited."
	return []prometheus.Collector{
		metrics.Counter(name, help, prometheus.Labels{"reason": "write_timeout"}, metrics.Uint(&s.Stuck)),
		metrics.Counter(name, help, prometheus.Labels{"reason": "max_queue"}, metrics.Uint(&s.Overflowed)),
	}
}
