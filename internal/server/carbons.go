package server

import (
	"context"

	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// XEP-0280 Message Carbons: every device of an account sees the messages
// the others send and receive.
const (
	NSCarbons = "urn:xmpp:carbons:2"
	nsForward = "urn:xmpp:forward:0"
)

// carbonsSet enables or disables carbons for the requesting resource.
func (s *Server) carbonsSet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	switch iq.Payload.Name {
	case "enable":
		iq.Sess.SetCarbons(true)
	case "disable":
		iq.Sess.SetCarbons(false)
	default:
		return nil, stanza.ErrBadRequest
	}
	s.Router.Update(iq.Sess)
	return nil, nil
}

// carbonsEligible applies XEP-0280 §5.1: IM messages are copied, private
// ones and group chat are not.
func carbonsEligible(el *xmlstream.Element) bool {
	if el.Child(NSCarbons, "private") != nil || el.Child("urn:xmpp:hints", "no-copy") != nil {
		return false
	}
	switch el.Attr("type") {
	case "chat":
		return true
	case "groupchat", "error", "headline":
		return false
	}
	if el.Child(xmlstream.NSClient, "body") != nil {
		return true
	}
	for _, c := range el.Elements() {
		switch c.Space {
		case "urn:xmpp:receipts", "http://jabber.org/protocol/chatstates", "urn:xmpp:chat-markers:0", "jabber:x:conference":
			return true
		}
	}
	return false
}

// wrapCarbon builds <message from=bare><kind><forwarded><message/>...
func wrapCarbon(kind string, account jid.JID, el *xmlstream.Element) *xmlstream.Element {
	fwd := xmlstream.New(nsForward, "forwarded").Append(el.Copy())
	w := xmlstream.New(xmlstream.NSClient, "message", "from", account.String(), "type", el.Attr("type"))
	return w.Append(xmlstream.New(NSCarbons, kind).Append(fwd))
}

// receivedCarbon is the router's CarbonCopy hook.
func receivedCarbon(el *xmlstream.Element) *xmlstream.Element {
	if !carbonsEligible(el) {
		return nil
	}
	to, err := jid.Parse(el.Attr("to"))
	if err != nil {
		return nil
	}
	return wrapCarbon("received", to.Bare(), el)
}

// sentCarbons copies a message a resource sent to the account's other
// carbons-enabled resources (XEP-0280 §7), whether or not the sender
// enabled carbons itself.
// archiveID, when not empty, is the sender's archive id of the message
// (XEP-0313 §5: its stanza-id goes on the carbon, by the sender's bare JID).
func (s *Server) sentCarbons(sess *session.Session, to jid.JID, el *xmlstream.Element, archiveID string) {
	me := sess.JID()
	if to.Bare() == me.Bare() || !carbonsEligible(el) {
		return // to oneself: the other resources get it as a message already
	}
	var cc *xmlstream.Element
	for _, r := range s.Router.Resources(me.Bare()) {
		if r.JID() == me || !r.Carbons() {
			continue
		}
		if cc == nil {
			// The recipient's stanza-id is its archive's, not ours.
			inner := el.Copy()
			inner.RemoveChildren(NSSID, "stanza-id")
			if archiveID != "" {
				inner.Append(xmlstream.New(NSSID, "stanza-id", "id", archiveID, "by", me.Bare().String()))
			}
			cc = wrapCarbon("sent", me.Bare(), inner)
		}
		c := cc.Copy()
		c.SetAttr("to", r.JID().String())
		_ = r.Send(c)
	}
}
