// Package router makes the one delivery decision for every stanza addressed
// to a user of this server: which of the user's sessions get it (RFC 6121
// §8.5), or the offline store, or an error for the sender.
//
// The router owns the session table of this node. It is the seam where
// cluster mode plugs in: a Session is anything that accepts stanzas for a
// bound resource, so a session on another node is a proxy that forwards over
// the cluster transport, registered in the same table.
//
// Ordering: all message deliveries to one user, the offline drain to that
// user and the end of its sessions run under one per-user lock (striped), so
// a message is either stored before a drain reads the store or delivered
// after the drained messages were queued, never in between.
package router

import (
	"context"
	"errors"
	"hash/maphash"
	"slices"
	"sort"
	"sync"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Session is what the router needs of a bound resource, local or on
// another node.
type Session interface {
	JID() jid.JID
	Available() bool
	Priority() int
	// Presence is the last available presence broadcast, or nil.
	Presence() *xmlstream.Element
	// Interested reports whether the client requested the roster (and so
	// gets roster pushes).
	Interested() bool
	// Carbons reports whether the client enabled XEP-0280 carbon copies.
	Carbons() bool
	Send(el *xmlstream.Element) error
	SendOffline(el *xmlstream.Element, seq int64) error
	TakePending() []session.Pending
	OfflineOutstanding() int
	Kick(condition, text string)
}

// Directory shares this node's sessions with the other nodes of a cluster
// and finds theirs (package cluster implements it on NATS). Without one the
// router knows only its own sessions.
type Directory interface {
	// Publish announces a bound session or a change of its presence.
	Publish(s Session)
	// Withdraw announces that a session ended.
	Withdraw(s Session)
	// Remote returns the sessions of bare on other nodes, as proxies
	// whose Send forwards to the node that holds them.
	Remote(bare jid.JID) []Session
}

// Offline is the store-and-forward queue (package offline implements it).
type Offline interface {
	// Storable tells whether a message is worth keeping for later
	// (chat states alone are not; XEP-0334 hints decide too).
	Storable(el *xmlstream.Element) bool
	// Write queues el for user's store and returns at once; the Write
	// tells when it is stored. With quota, a full store refuses it
	// (store.ErrQuota).
	Write(user jid.JID, el *xmlstream.Element, quota bool) Write
	// Hold queues el, which live sessions of user are about to get, to be
	// kept until a client acks it; if every session that holds it ends
	// first, it goes to the store (Spill).
	Hold(user jid.JID, el *xmlstream.Element) Write
	// Load returns up to limit stored messages, oldest first, counting
	// every Write queued before the call (rows that cannot be parsed are
	// logged and removed by the implementation).
	Load(ctx context.Context, user jid.JID, limit int) ([]Stored, error)
}

// Write is a message on its way to the offline store. A session that gets
// it live holds it as its session.Record and says when the client has it.
type Write interface {
	session.Record
	// Wait returns nil once the message is stored or its recipient's
	// client has it: the moment for the sender's ✓.
	Wait(ctx context.Context) error
	// Seq returns the message's sequence number in the store once it is
	// written (0 if the client had it first and it was never written).
	Seq(ctx context.Context) (int64, error)
}

// Stored is a message from the offline store with its sequence number.
type Stored struct {
	Seq int64
	El  *xmlstream.Element
}

// UserExists answers whether an account exists (a message to a
// non-existent account bounces with service-unavailable).
type UserExists func(ctx context.Context, user string) (bool, error)

// DrainPage is how many offline messages are queued to a session at once;
// the next page is loaded when the client has acknowledged these.
const DrainPage = 100

type user struct {
	sessions []Session
	drainer  Session   // session the offline store is being drained to
	drained  time.Time // when a drain last found the store empty
}

// settleTime is how long after a drain found the store empty a message
// stored by another node may still have been on its way (routed to the
// store before that node saw the session): a stored message arriving
// then restarts the drain, which delivers it after the older ones, and a
// second look at the store follows a drain's end (cluster mode).
const settleTime = 2 * time.Second

// Router routes stanzas to the sessions of one node.
type Router struct {
	offline Offline
	exists  UserExists
	dir     Directory // nil on a single node
	// CarbonCopy, when set, wraps a delivered message as a XEP-0280
	// received carbon for the user's other carbons-enabled resources, or
	// returns nil when the message is not eligible.
	CarbonCopy func(el *xmlstream.Element) *xmlstream.Element
	// OnUndelivered, when set, is told of each chat or normal message that
	// was stored offline or queued only to sessions that are asleep
	// (hibernated or inactive, see session.Asleep): the moment to wake the
	// user's phone with a XEP-0357 push. It runs under the user's delivery
	// lock, so it must not block (package push queues and returns).
	OnUndelivered func(ctx context.Context, bare jid.JID, el *xmlstream.Element)
	// durable: every storable chat or normal message is written to the
	// offline store before it is acknowledged and delivered with its
	// sequence number, so the recipient's ack deletes it. A crash of any
	// node then loses nothing that was acked (see SetDurable).
	durable bool

	mu    sync.RWMutex // guards users
	users map[jid.JID]*user

	seed    maphash.Seed
	stripes [256]sync.Mutex // per-user delivery order, see package doc
}

// New returns a router.
func New(off Offline, exists UserExists) *Router {
	return &Router{offline: off, exists: exists, users: make(map[jid.JID]*user), seed: maphash.MakeSeed()}
}

// SetDurable turns durable delivery on or off (before sessions bind). It
// costs one store write and one delete per message, and buys the promise
// that a ✓ survives the crash of the recipient's node or of this one.
func (r *Router) SetDurable(on bool) { r.durable = on }

// SetDirectory joins the router to a cluster directory. Call it before
// any session binds.
func (r *Router) SetDirectory(d Directory) { r.dir = d }

// Update republishes a session after its presence or roster interest
// changed, so other nodes see it.
func (r *Router) Update(s Session) {
	if r.dir != nil {
		r.dir.Publish(s)
	}
}

func (r *Router) remote(bare jid.JID) []Session {
	if r.dir == nil {
		return nil
	}
	return r.dir.Remote(bare)
}

func (r *Router) stripe(bare jid.JID) *sync.Mutex {
	return &r.stripes[maphash.String(r.seed, bare.BareString())%uint64(len(r.stripes))]
}

// Bind adds a session. If the user already has a session with the same
// resource, that one is returned: the caller kicks it with <conflict/> and
// unbinds it (RFC 6120 §7.7.2.2, the new session wins).
func (r *Router) Bind(s Session) (replaced Session) {
	bare := s.JID().Bare()
	r.mu.Lock()
	defer r.mu.Unlock()
	u := r.users[bare]
	if u == nil {
		u = &user{}
		r.users[bare] = u
	}
	if r.dir != nil {
		r.dir.Publish(s)
	}
	for i, o := range u.sessions {
		if o.JID().Resource() == s.JID().Resource() {
			u.sessions[i] = s
			return o
		}
	}
	u.sessions = append(u.sessions, s)
	return nil
}

// Unbind removes a session and moves every message it had not delivered to
// the offline store (one batch: messages held with a journal record move
// from the log, or are in the store already), in order, under the user's
// lock. It reports whether this was the user's last session.
//
// If s was the session the store drained to, the drain moves to another
// session of the user.
func (r *Router) Unbind(ctx context.Context, s Session) (last bool, err error) {
	bare := s.JID().Bare()
	st := r.stripe(bare)
	st.Lock()
	if r.dir != nil {
		r.dir.Withdraw(s)
	}
	r.mu.Lock()
	u := r.users[bare]
	if u != nil {
		for i, o := range u.sessions {
			if o == s {
				u.sessions = append(u.sessions[:i], u.sessions[i+1:]...)
				break
			}
		}
		if u.drainer == s {
			u.drainer = nil
		}
		if len(u.sessions) == 0 {
			delete(r.users, bare)
			last = true
		}
	} else {
		last = true
	}
	r.mu.Unlock()
	err = r.storePending(ctx, bare, s)
	st.Unlock()
	if !last {
		r.passDrain(ctx, bare)
	}
	return last, err
}

// stalled reports whether s is a local session without a connection, or
// one whose client does not read: a drain to it cannot progress, its page
// waits for an ack (or a write) that may come in minutes, and what it
// holds must not wait for it when another device of the user logs in.
func stalled(s Session) bool {
	ls, ok := s.(*session.Session)
	return ok && (ls.Detached() || ls.Congested(session.CongestedAfter))
}

// Detached is told that a local session lost its connection and waits
// for a resumption. If the offline store was draining to it, another
// session of the user with a connection takes the drain over: new
// messages wait behind a drain, and must not wait for a client that may
// not come back for minutes.
func (r *Router) Detached(ctx context.Context, s Session) {
	bare := s.JID().Bare()
	st := r.stripe(bare)
	st.Lock()
	r.mu.RLock()
	u := r.users[bare]
	mine := u != nil && u.drainer == s
	r.mu.RUnlock()
	st.Unlock()
	if mine {
		r.passDrain(ctx, bare)
	}
}

// Congested is told that local session s has not been able to write to
// its client for session.CongestedAfter: the drain moves to another of the
// user's sessions with a connection, taking along what s holds (see
// drainLocked), so a device that froze does not hold up the others.
func (r *Router) Congested(s *session.Session) {
	r.passDrain(context.Background(), s.JID().Bare())
}

// passDrain restarts the drain on an available local session with a
// connection, if the user has one and the drain is not running on such a
// session already. It re-sends what a stalled drainer held unacknowledged
// (still in the store): a duplicate on two devices at worst, never a gap.
func (r *Router) passDrain(ctx context.Context, bare jid.JID) {
	r.mu.RLock()
	var next Session
	if u := r.users[bare]; u != nil && (u.drainer == nil || stalled(u.drainer)) {
		for _, c := range mostAvailable(u.sessions) {
			if _, local := c.(*session.Session); local && !stalled(c) {
				next = c
				break
			}
		}
	}
	r.mu.RUnlock()
	if next != nil {
		_ = r.Drain(ctx, next)
	}
}

// storePending moves what s holds to the offline store, in one batch.
// Messages that came from the store, or are on their way there (durable
// delivery), are there already; other stanza kinds are not kept.
func (r *Router) storePending(ctx context.Context, bare jid.JID, s Session) error {
	var waits []func(context.Context) error
	for _, p := range s.TakePending() {
		if p.Rec != nil {
			// Held for the session: in the store already, or in the
			// single node's log, from which it moves to the store now.
			waits = append(waits, spill(p.Rec))
			continue
		}
		if p.OfflineSeq != 0 || p.El.Name != "message" || !r.offline.Storable(p.El) {
			continue
		}
		// No quota: these were acknowledged to their senders.
		w := r.offline.Write(bare, p.El, false)
		waits = append(waits, func(ctx context.Context) error { _, err := w.Seq(ctx); return err })
	}
	return waitAll(ctx, waits)
}

// spill queues the move of a record held in a log (offline.Record) to the
// store and returns the wait for it; other records are in the store.
func spill(rec session.Record) func(context.Context) error {
	if sp, ok := rec.(interface {
		Spill() (wait func(context.Context) error)
	}); ok {
		return sp.Spill()
	}
	return func(context.Context) error { return nil }
}

// waitAll runs every wait (queued together, they share a commit) and
// returns the first error.
func waitAll(ctx context.Context, waits []func(context.Context) error) error {
	var first error
	for _, wait := range waits {
		if err := wait(ctx); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Resources returns the user's sessions, on this node and (in a cluster)
// on the others.
func (r *Router) Resources(bare jid.JID) []Session {
	return append(r.LocalResources(bare), r.remote(bare.Bare())...)
}

// LocalResources returns the user's sessions on this node.
func (r *Router) LocalResources(bare jid.JID) []Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[bare.Bare()]
	if u == nil {
		return nil
	}
	return append([]Session(nil), u.sessions...)
}

// Session returns the session bound to a full JID, here or on another
// node, or nil.
func (r *Router) Session(full jid.JID) Session {
	if s := r.LocalSession(full); s != nil {
		return s
	}
	for _, s := range r.remote(full.Bare()) {
		if s.JID() == full {
			return s
		}
	}
	return nil
}

// LocalSession returns the session of this node bound to full, or nil.
func (r *Router) LocalSession(full jid.JID) Session {
	r.mu.RLock()
	defer r.mu.RUnlock()
	u := r.users[full.Bare()]
	if u == nil {
		return nil
	}
	for _, s := range u.sessions {
		if s.JID() == full {
			return s
		}
	}
	return nil
}

// Online reports whether the user has any available session.
func (r *Router) Online(bare jid.JID) bool {
	for _, s := range r.Resources(bare) {
		if s.Available() {
			return true
		}
	}
	return false
}

// LocalUsers returns the bare JIDs of the users with a session bound on
// this node.
func (r *Router) LocalUsers() []jid.JID {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]jid.JID, 0, len(r.users))
	for bare, u := range r.users {
		if len(u.sessions) > 0 {
			out = append(out, bare)
		}
	}
	return out
}

// Count returns the number of bound sessions on this node.
func (r *Router) Count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, u := range r.users {
		n += len(u.sessions)
	}
	return n
}

// mostAvailable returns the available sessions sharing the highest
// non-negative priority (RFC 6121 §8.5.2.1.1, option a).
func mostAvailable(ss []Session) []Session {
	best := -1
	var out []Session
	for _, s := range ss {
		if !s.Available() {
			continue
		}
		p := s.Priority()
		switch {
		case p < 0 || p < best:
		case p > best:
			best = p
			out = append(out[:0], s)
		default:
			out = append(out, s)
		}
	}
	return out
}

// nonNegative returns every available session with priority >= 0.
func nonNegative(ss []Session) []Session {
	var out []Session
	for _, s := range ss {
		if s.Available() && s.Priority() >= 0 {
			out = append(out, s)
		}
	}
	return out
}

// ErrDropped means the message was silently discarded as RFC 6121 §8.5
// says (for example a headline to an offline user). It is not an error to
// report to the sender.
var ErrDropped = errors.New("router: dropped")

// DeliverMessage delivers a message to a user of this server. It returns
// nil only once the message is durably stored or the recipient's client
// has acknowledged it (or, without durable delivery, once it is queued to
// a session), so the sender's ✓ may be given; ErrDropped when the rules
// discard it, or a *stanza.Error to bounce to the sender.
//
// The decision is made under the user's lock; the wait for the store is
// not, so messages to one user share a commit instead of taking turns.
func (r *Router) DeliverMessage(ctx context.Context, to jid.JID, el *xmlstream.Element) error {
	w, err := r.Route(ctx, to, el)
	if err != nil || w == nil {
		return err
	}
	return r.Settle(ctx, w)
}

// Settle waits for a Write from Route and returns what DeliverMessage
// would have.
func (r *Router) Settle(ctx context.Context, w Write) error {
	err := w.Wait(ctx)
	switch {
	case errors.Is(err, store.ErrQuota):
		return stanza.ErrOfflineFull
	case errors.Is(err, store.ErrNotFound):
		return stanza.ErrServiceUnavailable
	}
	return err
}

// Route is DeliverMessage without the wait: it makes the delivery decision
// under the user's lock, and the message is queued to the user's sessions
// and the store, or refused, when it returns. A non-nil Write is the store
// write the sender's ✓ waits for (see Settle).
func (r *Router) Route(ctx context.Context, to jid.JID, el *xmlstream.Element) (Write, error) {
	bare := to.Bare()
	st := r.stripe(bare)
	st.Lock()
	defer st.Unlock()

	typ := el.Attr("type")
	r.mu.RLock()
	var all []Session
	var draining bool
	if u := r.users[bare]; u != nil {
		all = append(all, u.sessions...)
		draining = u.drainer != nil
	}
	r.mu.RUnlock()
	all = append(all, r.remote(bare)...)

	durable := r.durable && typ != "error" && typ != "groupchat" && typ != "headline" && r.offline.Storable(el)
	if !to.IsBare() {
		for _, s := range all {
			if s.JID() == to {
				if durable {
					return r.deliverDurably(ctx, bare, el, all, []Session{s}, draining)
				}
				if err := s.Send(el); err == nil {
					r.carbons(el, all, []Session{s})
					r.wake(ctx, bare, el, []Session{s})
					return nil, nil
				}
				if err := r.storePending(ctx, bare, s); err != nil {
					return nil, err
				}
				break
			}
		}
		// No such resource (RFC 6121 §8.5.3.2.1): chat and normal go on as
		// if sent to the bare JID; the rest is not delivered.
		switch typ {
		case "groupchat":
			return nil, stanza.ErrServiceUnavailable
		case "headline", "error":
			return nil, ErrDropped
		}
	}

	switch typ {
	case "groupchat":
		return nil, stanza.ErrServiceUnavailable
	case "headline":
		targets := nonNegative(all)
		if len(targets) == 0 {
			return nil, ErrDropped
		}
		for _, s := range targets {
			_ = s.Send(el)
		}
		return nil, nil
	}

	if durable {
		return r.deliverDurably(ctx, bare, el, all, mostAvailable(all), draining)
	}
	if !draining {
		delivered := false
		targets := mostAvailable(all)
		for _, s := range targets {
			if err := s.Send(el); err == nil {
				delivered = true
			} else if err := r.storePending(ctx, bare, s); err != nil {
				return nil, err
			}
		}
		if delivered {
			r.carbons(el, all, targets)
			r.wake(ctx, bare, el, targets)
			return nil, nil
		}
	}
	if typ == "error" {
		return nil, ErrDropped
	}
	w, err := r.storeOffline(ctx, bare, el, len(all) > 0)
	if err != nil {
		return nil, err
	}
	// Stored behind a drain, or for nobody available: wake the phone
	// unless a session that gets the drain is awake.
	r.wake(ctx, bare, el, mostAvailable(all))
	return w, nil
}

// asleep is implemented by local sessions (session.Session.Asleep) and by
// the cluster's proxies, which learn it from the other node's answer.
type asleep interface{ Asleep() bool }

// wake calls OnUndelivered when none of the sessions a message was queued
// to has a client awake to show it. A session that cannot tell counts as
// awake.
func (r *Router) wake(ctx context.Context, bare jid.JID, el *xmlstream.Element, targets []Session) {
	if r.OnUndelivered == nil {
		return
	}
	switch el.Attr("type") {
	case "", "normal", "chat":
	default:
		return
	}
	for _, s := range targets {
		if a, ok := s.(asleep); !ok || !a.Asleep() {
			return
		}
	}
	r.OnUndelivered(ctx, bare, el)
}

// deliverDurably queues the message for the store and, in the same
// instant, to the targets (the addressed resource, or the most available
// ones) with its record: it leaves the store when a client acknowledges
// it, and is never written if that comes first. Until then a crash
// anywhere leaves it in the store, to be delivered at the next login
// (clients drop the rare duplicate by stanza-id). Sessions on other nodes
// get it once it is written, with its sequence number, so the node holding
// them deletes it on their ack.
func (r *Router) deliverDurably(ctx context.Context, bare jid.JID, el *xmlstream.Element, all, targets []Session, draining bool) (Write, error) {
	if len(all) == 0 {
		ok, err := r.exists(ctx, bare.Local())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, stanza.ErrServiceUnavailable
		}
	}
	if draining || len(targets) == 0 {
		// Behind a drain (which delivers it in order), or for later.
		w := r.offline.Write(bare, el, true)
		r.wake(ctx, bare, el, targets)
		return w, nil
	}
	// The quota bounds what waits for an absent user, not what a live
	// session is about to take.
	w := r.offline.Hold(bare, el)
	var remote []Session
	taken := false
	for _, s := range targets {
		ds, ok := s.(*session.Session)
		if !ok {
			remote = append(remote, s)
			continue
		}
		if ds.SendDurable(el, w) == nil {
			taken = true
		} else if err := r.storePending(ctx, bare, s); err != nil {
			return nil, err
		}
	}
	if !taken && len(remote) == 0 {
		// Every target was closing (cut, ending): no session will spill
		// the record when it ends, so it goes to the store now, where the
		// drain of the user's next session finds it.
		if err := spill(w)(ctx); err != nil {
			return nil, err
		}
	}
	if len(remote) > 0 {
		seq, err := w.Seq(ctx)
		if err != nil {
			return nil, err
		}
		for _, s := range remote {
			if seq == 0 {
				_ = s.Send(el) // a local client had it first: nothing stored
			} else {
				_ = s.SendOffline(el, seq)
			}
		}
	}
	r.carbons(el, all, targets)
	r.wake(ctx, bare, el, targets)
	return w, nil
}

// carbons sends a received carbon (XEP-0280 §6) to each carbons-enabled
// resource that was not a target of the delivery.
func (r *Router) carbons(el *xmlstream.Element, all, targets []Session) {
	if r.CarbonCopy == nil || len(all) <= len(targets) {
		return
	}
	var cc *xmlstream.Element
next:
	for _, s := range all {
		if !s.Carbons() {
			continue
		}
		for _, t := range targets {
			if t == s {
				continue next
			}
		}
		if cc == nil {
			if cc = r.CarbonCopy(el); cc == nil {
				return
			}
		}
		c := cc.Copy()
		c.SetAttr("to", s.JID().String())
		_ = s.Send(c)
	}
}

// storeOffline queues a message for later, or tells why not.
func (r *Router) storeOffline(ctx context.Context, bare jid.JID, el *xmlstream.Element, known bool) (Write, error) {
	if !known {
		ok, err := r.exists(ctx, bare.Local())
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, stanza.ErrServiceUnavailable
		}
	}
	if !r.offline.Storable(el) {
		return nil, ErrDropped
	}
	return r.offline.Write(bare, el, true), nil
}

// PrepareDrain makes s the session the offline store drains to, if none
// is, before s is announced available (and before Drain runs). In a
// cluster, other nodes start sending to s as soon as they see it
// available; a stored message they send meanwhile must not overtake the
// older ones still in the store, so SendStored leaves it to the drain.
func (r *Router) PrepareDrain(s Session) {
	bare := s.JID().Bare()
	st := r.stripe(bare)
	st.Lock()
	defer st.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	if u := r.users[bare]; u != nil && (u.drainer == nil || stalled(u.drainer)) {
		u.drainer = s
	}
}

// SendStored hands a local session a message another node has already
// put in the offline store (durable delivery). While the store is being
// drained to s, the drain delivers it in order; otherwise it is queued
// now. Under the user's lock, so it cannot fall between a drain's last
// read and its end.
func (r *Router) SendStored(s Session, el *xmlstream.Element, seq int64) error {
	bare := s.JID().Bare()
	st := r.stripe(bare)
	st.Lock()
	defer st.Unlock()
	r.mu.Lock()
	u := r.users[bare]
	draining := u != nil && u.drainer == s
	settling := u != nil && u.drainer == nil && time.Since(u.drained) < settleTime
	r.mu.Unlock()
	switch {
	case draining:
		return nil
	case settling:
		// An older message may have reached the store after the drain's
		// last read: if the store holds one this session has not got,
		// the drain delivers them all in seq order.
		ctx := context.Background()
		msgs, err := r.offline.Load(ctx, bare, DrainPage)
		if err != nil {
			return err
		}
		ls, _ := s.(*session.Session)
		for _, m := range msgs {
			if m.Seq < seq && (ls == nil || !ls.HoldsOffline(m.Seq)) {
				return r.drainLocked(ctx, s, false)
			}
		}
	}
	return s.SendOffline(el, seq)
}

// Drain feeds the user's offline messages to s, a page at a time. Call it
// when s sends initial available presence with non-negative priority, and
// again (via Continue) when s has acknowledged a page. While a drain is in
// progress, new messages to the user are stored behind the old ones, so
// the user sees everything in order; it ends when a page is the store's
// last (shorter than DrainPage).
func (r *Router) Drain(ctx context.Context, s Session) error {
	st := r.stripe(s.JID().Bare())
	st.Lock()
	defer st.Unlock()
	return r.drainLocked(ctx, s, false)
}

// drainLocked is Drain with the user's lock held; second is the second
// look after a drain's end (see settleTime).
func (r *Router) drainLocked(ctx context.Context, s Session, second bool) error {
	bare := s.JID().Bare()
	r.mu.Lock()
	u := r.users[bare]
	if u == nil || u.drainer != nil && u.drainer != s && !stalled(u.drainer) || !slices.Contains(u.sessions, s) {
		r.mu.Unlock()
		return nil
	}
	if s.OfflineOutstanding() > 0 {
		r.mu.Unlock()
		return nil // the current page is not acknowledged yet
	}
	u.drainer = s
	var stalledOthers []Session
	for _, o := range u.sessions {
		if o != s && stalled(o) {
			stalledOthers = append(stalledOthers, o)
		}
	}
	r.mu.Unlock()
	// Messages a session without a connection holds unacked (on a single
	// node, only in the journal's log) go to the store first, so this
	// drain delivers them in order before anything newer. The session
	// keeps them too, for its resumption.
	var waits []func(context.Context) error
	for _, o := range stalledOthers {
		for _, rec := range o.(*session.Session).Held() {
			waits = append(waits, spill(rec))
		}
	}
	if err := waitAll(ctx, waits); err != nil {
		return err
	}

	msgs, err := r.offline.Load(ctx, bare, DrainPage)
	if err == nil && len(msgs) > 0 {
		sort.Slice(msgs, func(i, j int) bool { return msgs[i].Seq < msgs[j].Seq })
		for _, m := range msgs {
			if err = s.SendOffline(m.El, m.Seq); err != nil {
				break
			}
		}
	}
	// A page shorter than DrainPage was the store's last: the drain ends
	// now, not when the client acknowledges the page. Later messages then
	// go to s directly, queued behind the page, so the order holds; a
	// client whose acks fall short (@xmpp/client 0.14 leaves iq replies
	// out of its count) held every later message in the store for good.
	if err != nil || len(msgs) < DrainPage {
		r.mu.Lock()
		if u.drainer == s {
			u.drainer = nil
			if err == nil {
				u.drained = time.Now()
				if r.dir != nil && !second {
					// A second look, for a message another node stored
					// before it saw this session.
					time.AfterFunc(settleTime, func() {
						st := r.stripe(bare)
						st.Lock()
						defer st.Unlock()
						_ = r.drainLocked(context.Background(), s, true)
					})
				}
			}
		}
		r.mu.Unlock()
	}
	if errors.Is(err, session.ErrClosed) || errors.Is(err, session.ErrQueueFull) {
		return nil
	}
	return err
}
