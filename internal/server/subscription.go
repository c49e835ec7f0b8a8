package server

import (
	"context"
	"errors"
	"fmt"

	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// subscription handles a subscription presence sent by a user (RFC 6121
// §3). Both rosters live on this server, so the outbound processing at the
// user's side and the inbound processing at the contact's side (the state
// tables of Appendix A) happen together under subMu.
func (s *Server) subscription(ctx context.Context, sess *session.Session, to jid.JID, typ string, el *xmlstream.Element) {
	me := sess.JID().Bare()
	if to.Domain() != s.Domain.Domain() || to.Local() == "" {
		s.reply(sess, el, stanza.NewError("remote-server-not-found", "this server does not federate with other domains"))
		return
	}
	if to == me {
		return // subscribing to oneself is implicit
	}
	s.subMu.Lock()
	defer s.subMu.Unlock()
	ok, err := s.store.UserExists(ctx, to.Local())
	if err != nil {
		s.reply(sess, el, stanza.ErrInternal)
		return
	}
	switch typ {
	case "subscribe":
		s.subscribe(ctx, sess, me, to, ok, el)
	case "subscribed":
		if !ok {
			return
		}
		var approved bool
		err := s.update(ctx, me, to, func(it *store.RosterItem) {
			switch {
			case it.PendingIn:
				it.PendingIn = false
				it.InRoster = true
				it.Subscription = addFrom(it.Subscription)
				approved = true
			case it.Subscription == store.SubFrom || it.Subscription == store.SubBoth:
			default:
				it.Approved = true // pre-approval (§3.4)
				it.InRoster = true
			}
		})
		if errors.Is(err, errRosterFull) {
			s.reply(sess, el, s.errRosterFull("your"))
			return
		}
		if approved {
			s.inboundSubscribed(ctx, me, to)
			s.sendPresenceOf(me, to, true)
			s.pep.Subscribed(ctx, me, to)
		}
	case "unsubscribe":
		s.update(ctx, me, to, func(it *store.RosterItem) {
			it.Subscription = removeTo(it.Subscription)
			it.PendingOut = false
		})
		if ok {
			s.inboundUnsubscribe(ctx, me, to)
		}
	case "unsubscribed":
		var wasFrom bool
		s.update(ctx, me, to, func(it *store.RosterItem) {
			wasFrom = it.Subscription == store.SubFrom || it.Subscription == store.SubBoth
			it.Subscription = removeFrom(it.Subscription)
			it.PendingIn = false
			it.Approved = false
		})
		if wasFrom {
			s.sendPresenceOf(me, to, false)
		}
		if ok {
			s.inboundUnsubscribed(ctx, me, to)
		}
	}
}

// subscribe is the user's side of a subscription request (RFC 6121
// §3.1.1-3.1.3) within the [roster] bounds. A request repeated while the
// first is pending is not shown to the contact again. A new one counts
// against roster.subscriptions_per_minute, then must fit in
// roster.max_pending_out and in both rosters (roster.max_items); one to an
// account that does not exist is refused as its server would, and leaves
// nothing behind (§3.1.3 lets a server drop it).
func (s *Server) subscribe(ctx context.Context, sess *session.Session, me, to jid.JID, exists bool, el *xmlstream.Element) {
	cur, err := s.store.RosterItem(ctx, me.Local(), to.String())
	found := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		s.reply(sess, el, stanza.ErrInternal)
		return
	}
	isNew := !cur.PendingOut && cur.Subscription != store.SubTo && cur.Subscription != store.SubBoth
	if isNew && !s.allowSubscription(me) {
		s.lim.refusedRate.Add(1)
		s.log.Debug("subscription refused: rate", "user", me.String(), "contact", to.String())
		s.reply(sess, el, &stanza.Error{Type: "wait", Condition: "policy-violation",
			Text: fmt.Sprintf("too many subscription requests (at most %d a minute)", s.cfg.Roster.SubscriptionsPerMinute)})
		return
	}
	if !exists {
		s.lim.absent.Add(1)
		if !s.inboundUnsubscribed(ctx, to, me) {
			_ = sess.Send(xmlstream.New(xmlstream.NSClient, "presence", "type", "unsubscribed", "from", to.String(), "to", sess.JID().String()))
		}
		return
	}
	if isNew {
		if e := s.roomForRequest(ctx, me, to, found); e != nil {
			s.log.Debug("subscription refused", "user", me.String(), "contact", to.String(), "condition", e.Condition, "text", e.Text)
			s.reply(sess, el, e)
			return
		}
	}
	if err := s.update(ctx, me, to, func(it *store.RosterItem) {
		it.InRoster = true
		if it.Subscription != store.SubTo && it.Subscription != store.SubBoth {
			it.PendingOut = true
		}
	}); err != nil {
		if errors.Is(err, errRosterFull) {
			s.reply(sess, el, s.errRosterFull("your"))
		} else {
			s.reply(sess, el, stanza.ErrInternal)
		}
		return
	}
	s.inboundSubscribe(ctx, me, to, el)
}

// roomForRequest checks that a new request of me to contact fits: under
// roster.max_pending_out, and in both rosters when it adds an item to
// either (roster.max_items).
func (s *Server) roomForRequest(ctx context.Context, me, contact jid.JID, haveItem bool) *stanza.Error {
	room, pending, err := s.rosterRoom(ctx, me)
	if err != nil {
		return stanza.ErrInternal
	}
	if max := s.cfg.Roster.MaxPendingOut; max > 0 && pending >= max {
		s.lim.refusedPending.Add(1)
		return &stanza.Error{Type: "wait", Condition: "resource-constraint",
			Text: fmt.Sprintf("too many subscription requests awaiting an answer (at most %d)", max)}
	}
	if !haveItem && !room {
		return s.errRosterFull("your")
	}
	_, err = s.store.RosterItem(ctx, contact.Local(), me.String())
	if errors.Is(err, store.ErrNotFound) {
		room, _, err = s.rosterRoom(ctx, contact)
		if err == nil && !room {
			return s.errRosterFull("the contact's")
		}
	}
	if err != nil {
		return stanza.ErrInternal
	}
	return nil
}

// inboundSubscribe is the contact's side of a subscribe from sender. A
// request the contact has pending already is not delivered again
// (Appendix A.2.1).
func (s *Server) inboundSubscribe(ctx context.Context, sender, contact jid.JID, el *xmlstream.Element) {
	var auto, approvedNow, repeated bool
	err := s.update(ctx, contact, sender, func(it *store.RosterItem) {
		switch {
		case it.Subscription == store.SubFrom || it.Subscription == store.SubBoth:
			auto = true
		case it.Approved:
			it.Approved = false
			it.Subscription = addFrom(it.Subscription)
			auto, approvedNow = true, true
		case it.PendingIn:
			repeated = true
		default:
			it.PendingIn = true
		}
	})
	if err != nil {
		return
	}
	if repeated {
		s.lim.duplicates.Add(1)
		return
	}
	if auto {
		s.inboundSubscribed(ctx, contact, sender)
		if approvedNow {
			s.sendPresenceOf(contact, sender, true)
			s.pep.Subscribed(ctx, contact, sender)
		}
		return
	}
	p := xmlstream.New(xmlstream.NSClient, "presence", "type", "subscribe", "from", sender.String(), "to", contact.String())
	for _, c := range el.Children {
		if c.Elem != nil && c.Elem.Space == xmlstream.NSClient && c.Elem.Name == "status" {
			p.Append(c.Elem)
		}
	}
	s.sendToAvailable(contact, p) // if none is online, PendingIn keeps it
}

// inboundSubscribed is the user's side of an approval from contact.
func (s *Server) inboundSubscribed(ctx context.Context, contact, user jid.JID) {
	changed := false
	s.update(ctx, user, contact, func(it *store.RosterItem) {
		if it.PendingOut {
			it.PendingOut = false
			it.Subscription = addTo(it.Subscription)
			changed = true
		}
	})
	if changed {
		s.sendToAvailable(user, xmlstream.New(xmlstream.NSClient, "presence", "type", "subscribed", "from", contact.String(), "to", user.String()))
	}
}

// inboundUnsubscribe is the contact's side of an unsubscribe from sender.
func (s *Server) inboundUnsubscribe(ctx context.Context, sender, contact jid.JID) {
	changed := false
	s.update(ctx, contact, sender, func(it *store.RosterItem) {
		if it.Subscription == store.SubFrom || it.Subscription == store.SubBoth || it.PendingIn {
			changed = true
		}
		it.Subscription = removeFrom(it.Subscription)
		it.PendingIn = false
	})
	if changed {
		s.sendToAvailable(contact, xmlstream.New(xmlstream.NSClient, "presence", "type", "unsubscribe", "from", sender.String(), "to", contact.String()))
		s.sendPresenceOf(contact, sender, false)
	}
}

// inboundUnsubscribed is the user's side of a refusal or cancellation
// from sender; it reports whether the user's available resources were
// told.
func (s *Server) inboundUnsubscribed(ctx context.Context, sender, user jid.JID) bool {
	changed := false
	s.update(ctx, user, sender, func(it *store.RosterItem) {
		if it.Subscription == store.SubTo || it.Subscription == store.SubBoth || it.PendingOut {
			changed = true
		}
		it.Subscription = removeTo(it.Subscription)
		it.PendingOut = false
	})
	if changed {
		return s.sendToAvailable(user, xmlstream.New(xmlstream.NSClient, "presence", "type", "unsubscribed", "from", sender.String(), "to", user.String()))
	}
	return false
}

// update applies fn to user's item for contact (a fresh none item if
// absent), saves it, and pushes it if it is visible in the roster. An item
// that is neither in the roster nor remembers anything is deleted. A new
// item that would take the roster past roster.max_items is not created:
// errRosterFull. Other errors are logged and returned.
func (s *Server) update(ctx context.Context, user, contact jid.JID, fn func(*store.RosterItem)) error {
	cur, err := s.store.RosterItem(ctx, user.Local(), contact.String())
	isNew := errors.Is(err, store.ErrNotFound)
	if isNew {
		cur = store.RosterItem{Contact: contact.String(), Subscription: store.SubNone}
	} else if err != nil {
		s.log.Error("roster update", "user", user.String(), "contact", contact.String(), "err", err)
		return err
	}
	before := cur
	before.Groups = nil
	fn(&cur)
	after := cur
	after.Groups = nil
	if before.Subscription == after.Subscription && before.PendingIn == after.PendingIn &&
		before.PendingOut == after.PendingOut && before.Approved == after.Approved && before.InRoster == after.InRoster {
		return nil
	}
	var ver int64
	if !cur.InRoster && cur.Subscription == store.SubNone && !cur.PendingIn && !cur.PendingOut && !cur.Approved {
		if isNew {
			return nil
		}
		ver, err = s.store.DeleteRosterItem(ctx, user.Local(), contact.String())
	} else {
		if isNew && s.cfg.Roster.MaxItems > 0 {
			room, _, err := s.rosterRoom(ctx, user)
			if err != nil {
				s.log.Error("roster update", "user", user.String(), "contact", contact.String(), "err", err)
				return err
			}
			if !room {
				return errRosterFull
			}
		}
		ver, err = s.store.PutRosterItem(ctx, user.Local(), cur)
	}
	if err != nil {
		s.log.Error("roster update", "user", user.String(), "contact", contact.String(), "err", err)
		return err
	}
	if cur.InRoster {
		s.push(user, cur, ver)
	}
	return nil
}

func addFrom(sub string) string {
	if sub == store.SubTo || sub == store.SubBoth {
		return store.SubBoth
	}
	return store.SubFrom
}

func addTo(sub string) string {
	if sub == store.SubFrom || sub == store.SubBoth {
		return store.SubBoth
	}
	return store.SubTo
}

func removeFrom(sub string) string {
	if sub == store.SubBoth || sub == store.SubTo {
		return store.SubTo
	}
	return store.SubNone
}

func removeTo(sub string) string {
	if sub == store.SubBoth || sub == store.SubFrom {
		return store.SubFrom
	}
	return store.SubNone
}
