package server

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/jid"
	"bluetick/internal/metrics"
	"bluetick/internal/ratelimit"
	"bluetick/internal/stanza"
)

// rosterLimits holds the state of the [roster] bounds: the per-account
// budget of new subscription requests and the counters of refusals. The
// budget is created and used under subMu.
type rosterLimits struct {
	subRate *ratelimit.Keyed // nil until first used, or when unlimited

	refusedRate    atomic.Uint64 // over roster.subscriptions_per_minute
	refusedPending atomic.Uint64 // over roster.max_pending_out
	refusedFull    atomic.Uint64 // a roster at roster.max_items
	duplicates     atomic.Uint64 // repeated requests not shown again
	absent         atomic.Uint64 // requests to accounts that do not exist
}

// errRosterFull is update's refusal to create an item in a full roster.
var errRosterFull = errors.New("roster full")

// allowSubscription counts a new subscription request of user against
// roster.subscriptions_per_minute. Called under subMu.
func (s *Server) allowSubscription(user jid.JID) bool {
	n := s.cfg.Roster.SubscriptionsPerMinute
	if n <= 0 {
		return true
	}
	if s.lim.subRate == nil {
		s.lim.subRate = ratelimit.NewKeyed(float64(n)/60, float64(n))
	}
	return s.lim.subRate.Allow(user.Local())
}

// rosterRoom reports whether user's roster may take one more item, and
// how many requests of user wait for an answer.
func (s *Server) rosterRoom(ctx context.Context, user jid.JID) (room bool, pendingOut int, err error) {
	items, pendingOut, err := s.store.RosterCounts(ctx, user.Local())
	if err != nil {
		return false, 0, err
	}
	max := s.cfg.Roster.MaxItems
	return max <= 0 || items < max, pendingOut, nil
}

func (s *Server) errRosterFull(whose string) *stanza.Error {
	s.lim.refusedFull.Add(1)
	return &stanza.Error{Type: "cancel", Condition: "resource-constraint",
		Text: fmt.Sprintf("%s roster is full (at most %d items)", whose, s.cfg.Roster.MaxItems)}
}

// Collectors are the roster limits' counters.
func (s *Server) Collectors() []prometheus.Collector {
	const name, help = "bluetick_subscriptions_refused_total", "Presence subscription requests refused by a [roster] bound."
	var cs []prometheus.Collector
	for _, c := range []struct {
		reason string
		v      *atomic.Uint64
	}{
		{"rate", &s.lim.refusedRate},
		{"pending_out", &s.lim.refusedPending},
		{"roster_full", &s.lim.refusedFull},
		{"no_account", &s.lim.absent},
	} {
		cs = append(cs, metrics.Counter(name, help, prometheus.Labels{"reason": c.reason}, metrics.Uint(c.v)))
	}
	return append(cs, metrics.Counter("bluetick_subscriptions_duplicate_total",
		"Repeated subscription requests not shown to the contact again.", nil, metrics.Uint(&s.lim.duplicates)))
}
