package server

import (
	"context"
	"errors"
	"strconv"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// itemElement renders a roster item (RFC 6121 §2.1.2).
func itemElement(it store.RosterItem) *xmlstream.Element {
	e := xmlstream.New(NSRoster, "item", "jid", it.Contact, "name", it.Name, "subscription", it.Subscription)
	if it.PendingOut {
		e.SetAttr("ask", "subscribe")
	}
	if it.Approved {
		e.SetAttr("approved", "true")
	}
	for _, g := range it.Groups {
		e.Append(xmlstream.New(NSRoster, "group").AppendText(g))
	}
	return e
}

// rosterGet returns the roster, or an empty result when the client's cached
// version is current (RFC 6121 §2.6 versioning).
func (s *Server) rosterGet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	if !iq.Sess.Interested() {
		iq.Sess.SetInterested()
		s.Router.Update(iq.Sess)
	}
	items, ver, err := s.store.Roster(ctx, iq.From.Local())
	if err != nil {
		return nil, err
	}
	v := strconv.FormatInt(ver, 10)
	if cv := iq.Payload.Attr("ver"); cv != "" && cv == v {
		return nil, nil
	}
	q := xmlstream.New(NSRoster, "query", "ver", v)
	for _, it := range items {
		if it.InRoster {
			q.Append(itemElement(it))
		}
	}
	return q, nil
}

// rosterSet adds, updates or removes one item (RFC 6121 §2.3-2.5).
func (s *Server) rosterSet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	items := iq.Payload.Elements()
	if len(items) != 1 || items[0].Name != "item" || items[0].Space != NSRoster {
		return nil, stanza.NewError("bad-request", "a roster set carries exactly one item")
	}
	x := items[0]
	c, err := jid.Parse(x.Attr("jid"))
	if err != nil {
		return nil, stanza.NewError("bad-request", "item jid is not a valid JID")
	}
	if !c.IsBare() {
		return nil, stanza.NewError("bad-request", "roster items are bare JIDs")
	}
	contact := c.String()
	user := iq.From.Local()
	me := iq.From.Bare()

	s.subMu.Lock()
	defer s.subMu.Unlock()
	cur, err := s.store.RosterItem(ctx, user, contact)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}

	switch x.Attr("subscription") {
	case "remove":
		if !exists || !cur.InRoster {
			return nil, stanza.NewError("item-not-found", "no such roster item")
		}
		// Removing cancels both directions (§2.5.2).
		if cur.Subscription == store.SubTo || cur.Subscription == store.SubBoth || cur.PendingOut {
			s.inboundUnsubscribe(ctx, me, c)
		}
		if cur.Subscription == store.SubFrom || cur.Subscription == store.SubBoth || cur.PendingIn {
			s.inboundUnsubscribed(ctx, me, c)
			if cur.Subscription != store.SubNone && cur.Subscription != store.SubTo {
				s.sendPresenceOf(me, c, false)
			}
		}
		ver, err := s.store.DeleteRosterItem(ctx, user, contact)
		if err != nil {
			return nil, err
		}
		s.push(me, store.RosterItem{Contact: contact, Subscription: "remove"}, ver)
		return nil, nil
	case "", "none", "to", "from", "both":
		// A client cannot set subscription states; the attribute is
		// ignored (§2.1.2.5), only "remove" means something.
	default:
		return nil, stanza.NewError("bad-request", "unknown subscription value")
	}
	var groups []string
	seen := map[string]bool{}
	for _, g := range x.Elements() {
		if g.Name != "group" || g.Space != NSRoster {
			continue
		}
		name := g.Text()
		if name == "" {
			return nil, stanza.NewError("not-acceptable", "empty group name")
		}
		if seen[name] {
			return nil, stanza.NewError("bad-request", "duplicate group")
		}
		seen[name] = true
		groups = append(groups, name)
	}
	if !exists {
		room, _, err := s.rosterRoom(ctx, me)
		if err != nil {
			return nil, err
		}
		if !room {
			return nil, s.errRosterFull("your")
		}
		cur = store.RosterItem{Contact: contact, Subscription: store.SubNone}
	}
	cur.Name = x.Attr("name")
	cur.Groups = groups
	cur.InRoster = true
	ver, err := s.store.PutRosterItem(ctx, user, cur)
	if err != nil {
		return nil, err
	}
	s.push(me, cur, ver)
	return nil, nil
}

// push sends a roster push to every interested resource (§2.1.6).
func (s *Server) push(user jid.JID, it store.RosterItem, ver int64) {
	for _, r := range s.Router.Resources(user) {
		if !r.Interested() {
			continue
		}
		var item *xmlstream.Element
		if it.Subscription == "remove" {
			item = xmlstream.New(NSRoster, "item", "jid", it.Contact, "subscription", "remove")
		} else {
			item = itemElement(it)
		}
		iq := xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "push"+NewID(), "to", r.JID().String())
		iq.Append(xmlstream.New(NSRoster, "query", "ver", strconv.FormatInt(ver, 10)).Append(item))
		_ = r.Send(iq)
	}
}
