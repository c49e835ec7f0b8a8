package muc

import (
	"context"
	"errors"
	"net/url"

	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Invite links (docs/groups.md). WhatsApp lets admins share a link that
// makes whoever opens it a member. Here an admin asks the room for a token
// with an IQ in Bluetick's namespace:
//
//	<iq type='set' to='room@groups.example.com'><create xmlns='urn:bluetick:muc:invite:0'/></iq>
//	→ <invite xmlns='urn:bluetick:muc:invite:0' token='T' uri='xmpp:room@groups.example.com?join;password=T'/>
//
// <list/> (get) returns the room's tokens and <revoke token='T'/> (set)
// deletes one. The token travels as the room password, because that is
// what the XEP-0045 join URI (?join;password=) and every existing client's
// join dialog already carry: a user who joins with it becomes a member.
// The room is not password-protected: the password is only looked at when
// a non-member asks to join a members-only room.

// inviteURI is the xmpp: URI of a token (RFC 5122, XEP-0147 join action).
func inviteURI(room, token string) string {
	return "xmpp:" + room + "?join;password=" + url.QueryEscape(token)
}

func (s *Service) inviteLinkLocked(ctx context.Context, r *Room, iq *iqReq) (*xmlstream.Element, error) {
	if affRank[r.aff(iq.from)] < affRank[AffAdmin] {
		return nil, stanza.NewError("forbidden", "only admins manage the group's invite links")
	}
	if r.locked {
		return nil, stanza.NewError("not-allowed", "configure the group first")
	}
	switch {
	case iq.typ == "set" && iq.payload.Name == "create":
		inv := store.RoomInvite{Token: newID(), Room: r.jid.String(), Creator: iq.from.Bare().String(), Created: s.now().UTC()}
		if err := s.st.PutRoomInvite(ctx, inv); err != nil {
			return nil, err
		}
		return xmlstream.New(NSInvite, "invite", "token", inv.Token, "uri", inviteURI(inv.Room, inv.Token)), nil
	case iq.typ == "set" && iq.payload.Name == "revoke":
		tok := iq.payload.Attr("token")
		if tok == "" {
			return nil, stanza.NewError("bad-request", "revoke needs a token")
		}
		err := s.st.DeleteRoomInvite(ctx, r.jid.String(), tok)
		if errors.Is(err, store.ErrNotFound) {
			return nil, stanza.NewError("item-not-found", "this group has no such invite link")
		}
		return nil, err
	case iq.typ == "get" && iq.payload.Name == "list":
		invs, err := s.st.RoomInvites(ctx, r.jid.String())
		if err != nil {
			return nil, err
		}
		l := xmlstream.New(NSInvite, "list")
		for _, inv := range invs {
			l.Append(xmlstream.New(NSInvite, "invite", "token", inv.Token, "uri", inviteURI(inv.Room, inv.Token), "creator", inv.Creator, "created", stamp(inv.Created)))
		}
		return l, nil
	}
	return nil, stanza.NewError("bad-request", "use <create/> or <revoke token=''/> (set), or <list/> (get)")
}
