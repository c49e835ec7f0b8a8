package c2s

import (
	"fmt"
	"io"
)

// WritePrometheus writes the counts of sessions cut for not reading, in
// the Prometheus text format.
func (s *Service) WritePrometheus(w io.Writer) {
	const name = "bluetick_c2s_sessions_cut_total"
	fmt.Fprintf(w, "# HELP %s Sessions cut because the client did not read: a write made no progress for limits.write_timeout, or limits.max_queue stanzas waited.\n# TYPE %s counter\n", name, name)
	fmt.Fprintf(w, "%s{reason=\"write_timeout\"} %d\n%s{reason=\"max_queue\"} %d\n", name, s.Stuck.Load(), name, s.Overflowed.Load())
}
