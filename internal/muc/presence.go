package muc

import (
	"context"
	"errors"
	"unicode/utf8"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Status codes of muc#user presence (XEP-0045 §15.6.2).
const (
	codeNonAnonymous = "100"
	codeSelf         = "110"
	codeCreated      = "201"
	codeBanned       = "301"
	codeNickChange   = "303"
	codeKicked       = "307"
	codeAffChange    = "321"
	codeMembersOnly  = "322"
	codeLogged       = "170"
)

// errRoomFull is XEP-0045 §7.2.11: the room reached its maximum.
var errRoomFull = &stanza.Error{Type: "wait", Condition: "service-unavailable", Text: "the group is full"}

// handlePresence is everything sent to room/nick as presence: joining
// (§7.2), changing status (§7.7) or nick (§7.6), leaving (§7.14).
func (s *Service) handlePresence(ctx context.Context, from, to jid.JID, el *xmlstream.Element) {
	typ := el.Attr("type")
	switch typ {
	case "", "unavailable", "error":
	default:
		return // subscriptions to a room mean nothing
	}
	bare := to.Bare()
	nick := to.Resource()
	if typ == "" && (nick == "" || utf8.RuneCountInString(nick) > 64) {
		s.bounce(ctx, el, stanza.NewError("jid-malformed", "join with room@service/nickname (a nickname of at most 64 characters)"))
		return
	}
	var r *Room
	var created bool
	var err error
	if typ == "" {
		r, created, err = s.lockOrCreateRoom(ctx, bare, from.Bare())
	} else {
		r, err = s.lockRoom(ctx, bare)
	}
	if err != nil {
		s.log.Error("muc: loading room", "room", bare.String(), "err", err)
		s.bounce(ctx, el, stanza.ErrInternal)
		return
	}
	if r == nil {
		return // unavailable to a room that does not exist
	}
	defer r.mu.Unlock()
	o := r.occupantByFull(from)
	switch {
	case typ != "":
		// Unavailable, or a presence error from a client that is gone
		// (§7.14; a "ghost").
		if o != nil {
			s.leaveLocked(ctx, r, o, el)
		}
	case o == nil:
		if err := s.joinLocked(ctx, r, from, nick, el, created); err != nil {
			s.bounce(ctx, el, stanza.AsError(err))
			if created {
				r.gone = true
				s.forget(r)
			}
		}
	case o.nick != nick:
		if err := s.changeNickLocked(ctx, r, o, nick); err != nil {
			s.bounce(ctx, el, stanza.AsError(err))
		}
	default:
		o.pres = presencePayload(el)
		s.broadcastPresenceLocked(ctx, r, o, "")
	}
}

// presencePayload keeps what an occupant's presence says about itself
// (show, status, caps, ...), not what the room adds.
func presencePayload(el *xmlstream.Element) *xmlstream.Element {
	p := xmlstream.New(xmlstream.NSClient, "presence")
	for _, c := range el.Elements() {
		switch c.Space {
		case NS, NSUser, NSOccupantID:
			continue
		}
		p.Append(c.Copy())
	}
	return p
}

// joinLocked admits a new occupant or tells why not (§7.2).
func (s *Service) joinLocked(ctx context.Context, r *Room, from jid.JID, nick string, el *xmlstream.Element, created bool) error {
	bare := from.Bare()
	if r.gone {
		return stanza.NewError("item-not-found", "the group was destroyed")
	}
	aff := r.aff(bare)
	if r.locked && aff != AffOwner {
		return stanza.NewError("item-not-found", "the group is being created")
	}
	if aff == AffOutcast {
		return stanza.NewError("forbidden", "you are banned from this group")
	}
	x := el.Child(NS, "x")
	if r.cfg.MembersOnly && aff == AffNone {
		token := ""
		if x != nil {
			token = x.ChildText(NS, "password")
		}
		if token == "" {
			return stanza.NewError("registration-required", "this group is for members only")
		}
		inv, err := s.st.RoomInvite(ctx, token)
		if errors.Is(err, store.ErrNotFound) || err == nil && inv.Room != r.jid.String() {
			return stanza.NewError("not-authorized", "this invite link is not valid (revoked, or for another group)")
		}
		if err != nil {
			return err
		}
		if r.memberCount() >= r.cfg.MaxUsers {
			return errRoomFull
		}
		if err := s.setAffLocked(ctx, r, store.Affiliation{JID: bare.String(), Affiliation: AffMember, Reason: "joined with an invite link"}); err != nil {
			return err
		}
		aff = AffMember
		s.log.Info("muc: member joined with an invite link", "room", r.jid.String(), "user", bare.String())
	}
	for _, o := range r.occupantsByNick(nick) {
		if o.full.Bare() != bare {
			return stanza.NewError("conflict", "that nickname is in use in this group")
		}
	}
	for j, a := range r.affs {
		if a.Nick == nick && j != bare {
			return stanza.NewError("conflict", "that nickname is reserved by another member")
		}
	}
	if len(r.occupantsOf(bare)) == 0 && affRank[aff] < affRank[AffAdmin] && r.distinctUsers() >= r.cfg.MaxUsers {
		return errRoomFull
	}
	o := &occupant{full: from, nick: nick, role: r.defaultRole(aff), id: s.occupantID(r.jid, bare), pres: presencePayload(el)}
	// Existing occupants first (§7.2.3), then the newcomer to everyone
	// including itself (§7.2.4).
	for _, other := range r.occupants {
		_ = s.send(ctx, from, s.presenceFor(r, other, o, ""))
	}
	r.occupants = append(r.occupants, o)
	// The newcomer's own copy says the room is logged (170, §7.2.12: the
	// archive keeps every message for the members) and, for a new room,
	// that it was created (201).
	self := []string{codeLogged}
	if created {
		self = append(self, codeCreated)
	}
	s.fanoutLocked(ctx, r, func(to *occupant) *xmlstream.Element {
		if to == o {
			return s.presenceFor(r, o, to, "", self...)
		}
		return s.presenceFor(r, o, to, "")
	}, o)
	if !created {
		s.sendHistoryLocked(ctx, r, o, x)
	}
	// The subject, even empty, always ends the join (§7.2.16): clients
	// wait for it.
	subj := xmlstream.New(xmlstream.NSClient, "message", "type", "groupchat", "from", r.jid.String(), "to", from.String())
	if r.subjectFrom != "" {
		subj.SetAttr("from", r.occJID(r.subjectFrom).String())
	}
	subj.Append(xmlstream.New(xmlstream.NSClient, "subject").AppendText(r.subject))
	_ = s.send(ctx, from, subj)
	return nil
}

// presenceFor is o's presence as seen by to (§7.2.3): the real JID only in
// a non-anonymous room, to moderators, or to o itself.
func (s *Service) presenceFor(r *Room, o, to *occupant, typ string, codes ...string) *xmlstream.Element {
	p := xmlstream.New(xmlstream.NSClient, "presence", "from", r.occJID(o.nick).String(), "to", to.full.String(), "type", typ)
	if typ == "" && o.pres != nil {
		for _, c := range o.pres.Elements() {
			p.Append(c.Copy())
		}
	}
	x := xmlstream.New(NSUser, "x")
	role := o.role
	aff := r.aff(o.full)
	if typ == "unavailable" {
		role = RoleNone
	}
	item := xmlstream.New(NSUser, "item", "affiliation", aff, "role", role)
	if r.cfg.WhoIs == "anyone" || to.role == RoleModerator || to == o {
		item.SetAttr("jid", o.full.String())
	}
	x.Append(item)
	if to == o {
		x.Append(xmlstream.New(NSUser, "status", "code", codeSelf))
		if r.cfg.WhoIs == "anyone" && typ == "" {
			x.Append(xmlstream.New(NSUser, "status", "code", codeNonAnonymous))
		}
	}
	for _, c := range codes {
		x.Append(xmlstream.New(NSUser, "status", "code", c))
	}
	p.Append(x)
	p.Append(xmlstream.New(NSOccupantID, "occupant-id", "id", o.id))
	return p
}

// broadcastPresenceLocked sends o's presence to every occupant, o
// included; occupants whose session is gone are removed.
func (s *Service) broadcastPresenceLocked(ctx context.Context, r *Room, o *occupant, typ string, codes ...string) {
	s.fanoutLocked(ctx, r, func(to *occupant) *xmlstream.Element {
		return s.presenceFor(r, o, to, typ, codes...)
	}, o)
}

// fanoutLocked sends build(occupant) to every occupant (and to extra, if
// it is no longer in the list), then removes the occupants whose session
// is gone, telling the others.
func (s *Service) fanoutLocked(ctx context.Context, r *Room, build func(to *occupant) *xmlstream.Element, extra *occupant) {
	var gone []*occupant
	sentExtra := false
	for _, to := range r.occupants {
		if to == extra {
			sentExtra = true
		}
		if err := s.send(ctx, to.full, build(to)); err != nil {
			gone = append(gone, to)
		}
	}
	if extra != nil && !sentExtra {
		_ = s.send(ctx, extra.full, build(extra))
	}
	s.dropLocked(ctx, r, gone)
}

// dropLocked removes occupants that cannot be reached (their session
// ended without telling the room) and tells the others they left.
func (s *Service) dropLocked(ctx context.Context, r *Room, gone []*occupant) {
	for len(gone) > 0 {
		for _, g := range gone {
			r.removeOccupant(g)
		}
		left := gone
		gone = nil
		for _, to := range r.occupants {
			for _, g := range left {
				if s.send(ctx, to.full, s.presenceFor(r, g, to, "unavailable")) != nil {
					gone = append(gone, to)
					break
				}
			}
		}
	}
	s.maybeCloseLocked(ctx, r)
}

// leaveLocked removes an occupant that said goodbye (§7.14). When the
// same user is still in the room with the same nick from another device,
// only the leaving session is told: for the others nobody left.
func (s *Service) leaveLocked(ctx context.Context, r *Room, o *occupant, el *xmlstream.Element) {
	o.pres = presencePayload(el)
	r.removeOccupant(o)
	for _, x := range r.occupantsByNick(o.nick) {
		if x.full.Bare() == o.full.Bare() {
			_ = s.send(ctx, o.full, s.presenceFor(r, o, o, "unavailable"))
			return
		}
	}
	s.broadcastPresenceLocked(ctx, r, o, "unavailable")
	s.maybeCloseLocked(ctx, r)
}

// maybeCloseLocked ends a room nobody is in that must not outlive its
// occupants: a temporary room, or a new room its owner left before
// configuring it (§10.1).
func (s *Service) maybeCloseLocked(ctx context.Context, r *Room) {
	if len(r.occupants) > 0 || r.gone {
		return
	}
	switch {
	case r.locked:
		r.gone = true
		s.forget(r)
	case !r.cfg.Persistent:
		r.gone = true
		s.forget(r)
		if err := s.st.DeleteRoom(ctx, r.jid.String()); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Error("muc: deleting temporary room", "room", r.jid.String(), "err", err)
		}
	}
}

// changeNickLocked is §7.6: unavailable with 303 and the new nick, then
// available under the new nick.
func (s *Service) changeNickLocked(ctx context.Context, r *Room, o *occupant, nick string) error {
	bare := o.full.Bare()
	for _, x := range r.occupantsByNick(nick) {
		if x.full.Bare() != bare {
			return stanza.NewError("conflict", "that nickname is in use in this group")
		}
	}
	for j, a := range r.affs {
		if a.Nick == nick && j != bare {
			return stanza.NewError("conflict", "that nickname is reserved by another member")
		}
	}
	s.fanoutLocked(ctx, r, func(to *occupant) *xmlstream.Element {
		p := s.presenceFor(r, o, to, "unavailable", codeNickChange)
		p.Child(NSUser, "x").Child(NSUser, "item").SetAttr("nick", nick)
		return p
	}, nil)
	o.nick = nick
	s.broadcastPresenceLocked(ctx, r, o, "")
	return nil
}
