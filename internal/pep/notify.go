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
// send_last_published_item on_sub_and_presence). It runs in its own
// goroutine: the caps query waits for an answer from this very client,
// which its stream loop must be free to read.
func (s *Service) Presence(sess router.Session, initial bool) {
	go s.presence(context.Background(), sess, initial)
}

func (s *Service) presence(ctx context.Context, sess router.Session, initial bool) {
	full := sess.JID()
	p := sess.Presence()
	ci := s.sessionCaps(ctx, full, p, true)
	key := ""
	if ref, ok := parseCaps(p); ok && ci != nil {
		key = ref.key()
	}
	s.mu.Lock()
	prev, had := s.seen[full]
	s.seen[full] = key
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
	s.lastItems(ctx, sess, full.Bare(), want, store.RosterItem{}, true)
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
		s.lastItems(ctx, sess, c, want, theirs, false)
	}
}

// lastItems sends sess the newest item of each of owner's nodes in want
// that it may see (own is true when sess belongs to owner).
func (s *Service) lastItems(ctx context.Context, sess router.Session, owner jid.JID, want map[string]bool, it store.RosterItem, own bool) {
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
		if cfg.SendLast != SendOnSubAndPresence || (!own && !allowedNotify(cfg, it, sess.JID().Bare())) {
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

// Gone forgets a local session that went unavailable or ended.
func (s *Service) Gone(full jid.JID) {
	s.mu.Lock()
	delete(s.seen, full)
	s.mu.Unlock()
}
