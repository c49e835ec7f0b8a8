package server

import (
	"context"
	"errors"
	"strconv"

	"bluetick/internal/jid"
	"bluetick/internal/router"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// handlePresence implements RFC 6121 §3 (subscriptions) and §4 (exchanging
// presence) for presence sent by a bound session.
func (s *Server) handlePresence(ctx context.Context, sess *session.Session, to jid.JID, el *xmlstream.Element) {
	typ := el.Attr("type")
	if !to.IsZero() && s.blockedPresence(ctx, sess, to, el) { // mam branch: XEP-0191
		return
	}
	switch typ {
	case "subscribe", "subscribed", "unsubscribe", "unsubscribed":
		if to.IsZero() {
			s.reply(sess, el, stanza.NewError("bad-request", "a subscription request needs a 'to'"))
			return
		}
		s.subscription(ctx, sess, to.Bare(), typ, el)
		return
	case "probe":
		return // client-generated probes are ignored (RFC 6121 §4.3)
	case "", "unavailable", "error":
	default:
		s.reply(sess, el, stanza.NewError("bad-request", "unknown presence type"))
		return
	}
	if !to.IsZero() {
		s.directedPresence(ctx, sess, to, el)
		return
	}
	if typ == "error" {
		return
	}
	if typ == "unavailable" {
		sess.SetLastStatus(el.ChildText(xmlstream.NSClient, "status"))
		if !sess.Available() {
			return
		}
		sess.SetPresence(nil, false, 0)
		s.Router.Update(sess)
		s.broadcastPresence(ctx, sess, el)
		s.pep.Gone(sess.JID())
		return
	}
	prio := 0
	if p := el.ChildText(xmlstream.NSClient, "priority"); p != "" {
		v, err := strconv.Atoi(p)
		if err != nil || v < -128 || v > 127 {
			s.reply(sess, el, stanza.NewError("bad-request", "priority must be an integer from -128 to 127"))
			return
		}
		prio = v
	}
	s.pep.PresenceUpdate(ctx, sess.JID().Local(), el) // XEP-0398 §4: the vCard photo hash
	if prio >= 0 {
		// Before the session is available to anyone, here or on other
		// nodes: a message sent from now on waits behind the stored ones.
		s.Router.PrepareDrain(sess)
	}
	initial := sess.SetPresence(el, true, prio)
	s.Router.Update(sess)
	s.broadcastPresence(ctx, sess, el)
	s.pep.Presence(sess, initial)
	if initial {
		s.probeContacts(ctx, sess)
		s.resendPendingSubscriptions(ctx, sess)
		s.sendMOTD(sess)
	}
	if prio >= 0 {
		if err := s.Router.Drain(ctx, sess); err != nil {
			s.log.Error("offline drain failed", "jid", sess.JID().String(), "err", err)
		}
	}
}

// broadcastPresence sends a session's presence to the contacts subscribed
// to it (from/both), to the account's own available resources (including
// the sender, RFC 6121 §4.2.2), and, if unavailable, to the JIDs it sent
// directed presence to.
func (s *Server) broadcastPresence(ctx context.Context, sess *session.Session, el *xmlstream.Element) {
	from := sess.JID()
	out := el.Copy()
	out.SetAttr("from", from.String())
	out.SetAttr("to", "")
	seen := map[jid.JID]bool{}
	send := func(r router.Session) {
		if seen[r.JID()] {
			return
		}
		seen[r.JID()] = true
		p := out.Copy()
		p.SetAttr("to", r.JID().String())
		_ = r.Send(p)
	}
	for _, r := range s.Router.Resources(from.Bare()) {
		if r.Available() || r.JID() == from {
			send(r)
		}
	}
	items, _, err := s.store.Roster(ctx, from.Local())
	if err != nil {
		s.log.Error("presence broadcast: roster", "jid", from.String(), "err", err)
	}
	bf := s.newBlockFilter(ctx, from) // mam branch: XEP-0191
	for _, it := range items {
		if it.Subscription != store.SubFrom && it.Subscription != store.SubBoth {
			continue
		}
		c, err := jid.Parse(it.Contact)
		if err != nil || !s.local(c) {
			continue
		}
		for _, r := range s.Router.Resources(c) {
			if r.Available() && !bf.blocked(r.JID()) { // mam branch: XEP-0191
				send(r)
			}
		}
	}
	if out.Attr("type") == "unavailable" {
		s.leaveServices(ctx, sess, out)
		for _, d := range sess.Directed() {
			targets := s.Router.Resources(d)
			if !d.IsBare() {
				targets = nil
				if r := s.Router.Session(d); r != nil {
					targets = append(targets, r)
				}
			}
			for _, r := range targets {
				send(r)
			}
			sess.AddDirected(d, false)
		}
	}
}

// leaveServices sends unavailable presence to every service target of the
// session's directed presence (a room it joined), which then removes the
// occupant, and forgets them.
func (s *Server) leaveServices(ctx context.Context, sess *session.Session, unavailable *xmlstream.Element) {
	from := sess.JID()
	for _, d := range sess.Directed() {
		svc := s.serviceFor(d)
		if svc == nil {
			continue
		}
		p := unavailable.Copy()
		p.SetAttr("from", from.String())
		p.SetAttr("to", d.String())
		svc.Handle(ctx, from, p)
		sess.AddDirected(d, false)
	}
}

// probeContacts gives a newly available session the current presence of
// every contact it is subscribed to (to/both) and of its own other
// resources (RFC 6121 §4.3: the server answers probes for its own users).
func (s *Server) probeContacts(ctx context.Context, sess *session.Session) {
	me := sess.JID()
	deliver := func(r router.Session) {
		if r.JID() == me {
			return
		}
		if p := r.Presence(); p != nil {
			c := p.Copy()
			c.SetAttr("from", r.JID().String())
			c.SetAttr("to", me.String())
			_ = sess.Send(c)
		}
	}
	for _, r := range s.Router.Resources(me.Bare()) {
		deliver(r)
	}
	items, _, err := s.store.Roster(ctx, me.Local())
	if err != nil {
		s.log.Error("presence probe: roster", "jid", me.String(), "err", err)
		return
	}
	bf := s.newBlockFilter(ctx, me) // mam branch: XEP-0191
	for _, it := range items {
		if it.Subscription != store.SubTo && it.Subscription != store.SubBoth {
			continue
		}
		c, err := jid.Parse(it.Contact)
		if err != nil || !s.local(c) {
			continue
		}
		for _, r := range s.Router.Resources(c) {
			if !bf.blocked(r.JID()) { // mam branch: XEP-0191
				deliver(r)
			}
		}
	}
}

// directedPresence delivers presence addressed to one entity (RFC 6121
// §4.6), remembering it so the target learns when the session ends.
func (s *Server) directedPresence(ctx context.Context, sess *session.Session, to jid.JID, el *xmlstream.Element) {
	if to.Domain() != s.Domain.Domain() {
		if el.Attr("type") != "error" {
			s.reply(sess, el, stanza.NewError("remote-server-not-found", "this server does not federate with other domains"))
		}
		return
	}
	if to.Local() == "" {
		return
	}
	typ := el.Attr("type")
	if typ != "error" {
		sess.AddDirected(to, typ == "")
	}
	if typ == "" {
		s.pep.PresenceUpdate(ctx, sess.JID().Local(), el) // XEP-0398 §4: MUC joins too
	}
	if !to.IsBare() {
		if r := s.Router.Session(to); r != nil {
			_ = r.Send(el)
		}
		return
	}
	for _, r := range s.Router.Resources(to) {
		if r.Available() {
			p := el.Copy()
			_ = r.Send(p)
		}
	}
}

// sendToAvailable delivers a server-generated presence to every available
// resource of bare.
func (s *Server) sendToAvailable(bare jid.JID, el *xmlstream.Element) bool {
	sent := false
	for _, r := range s.Router.Resources(bare) {
		if r.Available() && r.Priority() >= 0 {
			p := el.Copy()
			p.SetAttr("to", r.JID().String())
			if r.Send(p) == nil {
				sent = true
			}
		}
	}
	return sent
}

// sendPresenceOf sends the current presence of every available resource of
// from to every available resource of to (after a subscription is
// approved), or unavailable presence when available is false.
func (s *Server) sendPresenceOf(from, to jid.JID, available bool) {
	for _, r := range s.Router.Resources(from) {
		pres := r.Presence()
		if !r.Available() || pres == nil {
			continue
		}
		var p *xmlstream.Element
		if available {
			p = pres.Copy()
		} else {
			p = xmlstream.New(xmlstream.NSClient, "presence", "type", "unavailable")
		}
		p.SetAttr("from", r.JID().String())
		s.sendToAvailable(to, p)
	}
}

// resendPendingSubscriptions delivers subscription requests that arrived
// while the user was offline (RFC 6121 §3.1.3: kept until answered).
func (s *Server) resendPendingSubscriptions(ctx context.Context, sess *session.Session) {
	items, _, err := s.store.Roster(ctx, sess.JID().Local())
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.Error("pending subscriptions: roster", "jid", sess.JID().String(), "err", err)
		}
		return
	}
	for _, it := range items {
		if it.PendingIn {
			_ = sess.Send(xmlstream.New(xmlstream.NSClient, "presence", "type", "subscribe", "from", it.Contact, "to", sess.JID().Bare().String()))
		}
	}
}

// RemoteGone tells this node's users that sessions on a node that died are
// gone: each local, available resource of a contact subscribed to them
// (from/both) and of the same account gets unavailable presence, as the
// dead node would have sent at a clean end.
func (s *Server) RemoteGone(sessions []jid.JID) {
	ctx := context.Background()
	for _, full := range sessions {
		p := xmlstream.New(xmlstream.NSClient, "presence", "type", "unavailable", "from", full.String())
		send := func(bare jid.JID) {
			for _, r := range s.Router.LocalResources(bare) {
				if r.Available() {
					c := p.Copy()
					c.SetAttr("to", r.JID().String())
					_ = r.Send(c)
				}
			}
		}
		send(full.Bare())
		items, _, err := s.store.Roster(ctx, full.Local())
		if err != nil {
			s.log.Error("presence of a dead node's user: roster", "jid", full.String(), "err", err)
			continue
		}
		for _, it := range items {
			if it.Subscription != store.SubFrom && it.Subscription != store.SubBoth {
				continue
			}
			if c, err := jid.Parse(it.Contact); err == nil && s.local(c) {
				send(c)
			}
		}
	}
}
