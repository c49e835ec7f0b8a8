package server

import (
	"context"
	"errors"

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
		s.update(ctx, me, to, func(it *store.RosterItem) {
			it.InRoster = true
			if it.Subscription != store.SubTo && it.Subscription != store.SubBoth {
				it.PendingOut = true
			}
		})
		if !ok {
			// No such account: answer as its server would, with a refusal.
			s.inboundUnsubscribed(ctx, to, me)
			return
		}
		s.inboundSubscribe(ctx, me, to, el)
	case "subscribed":
		if !ok {
			return
		}
		var approved bool
		s.update(ctx, me, to, func(it *store.RosterItem) {
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

// inboundSubscribe is the contact's side of a subscribe from sender.
func (s *Server) inboundSubscribe(ctx context.Context, sender, contact jid.JID, el *xmlstream.Element) {
	var auto, approvedNow bool
	s.update(ctx, contact, sender, func(it *store.RosterItem) {
		switch {
		case it.Subscription == store.SubFrom || it.Subscription == store.SubBoth:
			auto = true
		case it.Approved:
			it.Approved = false
			it.Subscription = addFrom(it.Subscription)
			auto, approvedNow = true, true
		default:
			it.PendingIn = true
		}
	})
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
// from sender.
func (s *Server) inboundUnsubscribed(ctx context.Context, sender, user jid.JID) {
	changed := false
	s.update(ctx, user, sender, func(it *store.RosterItem) {
		if it.Subscription == store.SubTo || it.Subscription == store.SubBoth || it.PendingOut {
			changed = true
		}
		it.Subscription = removeTo(it.Subscription)
		it.PendingOut = false
	})
	if changed {
		s.sendToAvailable(user, xmlstream.New(xmlstream.NSClient, "presence", "type", "unsubscribed", "from", sender.String(), "to", user.String()))
	}
}

// update applies fn to user's item for contact (a fresh none item if
// absent), saves it, and pushes it if it is visible in the roster. An item
// that is neither in the roster nor remembers anything is deleted.
func (s *Server) update(ctx context.Context, user, contact jid.JID, fn func(*store.RosterItem)) {
	cur, err := s.store.RosterItem(ctx, user.Local(), contact.String())
	if errors.Is(err, store.ErrNotFound) {
		cur = store.RosterItem{Contact: contact.String(), Subscription: store.SubNone}
	} else if err != nil {
		s.log.Error("roster update", "user", user.String(), "contact", contact.String(), "err", err)
		return
	}
	before := cur
	before.Groups = nil
	fn(&cur)
	after := cur
	after.Groups = nil
	if before.Subscription == after.Subscription && before.PendingIn == after.PendingIn &&
		before.PendingOut == after.PendingOut && before.Approved == after.Approved && before.InRoster == after.InRoster {
		return
	}
	var ver int64
	if !cur.InRoster && cur.Subscription == store.SubNone && !cur.PendingIn && !cur.PendingOut && !cur.Approved {
		ver, err = s.store.DeleteRosterItem(ctx, user.Local(), contact.String())
	} else {
		ver, err = s.store.PutRosterItem(ctx, user.Local(), cur)
	}
	if err != nil {
		s.log.Error("roster update", "user", user.String(), "contact", contact.String(), "err", err)
		return
	}
	if cur.InRoster {
		s.push(user, cur, ver)
	}
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
