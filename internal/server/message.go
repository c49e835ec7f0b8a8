package server

import (
	"context"
	"errors"

	"bluetick/internal/jid"
	"bluetick/internal/router"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// handleMessage routes a message from a bound session. The message is
// queued to the recipient's session(s) or the store, or bounced, before it
// returns; if its ✓ must wait for the store, the returned function waits
// and completes it (see HandleAsync).
func (s *Server) handleMessage(ctx context.Context, sess *session.Session, to jid.JID, el *xmlstream.Element) func() {
	if to.IsZero() {
		// RFC 6120 §8.1.1.1: no 'to' means the sender's own bare JID.
		to = sess.JID().Bare()
		el.SetAttr("to", to.String())
	}
	if to.Domain() != s.Domain.Domain() {
		s.reply(sess, el, stanza.NewError("remote-server-not-found", "this server does not federate with other domains"))
		return nil
	}
	if to.Local() == "" {
		// Messages to the server itself carry nothing it acts on.
		if el.Attr("type") != "error" {
			s.reply(sess, el, stanza.ErrServiceUnavailable)
		}
		return nil
	}
	if err := s.blockedMessage(ctx, sess.JID(), to, el); err != nil { // mam branch: XEP-0191
		if err != errDrop {
			s.reply(sess, el, stanza.AsError(err))
		}
		return nil
	}
	if el.Attr("type") != "error" {
		stampStanzaID(el, to.Bare())
	}
	w, err := s.Router.Route(ctx, to, el)
	if w == nil {
		s.routed(ctx, sess, to, el, err)
		return nil
	}
	return func() { s.routed(ctx, sess, to, el, s.Router.Settle(ctx, w)) }
}

// routed completes a message once its delivery is decided: archive and
// sent carbons, or the error bounce.
func (s *Server) routed(ctx context.Context, sess *session.Session, to jid.JID, el *xmlstream.Element, err error) {
	switch {
	case err == nil, errors.Is(err, router.ErrDropped):
		var sid string
		if err == nil {
			sid = s.archiveMessage(ctx, sess.JID(), to, el) // mam branch: XEP-0313
		}
		s.sentCarbons(sess, to, el, sid)
	default:
		var se *stanza.Error
		if !errors.As(err, &se) {
			s.log.Error("message delivery failed", "from", sess.JID().String(), "to", to.String(), "err", err)
		}
		s.reply(sess, el, stanza.AsError(err))
	}
}

// stampStanzaID gives the message the recipient's server-assigned id
// (XEP-0359 §4) after removing any the sender forged in that name (§5).
func stampStanzaID(el *xmlstream.Element, by jid.JID) {
	bys := by.String()
	kept := el.Children[:0]
	for _, n := range el.Children {
		if n.Elem != nil && n.Elem.Space == NSSID && n.Elem.Name == "stanza-id" && n.Elem.Attr("by") == bys {
			continue
		}
		kept = append(kept, n)
	}
	el.Children = kept
	el.Append(xmlstream.New(NSSID, "stanza-id", "id", NewID(), "by", bys))
}
