package fast

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/metrics"
)

// reasons are the label values of bluetick_fast_logins_total, in the
// order they are written; "ok" is a successful login.
var reasons = []Reason{"ok", ReasonMalformed, ReasonUnknownUser, ReasonUnknownToken, ReasonExpired,
	ReasonRevoked, ReasonWrongAgent, ReasonWrongMechanism, ReasonReplay, ReasonError}

// Metrics counts what the service did (served at /metrics through
// Collectors).
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

// Collectors are the counters.
func (m *Metrics) Collectors() []prometheus.Collector {
	var cs []prometheus.Collector
	for i, r := range reasons {
		cs = append(cs, metrics.Counter("bluetick_fast_logins_total", "XEP-0484 token logins, by result (ok or why refused).",
			prometheus.Labels{"result": string(r)}, metrics.Uint(&m.logins[i])))
	}
	return append(cs,
		metrics.Counter("bluetick_fast_tokens_issued_total", "XEP-0484 tokens issued.", nil, metrics.Uint(&m.Issued)),
		metrics.Counter("bluetick_fast_tokens_rotated_total", "XEP-0484 tokens issued because the one used was due for rotation.", nil, metrics.Uint(&m.Rotated)),
		metrics.Counter("bluetick_fast_tokens_revoked_total", "XEP-0484 tokens revoked from a client's ad-hoc command.", nil, metrics.Uint(&m.Revoked)),
	)
}
