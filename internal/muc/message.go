package muc

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// newID returns 80 random bits in base32: stanza-ids and invite tokens.
func newID() string {
	var b [10]byte
	rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// handleMessage routes a message to the room (groupchat, subject,
// mediated invitations) or to one occupant (a private message).
func (s *Service) handleMessage(ctx context.Context, from, to jid.JID, el *xmlstream.Element) {
	typ := el.Attr("type")
	if typ == "error" {
		s.handleMessageError(ctx, from, to)
		return
	}
	r, err := s.lockRoom(ctx, to.Bare())
	if err != nil {
		s.log.Error("muc: loading room", "room", to.Bare().String(), "err", err)
		s.bounce(ctx, el, stanza.ErrInternal)
		return
	}
	if r == nil {
		s.bounce(ctx, el, stanza.NewError("item-not-found", "no such group"))
		return
	}
	defer r.mu.Unlock()
	if r.gone || r.locked && r.aff(from) != AffOwner {
		s.bounce(ctx, el, stanza.NewError("item-not-found", "no such group"))
		return
	}
	var e error
	switch {
	case !to.IsBare():
		e = s.privateLocked(ctx, r, from, to.Resource(), el)
	case typ == "groupchat":
		e = s.groupchatLocked(ctx, r, from, el)
	default:
		if x := el.Child(NSUser, "x"); x != nil && (x.Child(NSUser, "invite") != nil || x.Child(NSUser, "decline") != nil) {
			e = s.inviteLocked(ctx, r, from, el, x)
		} else {
			e = stanza.NewError("bad-request", "send messages to the group with type='groupchat'")
		}
	}
	if e != nil {
		s.bounce(ctx, el, stanza.AsError(e))
	}
}

// handleMessageError: an occupant's client bounced a message the room sent
// it; the client is gone (§7.2.3 ghosts), so it leaves.
func (s *Service) handleMessageError(ctx context.Context, from, to jid.JID) {
	r, _ := s.lockRoom(ctx, to.Bare())
	if r == nil {
		return
	}
	defer r.mu.Unlock()
	if o := r.occupantByFull(from); o != nil {
		s.dropLocked(ctx, r, []*occupant{o})
	}
}

// storable reports whether a message is worth archiving: it says more
// than a chat state.
func storable(el *xmlstream.Element) bool {
	for _, c := range el.Elements() {
		if c.Space != NSChatStates && c.Name != "thread" && c.Space != NSSID && c.Space != NSOccupantID {
			return true
		}
	}
	return false
}

// groupchatLocked posts a message to the room (§7.4): stamped with the
// room's stanza-id (XEP-0359) and the sender's occupant-id (XEP-0421),
// durably archived, then written to every occupant from one
// serialization. When it returns, the sender's ✓ is deserved: the message
// is in the archive, where every member will find it.
func (s *Service) groupchatLocked(ctx context.Context, r *Room, from jid.JID, el *xmlstream.Element) error {
	o := r.occupantByFull(from)
	if o == nil {
		return stanza.NewError("not-acceptable", "join the group before sending to it")
	}
	if o.role == RoleVisitor {
		return stanza.NewError("forbidden", "you have no voice in this moderated group")
	}
	subj := el.Child(xmlstream.NSClient, "subject")
	if subj != nil && el.Child(xmlstream.NSClient, "body") == nil {
		if !(o.role == RoleModerator || r.cfg.ChangeSubject && o.role == RoleParticipant) {
			return stanza.NewError("forbidden", "only moderators may change the subject of this group")
		}
		old, oldFrom := r.subject, r.subjectFrom
		r.subject, r.subjectFrom = subj.Text(), o.nick
		if err := s.saveLocked(ctx, r); err != nil {
			r.subject, r.subjectFrom = old, oldFrom
			return err
		}
	}
	archived := subj == nil && storable(el)
	msg := el.Copy()
	msg.SetAttr("to", "")
	msg.SetAttr("from", r.occJID(o.nick).String())
	// Forged ids in the room's name or the sender's (XEP-0359 §5,
	// XEP-0421 §4) are removed before the room adds its own.
	kept := msg.Children[:0]
	for _, n := range msg.Children {
		if n.Elem != nil && (n.Elem.Space == NSOccupantID || n.Elem.Space == NSSID && n.Elem.Attr("by") == r.jid.String()) {
			continue
		}
		kept = append(kept, n)
	}
	msg.Children = kept
	id := newID()
	msg.Append(xmlstream.New(NSSID, "stanza-id", "id", id, "by", r.jid.String()))
	msg.Append(xmlstream.New(NSOccupantID, "occupant-id", "id", o.id))
	if archived && !r.locked {
		_, err := s.st.ArchiveRoomMessage(ctx, r.jid.String(), store.RoomMessage{
			StanzaID: id, Sender: from.Bare().String(), Nick: o.nick, Stored: s.now().UTC(),
			Data: xmlstream.Append(nil, msg, ""),
		})
		if err != nil {
			return err
		}
	}
	shared := xmlstream.Share(msg)
	var gone []*occupant
	for _, to := range r.occupants {
		if s.send(ctx, to.full, shared.With("to", to.full.String())) != nil {
			gone = append(gone, to)
		}
	}
	s.dropLocked(ctx, r, gone)
	if archived && s.Push != nil {
		s.Push(r.jid, msg, r.absentMembers())
	}
	return nil
}

// absentMembers lists the members (owners, admins, members) with no
// session in the room.
func (r *Room) absentMembers() []jid.JID {
	present := map[jid.JID]bool{}
	for _, o := range r.occupants {
		present[o.full.Bare()] = true
	}
	var out []jid.JID
	for j, a := range r.affs {
		if affRank[a.Affiliation] > 0 && !present[j] {
			out = append(out, j)
		}
	}
	return out
}

// privateLocked delivers a private message to every session of an
// occupant (§7.5), from the sender's occupant JID.
func (s *Service) privateLocked(ctx context.Context, r *Room, from jid.JID, nick string, el *xmlstream.Element) error {
	o := r.occupantByFull(from)
	if o == nil {
		return stanza.NewError("not-acceptable", "join the group before sending private messages in it")
	}
	if el.Attr("type") == "groupchat" {
		return stanza.NewError("bad-request", "a groupchat message goes to the group's bare JID")
	}
	targets := r.occupantsByNick(nick)
	if len(targets) == 0 {
		return stanza.NewError("item-not-found", "nobody with that nickname is in the group")
	}
	msg := el.Copy()
	msg.SetAttr("from", r.occJID(o.nick).String())
	msg.RemoveChildren(NSOccupantID, "")
	msg.Append(xmlstream.New(NSUser, "x"))
	msg.Append(xmlstream.New(NSOccupantID, "occupant-id", "id", o.id))
	var gone []*occupant
	for _, t := range targets {
		m := msg.Copy()
		m.SetAttr("to", t.full.String())
		if s.send(ctx, t.full, m) != nil {
			gone = append(gone, t)
		}
	}
	s.dropLocked(ctx, r, gone)
	return nil
}

// inviteLocked handles mediated invitations and declines (§7.8.2). In a
// members-only room an invitation by an owner or admin — or by a member
// when the room allows members to invite — makes the invitee a member, so
// the invitation can be used; anyone else's is refused.
func (s *Service) inviteLocked(ctx context.Context, r *Room, from jid.JID, el, x *xmlstream.Element) error {
	inviterAff := r.aff(from)
	if d := x.Child(NSUser, "decline"); d != nil {
		to, err := jid.Parse(d.Attr("to"))
		if err != nil || to.IsZero() {
			return stanza.NewError("jid-malformed", "decline needs a valid 'to'")
		}
		out := xmlstream.New(xmlstream.NSClient, "message", "from", r.jid.String(), "to", to.String())
		fx := xmlstream.New(NSUser, "x")
		dec := xmlstream.New(NSUser, "decline", "from", from.Bare().String())
		if reason := d.ChildText(NSUser, "reason"); reason != "" {
			dec.Append(xmlstream.New(NSUser, "reason").AppendText(reason))
		}
		out.Append(fx.Append(dec))
		return s.send(ctx, to.Bare(), out)
	}
	if r.occupantByFull(from) == nil && affRank[inviterAff] < 1 {
		return stanza.NewError("not-acceptable", "only the group's members and occupants may invite")
	}
	for _, inv := range x.Elements() {
		if inv.Space != NSUser || inv.Name != "invite" {
			continue
		}
		invitee, err := jid.Parse(inv.Attr("to"))
		if err != nil || invitee.IsZero() || invitee.Local() == "" {
			return stanza.NewError("jid-malformed", "invite needs a valid 'to'")
		}
		invitee = invitee.Bare()
		addMember := false
		if r.cfg.MembersOnly {
			if !(affRank[inviterAff] >= affRank[AffAdmin] || r.cfg.AllowInvites && inviterAff == AffMember) {
				return stanza.NewError("forbidden", "only admins may invite to this group")
			}
			switch r.aff(invitee) {
			case AffOutcast:
				return stanza.NewError("not-allowed", "that user is banned from this group; an admin must lift the ban first")
			case AffNone:
				if r.memberCount() >= r.cfg.MaxUsers {
					return errRoomFull
				}
				addMember = true
			}
		}
		out := xmlstream.New(xmlstream.NSClient, "message", "from", r.jid.String(), "to", invitee.String(), "id", newID())
		ix := xmlstream.New(NSUser, "x")
		i := xmlstream.New(NSUser, "invite", "from", from.Bare().String())
		if reason := inv.ChildText(NSUser, "reason"); reason != "" {
			i.Append(xmlstream.New(NSUser, "reason").AppendText(reason))
		}
		ix.Append(i)
		out.Append(ix)
		// Delivered (or stored for later) first: an invitation to an
		// account that does not exist adds nobody.
		if err := s.send(ctx, invitee, out); err != nil {
			var se *stanza.Error
			if errors.As(err, &se) {
				return se
			}
			return err
		}
		if addMember {
			if err := s.setAffLocked(ctx, r, store.Affiliation{JID: invitee.String(), Affiliation: AffMember, Reason: "invited by " + from.Bare().String()}); err != nil {
				return err
			}
		}
	}
	return nil
}

// stamp formats a XEP-0082 timestamp.
func stamp(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
