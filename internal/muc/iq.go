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
	s.serveIQ(ctx, el, func(iq *iqReq) (*xmlstream.Element, error) {
		r, err := s.room(ctx, to.Bare())
		if err != nil {
			return nil, err
		}
		if r == nil {
			return nil, stanza.NewError("item-not-found", "no such group")
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.gone || r.locked && r.aff(from) != AffOwner {
			return nil, stanza.NewError("item-not-found", "no such group")
		}
		if !to.IsBare() {
			return s.occupantIQLocked(r, iq)
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
// occupant JID tells a client whether it is still joined. Other IQs to
// occupants are not relayed (service-unavailable, as for an absent
// entity).
func (s *Service) occupantIQLocked(r *Room, iq *iqReq) (*xmlstream.Element, error) {
	me := r.occupantByFull(iq.from)
	if iq.typ == "get" && iq.is(NSPing, "ping") {
		if me == nil {
			return nil, stanza.NewError("not-acceptable", "you are not joined to this group")
		}
		if me.nick == iq.to.Resource() {
			return nil, nil
		}
	}
	if len(r.occupantsByNick(iq.to.Resource())) == 0 {
		return nil, stanza.NewError("item-not-found", "nobody with that nickname is in the group")
	}
	return nil, stanza.NewError("service-unavailable", "this group does not relay IQs to occupants")
}
