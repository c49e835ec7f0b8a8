package pep

import (
	"context"

	"bluetick/internal/jid"
	"bluetick/internal/router"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Notifications (XEP-0163 §4.3): a <message type='headline'/> from the
// owner's bare JID carrying a pubsub#event, to every available resource
// that wants it (its verified caps list "<node>+notify") of the owner and
// of each contact that shares the owner's presence and may access the
// node. Sessions come from the router, so resources on other cluster nodes
// are reached through it like local ones.

// event wraps a pubsub#event payload into a headline message to one
// resource.
func event(owner, to jid.JID, payload *xmlstream.Element) *xmlstream.Element {
	m := xmlstream.New(xmlstream.NSClient, "message", "from", owner.String(), "to", to.String(), "type", "headline", "id", newID())
	return m.Append(xmlstream.New(NSPubSubEvent, "event").Append(payload))
}

// wants reports whether the resource asked for notifications of node.
func (s *Service) wants(ctx context.Context, r router.Session, node string) bool {
	if !r.Available() {
		return false
	}
	ci := s.sessionCaps(ctx, r.JID(), r.Presence(), false)
	return ci != nil && ci.features[node+"+notify"]
}

// notify sends build() to everyone entitled to notifications of the node.
func (s *Service) notify(ctx context.Context, owner jid.JID, node string, cfg Config, build func() *xmlstream.Element) {
	payload := build()
	send := func(r router.Session) {
		if s.wants(ctx, r, node) {
			_ = r.Send(event(owner, r.JID(), payload.Copy()))
		}
	}
	for _, r := range s.router.Resources(owner) {
		send(r)
	}
	items, _, err := s.st.Roster(ctx, owner.Local())
	if err != nil {
		s.log.Error("pep notify: roster", "owner", owner.String(), "err", err)
		return
	}
	for _, it := range items {
		c, err := jid.Parse(it.Contact)
		if err != nil || c.Domain() != s.domain.Domain() || c.Local() == "" || c == owner {
			continue
		}
		if !allowedNotify(cfg, it, c) {
			continue
		}
		for _, r := range s.router.Resources(c) {
			send(r)
		}
	}
}

// Presence is called after a local session sent available presence
// (initial is true for its first). It learns the session's capabilities,
// asking the client if the hash is new, and sends it the last item of
// every node it newly wants notifications of and may see, of its own
// account and of each contact whose presence it receives (XEP-0163 §4.3.5:
// send_last_published_item on_sub_and_presence).
//
// The work runs in its own goroutine: the caps query waits for an answer
// from this very client, whose stream loop must be free to read it. At
// most one runs per session; presence arriving meanwhile is handled once
// the running one is done, from the session's latest presence, so a client
// flooding presence costs one query at a time.
func (s *Service) Presence(sess router.Session, initial bool) {
	full := sess.JID()
	s.mu.Lock()
	st := s.sessions[full]
	if st == nil {
		st = &sessState{}
		s.sessions[full] = st
	}
	if st.busy {
		st.dirty = true
		st.initial = st.initial || initial
		s.mu.Unlock()
		return
	}
	st.busy = true
	s.mu.Unlock()
	go func() {
		for {
			s.presence(context.Background(), sess, st, initial)
			s.mu.Lock()
			if !st.dirty {
				st.busy = false
				s.mu.Unlock()
				return
			}
			st.dirty, initial, st.initial = false, st.initial, false
			s.mu.Unlock()
		}
	}()
}

// sessState is what the service remembers of a local session: the caps
// key it last announced (to send only newly wanted last items) and whether
// its presence work is running.
type sessState struct {
	key                  string
	known                bool // key was set by a presence
	busy, dirty, initial bool
}

func (s *Service) presence(ctx context.Context, sess router.Session, st *sessState, initial bool) {
	full := sess.JID()
	p := sess.Presence()
	if p == nil {
		return // unavailable by now
	}
	ci := s.sessionCaps(ctx, full, p, true)
	key := ""
	if ref, ok := parseCaps(p); ok && ci != nil {
		key = ref.key()
	}
	s.mu.Lock()
	prev, had := st.key, st.known
	st.key, st.known = key, true
	s.mu.Unlock()
	if !initial && had && prev == key {
		return
	}
	want := ci.notifyNodes()
	if !initial && had && prev != "" {
		// Only what the new caps add: the rest was sent already.
		if old := s.caps.get(ctx, prev, s.limits); old != nil {
			for n := range old.notifyNodes() {
				delete(want, n)
			}
		}
	}
	if len(want) == 0 {
		return
	}
	s.lastItems(ctx, sess, full.Bare(), want, store.RosterItem{}, true, false)
	items, _, err := s.st.Roster(ctx, full.Local())
	if err != nil {
		s.log.Error("pep last items: roster", "jid", full.String(), "err", err)
		return
	}
	for _, it := range items {
		if it.Subscription != store.SubTo && it.Subscription != store.SubBoth {
			continue
		}
		c, err := jid.Parse(it.Contact)
		if err != nil || c.Domain() != s.domain.Domain() || c.Local() == "" || c == full.Bare() {
			continue
		}
		// The contact's roster decides what we may see of it.
		theirs, err := s.st.RosterItem(ctx, c.Local(), full.Bare().String())
		if err != nil {
			continue
		}
		s.lastItems(ctx, sess, c, want, theirs, false, false)
	}
}

// lastItems sends sess the newest item of each of owner's nodes in want
// that it may see (own is true when sess belongs to owner), for a new
// subscription (onSub) or a newly available resource.
func (s *Service) lastItems(ctx context.Context, sess router.Session, owner jid.JID, want map[string]bool, it store.RosterItem, own, onSub bool) {
	nodes, err := s.st.PEPNodes(ctx, owner.Local())
	if err != nil {
		s.log.Error("pep last items: nodes", "owner", owner.String(), "err", err)
		return
	}
	for _, n := range nodes {
		if !want[n.Node] {
			continue
		}
		cfg := unmarshalConfig(n.Config)
		send := cfg.SendLast == SendOnSubAndPresence || (onSub && cfg.SendLast == SendOnSub)
		if !send || (!own && !allowedNotify(cfg, it, sess.JID().Bare())) {
			continue
		}
		items, err := s.st.PEPItems(ctx, owner.Local(), n.Node, nil, 1)
		if err != nil || len(items) == 0 {
			continue
		}
		el, err := s.itemElement(NSPubSubEvent, items[0])
		if err != nil {
			s.log.Error("pep last items: stored item", "owner", owner.String(), "node", n.Node, "err", err)
			continue
		}
		_ = sess.Send(event(owner, sess.JID(), xmlstream.New(NSPubSubEvent, "items", "node", n.Node).Append(el)))
	}
}

// Gone forgets a local session that went unavailable, ended or moved to
// another node.
func (s *Service) Gone(full jid.JID) {
	s.mu.Lock()
	delete(s.sessions, full)
	s.mu.Unlock()
}

// Subscribed is called when contact starts receiving owner's presence
// (subscription from or both): its available resources are new implicit
// subscribers and get the last item of each node they want and may see
// (XEP-0163 §4.3.5).
func (s *Service) Subscribed(ctx context.Context, owner, contact jid.JID) {
	if contact.Domain() != s.domain.Domain() || contact.Local() == "" {
		return
	}
	it, err := s.st.RosterItem(ctx, owner.Local(), contact.String())
	if err != nil || !sharesPresence(it) {
		return
	}
	for _, r := range s.router.Resources(contact) {
		if !r.Available() {
			continue
		}
		ci := s.sessionCaps(ctx, r.JID(), r.Presence(), false)
		if want := ci.notifyNodes(); len(want) > 0 {
			s.lastItems(ctx, r, owner, want, it, false, true)
		}
	}
}
