// Package offline is the store-and-forward queue for users who are not
// online (XEP-0160 semantics, WhatsApp's rules): messages are kept durably,
// delivered in order with a XEP-0203 delay stamp when the user comes back,
// deleted once the client has them, and expired after a configurable age.
package offline

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/router"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Namespaces that decide what is worth storing.
const (
	nsDelay      = "urn:xmpp:delay" // XEP-0203
	nsHints      = "urn:xmpp:hints" // XEP-0334
	nsChatStates = "http://jabber.org/protocol/chatstates"
	nsSID        = "urn:xmpp:sid:0" // XEP-0359
)

// Queue implements router.Offline over a store. Every write goes through
// its journal, in batches (see Journal).
type Queue struct {
	// Messages written to the store for later, deleted once acknowledged,
	// and expired by the sweep (metrics.go).
	stored, acked, expired atomic.Uint64

	st     store.Offline
	j      *Journal
	domain string
	quota  int
	log    *slog.Logger
	now    func() time.Time
	limits xmlstream.Limits
}

// New returns a queue storing into st for users of domain, with a per-user
// quota (0 = unlimited).
func New(st store.Offline, domain string, quota int, log *slog.Logger) *Queue {
	return &Queue{st: st, j: NewJournal(st, log), domain: domain, quota: quota, log: log, now: time.Now}
}

// Close writes what is queued and stops the journal; the store may be
// closed afterwards.
func (q *Queue) Close() { q.j.Close() }

// Stats returns the journal's counters.
func (q *Queue) Stats() *JournalStats { return q.j.Stats() }

// Storable implements router.Offline. Chat states and other transient
// payloads are routed live only (XEP-0085 §5.4); XEP-0334 hints override.
// Receipts and markers are stored: the ✓✓ and blue ticks must reach a
// sender who is offline too.
func (q *Queue) Storable(el *xmlstream.Element) bool {
	switch el.Attr("type") {
	case "error", "groupchat", "headline":
		return false
	}
	if el.Child(nsHints, "no-store") != nil || el.Child(nsHints, "no-permanent-store") != nil {
		return false
	}
	if el.Child(nsHints, "store") != nil {
		return true
	}
	for _, c := range el.Elements() {
		switch {
		case c.Space == nsChatStates, c.Space == nsSID, c.Space == nsDelay,
			c.Space == nsHints, c.Name == "thread" && c.Space == xmlstream.NSClient:
			continue
		}
		return true
	}
	return false
}

// Write implements router.Offline: it stamps the delay (when the server
// received it) and queues the message for the store; the returned record
// tells when it is there. The per-user quota applies if quota is set.
func (q *Queue) Write(user jid.JID, el *xmlstream.Element, quota bool) router.Write {
	limit := 0
	if quota {
		limit = q.quota
	}
	q.stored.Add(1)
	return q.j.Insert(user.Local(), q.message(user, el), limit)
}

// Hold implements router.Offline: the message is queued to a live session
// of user, and kept (in the log on a single node) until its client acks
// it, or moved to the store if the session ends first.
func (q *Queue) Hold(user jid.JID, el *xmlstream.Element) router.Write {
	return q.j.Hold(user.Local(), q.message(user, el))
}

// UseLog keeps messages for live sessions in a log in dir rather than in
// the store (single node only; see Journal.UseLog).
func (q *Queue) UseLog(ctx context.Context, dir string) error { return q.j.UseLog(ctx, dir) }

// message is el as stored: stamped with its delay and serialized.
func (q *Queue) message(user jid.JID, el *xmlstream.Element) store.OfflineMessage {
	// A shallow copy: only the top element gains a child, and the
	// serialization below only reads.
	m := &xmlstream.Element{Space: el.Space, Name: el.Name, Attrs: el.Attrs, Children: make([]xmlstream.Node, len(el.Children), len(el.Children)+1)}
	copy(m.Children, el.Children)
	now := q.now().UTC()
	if m.Child(nsDelay, "delay") == nil {
		m.Append(xmlstream.New(nsDelay, "delay", "from", q.domain, "stamp", now.Format("2006-01-02T15:04:05.000Z")).AppendText("Offline Storage"))
	}
	var sid string
	for _, c := range m.Elements() {
		if c.Space == nsSID && c.Name == "stanza-id" && c.Attr("by") == user.BareString() {
			sid = c.Attr("id")
		}
	}
	return store.OfflineMessage{
		StanzaID: sid,
		From:     m.Attr("from"),
		Stored:   now,
		Data:     xmlstream.Append(nil, m, ""),
	}
}

// Load implements router.Offline. A row that no longer parses (it cannot
// happen with data this server wrote; a hand-edited database can) is
// logged and deleted rather than blocking the queue forever.
//
// It first waits for the journal to write what was queued before, so it
// sees every message the router handed over and none the client has acked.
func (q *Queue) Load(ctx context.Context, user jid.JID, limit int) ([]router.Stored, error) {
	if err := q.j.Sync(ctx); err != nil {
		return nil, err
	}
	rows, err := q.st.OfflineMessages(ctx, user.Local(), limit)
	if err != nil {
		return nil, err
	}
	out := make([]router.Stored, 0, len(rows))
	var bad []int64
	for _, r := range rows {
		el, err := xmlstream.Parse(r.Data, q.limits)
		if err != nil || el.Name != "message" {
			q.log.Error("offline: unreadable stored message deleted", "user", user.Local(), "seq", r.Seq, "err", err)
			bad = append(bad, r.Seq)
			continue
		}
		el.Space = xmlstream.NSClient
		out = append(out, router.Stored{Seq: r.Seq, El: el})
	}
	q.j.Delete(user.Local(), bad)
	return out, nil
}

// Delete removes messages the client has acknowledged, with the journal's
// next batch.
func (q *Queue) Delete(user jid.JID, seqs []int64) {
	q.acked.Add(uint64(len(seqs)))
	q.j.Delete(user.Local(), seqs)
}

// Sweep deletes messages older than maxAge every interval until ctx ends.
func (q *Queue) Sweep(ctx context.Context, maxAge, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := q.st.ExpireOffline(ctx, q.now().Add(-maxAge))
		if err != nil && ctx.Err() == nil {
			q.log.Error("offline: expiry failed", "err", err)
		} else if n > 0 {
			q.expired.Add(uint64(n))
			q.log.Info("offline: expired messages", "count", n, "max_age", maxAge)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
