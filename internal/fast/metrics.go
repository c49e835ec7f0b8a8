package fast

import (
	"fmt"
	"io"
	"sync/atomic"
)

// reasons are the label values of bluetick_fast_logins_total, in the
// order they are written; "ok" is a successful login.
var reasons = []Reason{"ok", ReasonMalformed, ReasonUnknownUser, ReasonUnknownToken, ReasonExpired,
	ReasonRevoked, ReasonWrongAgent, ReasonWrongMechanism, ReasonReplay, ReasonError}

// Metrics counts what the service did, in the Prometheus text format
// (WritePrometheus; served at /metrics by cmd/bluetick).
type Metrics struct {
	logins  [10]atomic.Uint64 // by index in reasons
	Issued  atomic.Uint64     // tokens issued (requested or rotated)
	Rotated atomic.Uint64     // of which issued because the token used was due for rotation
	Revoked atomic.Uint64     // tokens revoked by users and the ad-hoc command on this node
}

func (m *Metrics) login(r Reason) {
	if r == ReasonNone {
		r = "ok"
	}
	for i, x := range reasons {
		if x == r {
			m.logins[i].Add(1)
			return
		}
	}
}

// Logins returns the count of token logins that ended with reason r
// (ReasonNone: successful ones).
func (m *Metrics) Logins(r Reason) uint64 {
	if r == ReasonNone {
		r = "ok"
	}
	for i, x := range reasons {
		if x == r {
			return m.logins[i].Load()
		}
	}
	return 0
}

// WritePrometheus writes the counters in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	fmt.Fprintf(w, "# HELP bluetick_fast_logins_total XEP-0484 token logins, by result (ok or why refused).\n# TYPE bluetick_fast_logins_total counter\n")
	for i, r := range reasons {
		fmt.Fprintf(w, "bluetick_fast_logins_total{result=%q} %d\n", string(r), m.logins[i].Load())
	}
	for _, c := range []struct {
		name, help string
		v          *atomic.Uint64
	}{
		{"bluetick_fast_tokens_issued_total", "XEP-0484 tokens issued.", &m.Issued},
		{"bluetick_fast_tokens_rotated_total", "XEP-0484 tokens issued because the one used was due for rotation.", &m.Rotated},
		{"bluetick_fast_tokens_revoked_total", "XEP-0484 tokens revoked from a client's ad-hoc command.", &m.Revoked},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", c.name, c.help, c.name, c.name, c.v.Load())
	}
}
