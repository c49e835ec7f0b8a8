package upload

import (
	"context"
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/stanza"
)

// metrics counts what the upload service did.
type metrics struct {
	files   prometheus.Counter
	bytes   prometheus.Counter
	refused *prometheus.CounterVec
}

func newMetrics() metrics {
	m := metrics{
		files: prometheus.NewCounter(prometheus.CounterOpts{Name: "bluetick_upload_files_total",
			Help: "Files uploaded through XEP-0363 slots (stored)."}),
		bytes: prometheus.NewCounter(prometheus.CounterOpts{Name: "bluetick_upload_bytes_total",
			Help: "Bytes of the files uploaded through XEP-0363 slots."}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "bluetick_upload_refused_total",
			Help: "XEP-0363 slot requests refused, by the stanza error condition (not-acceptable: too large, type or name refused; resource-constraint: quota or rate; bad-request)."},
			[]string{"condition"}),
	}
	// Exported from the start (at 0), so a rate has a series before the
	// first refusal.
	for _, c := range []string{"not-acceptable", "resource-constraint", "bad-request"} {
		m.refused.WithLabelValues(c)
	}
	return m
}

// Collectors are the upload metrics.
func (s *Service) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.m.files, s.m.bytes, s.m.refused}
}

// RequestSlot checks a request against the limits and records a new slot.
// Refusals are stanza errors as XEP-0363 §5 describes them, counted by
// condition.
func (s *Service) RequestSlot(ctx context.Context, user, filename, sizeAttr, ctype string) (*Slot, error) {
	slot, err := s.requestSlot(ctx, user, filename, sizeAttr, ctype)
	var se *stanza.Error
	if errors.As(err, &se) {
		s.m.refused.WithLabelValues(se.Condition).Inc()
	}
	return slot, err
}
