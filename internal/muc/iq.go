package muc

import (
	"context"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// iqReq is one IQ get or set to the service, a room or an occupant.
type iqReq struct {
	from    jid.JID
	to      jid.JID
	typ     string
	payload *xmlstream.Element
	el      *xmlstream.Element
}

func (q *iqReq) is(space, name string) bool {
	return q.payload.Space == space && q.payload.Name == name
}

// serveIQ validates an IQ, runs h and sends its result or error.
func (s *Service) serveIQ(ctx context.Context, el *xmlstream.Element, h func(*iqReq) (*xmlstream.Element, error)) {
	typ := el.Attr("type")
	if typ != "get" && typ != "set" {
		return // results and errors to the service answer nothing it asked
	}
	from, _ := jid.Parse(el.Attr("from"))
	to, _ := jid.Parse(el.Attr("to"))
	payloads := el.Elements()
	if el.Attr("id") == "" || len(payloads) != 1 {
		s.bounce(ctx, el, stanza.NewError("bad-request", "an iq get or set needs an id and exactly one payload"))
		return
	}
	res, err := h(&iqReq{from: from, to: to, typ: typ, payload: payloads[0], el: el})
	if err == errRelayed {
		return // the target occupant answers
	}
	if err != nil {
		se := stanza.AsError(err)
		if se == stanza.ErrInternal {
			s.log.Error("muc: iq failed", "to", to.String(), "ns", payloads[0].Space, "err", err)
		}
		s.bounce(ctx, el, se)
		return
	}
	out := xmlstream.New(xmlstream.NSClient, "iq", "type", "result", "id", el.Attr("id"), "from", to.String(), "to", from.String())
	out.Append(res)
	_ = s.send(ctx, from, out)
}

// handleIQ serves IQs to a room or to an occupant JID.
func (s *Service) handleIQ(ctx context.Context, from, to jid.JID, el *xmlstream.Element) {
	if t := el.Attr("type"); t == "result" || t == "error" {
		s.relayResponse(ctx, from, to, el)
		return
	}
	s.serveIQ(ctx, el, func(iq *iqReq) (*xmlstream.Element, error) {
		r, err := s.lockRoom(ctx, to.Bare())
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, stanza.NewError("item-not-found", "no such group")
		}
		defer r.mu.Unlock()
		if r.gone || r.locked && r.aff(from) != AffOwner {
			return nil, stanza.NewError("item-not-found", "no such group")
		}
		if !to.IsBare() {
			return s.occupantIQLocked(ctx, r, iq)
		}
		switch {
		case iq.typ == "get" && iq.is(NSDiscoInfo, "query"):
			return s.roomInfoLocked(r, iq)
		case iq.typ == "get" && iq.is(NSDiscoItems, "query"):
			return s.roomItemsLocked(r, iq)
		case iq.typ == "get" && iq.is(NSPing, "ping"):
			return nil, nil
		case iq.is(NSAdmin, "query"):
			if iq.typ == "get" {
				return s.adminGetLocked(r, iq)
			}
			return s.adminSetLocked(ctx, r, iq)
		case iq.is(NSOwner, "query"):
			if iq.typ == "get" {
				return s.ownerGetLocked(r, iq)
			}
			return s.ownerSetLocked(ctx, r, iq)
		case iq.typ == "get" && iq.is(NSMAM, "query"):
			return s.mamFormLocked(r, iq)
		case iq.typ == "set" && iq.is(NSMAM, "query"):
			return s.mamQueryLocked(ctx, r, iq)
		case iq.payload.Space == NSInvite:
			return s.inviteLinkLocked(ctx, r, iq)
		}
		return nil, stanza.ErrServiceUnavailable
	})
}

// occupantIQLocked answers IQs to room/nick. XEP-0410: a ping to one's own
// occupant JID tells a client whether it is still joined. Any other IQ
// from an occupant is relayed to one session of the target occupant
// (§18.1.3: needed in semi-anonymous rooms, where the real JID is hidden),
// from the sender's occupant JID and under an id of the room's; the answer
// comes back the same way (relayResponse).
func (s *Service) occupantIQLocked(ctx context.Context, r *Room, iq *iqReq) (*xmlstream.Element, error) {
	me := r.occupantByFull(iq.from)
	if me == nil {
		return nil, stanza.NewError("not-acceptable", "you are not joined to this group")
	}
	if iq.typ == "get" && iq.is(NSPing, "ping") && me.nick == iq.to.Resource() {
		return nil, nil
	}
	targets := r.occupantsByNick(iq.to.Resource())
	if len(targets) == 0 {
		return nil, stanza.NewError("item-not-found", "nobody with that nickname is in the group")
	}
	target := targets[0]
	fid := s.relays.add(relay{requester: iq.from, id: iq.el.Attr("id"), target: target.full, targetOcc: iq.to, senderOcc: r.occJID(me.nick)}, s.now())
	fw := iq.el.Copy()
	fw.SetAttr("id", fid)
	fw.SetAttr("from", r.occJID(me.nick).String())
	fw.SetAttr("to", target.full.String())
	if err := s.send(ctx, target.full, fw); err != nil {
		s.relays.take(fid, target.full, r.occJID(me.nick))
		return nil, stanza.NewError("recipient-unavailable", "that occupant cannot be reached")
	}
	return nil, errRelayed
}
