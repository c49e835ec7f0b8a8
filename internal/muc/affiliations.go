package muc

import (
	"context"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// adminGetLocked returns an affiliation or role list (§9.5, §8.5). In a
// members-only room the member list is visible to members, as WhatsApp
// shows every member the group's participants; the ban list only to
// admins; role lists to moderators.
func (s *Service) adminGetLocked(r *Room, iq *iqReq) (*xmlstream.Element, error) {
	items := iq.payload.Elements()
	if len(items) != 1 || items[0].Name != "item" || items[0].Space != NSAdmin {
		return nil, stanza.NewError("bad-request", "ask for one list: <item affiliation='member'/> or <item role='moderator'/>")
	}
	want := items[0]
	myAff := r.aff(iq.from)
	q := xmlstream.New(NSAdmin, "query")
	if aff := want.Attr("affiliation"); aff != "" {
		switch aff {
		case AffOwner, AffAdmin, AffMember:
			if !r.canRead(iq.from) {
				return nil, stanza.NewError("forbidden", "only members see the member list of this group")
			}
		case AffOutcast:
			if affRank[myAff] < affRank[AffAdmin] {
				return nil, stanza.NewError("forbidden", "only admins see the ban list")
			}
		default:
			return nil, stanza.NewError("bad-request", "unknown affiliation")
		}
		for _, a := range sortedAffs(r) {
			if a.Affiliation != aff {
				continue
			}
			it := xmlstream.New(NSAdmin, "item", "affiliation", aff, "jid", a.JID, "nick", a.Nick)
			if a.Reason != "" && aff == AffOutcast {
				it.Append(xmlstream.New(NSAdmin, "reason").AppendText(a.Reason))
			}
			q.Append(it)
		}
		return q, nil
	}
	role := want.Attr("role")
	if role != RoleModerator && role != RoleParticipant && role != RoleVisitor {
		return nil, stanza.NewError("bad-request", "ask for an affiliation or a role list")
	}
	if me := r.occupantByFull(iq.from); me == nil || me.role != RoleModerator {
		return nil, stanza.NewError("forbidden", "only moderators see role lists")
	}
	for _, o := range r.occupants {
		if o.role == role {
			q.Append(xmlstream.New(NSAdmin, "item", "role", role, "nick", o.nick, "jid", o.full.String(), "affiliation", r.aff(o.full)))
		}
	}
	return q, nil
}

func sortedAffs(r *Room) []store.Affiliation {
	out := make([]store.Affiliation, 0, len(r.affs))
	for _, a := range r.affs {
		out = append(out, a)
	}
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].JID < out[j-1].JID; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// change is one validated item of an admin set.
type change struct {
	bare   jid.JID // affiliation change
	aff    string
	nick   string // role change (by nick) or reserved nick
	role   string
	reason string
}

// adminSetLocked applies affiliation and role changes (§9, §8): all items
// are checked first, so a list is applied entirely or not at all.
func (s *Service) adminSetLocked(ctx context.Context, r *Room, iq *iqReq) (*xmlstream.Element, error) {
	myAff := r.aff(iq.from)
	me := r.occupantByFull(iq.from)
	var changes []change
	for _, it := range iq.payload.Elements() {
		if it.Space != NSAdmin || it.Name != "item" {
			continue
		}
		c := change{aff: it.Attr("affiliation"), role: it.Attr("role"), nick: it.Attr("nick"), reason: it.ChildText(NSAdmin, "reason")}
		switch {
		case c.aff != "":
			if _, ok := affRank[c.aff]; !ok {
				return nil, stanza.NewError("bad-request", "unknown affiliation "+c.aff)
			}
			if j := it.Attr("jid"); j != "" {
				bare, err := jid.Parse(j)
				if err != nil || bare.Local() == "" {
					return nil, stanza.NewError("jid-malformed", "item jid must be a user's JID")
				}
				c.bare = bare.Bare()
			} else if occ := r.occupantsByNick(c.nick); len(occ) > 0 {
				c.bare = occ[0].full.Bare()
				c.nick = ""
			} else {
				return nil, stanza.NewError("bad-request", "an affiliation item needs a jid (or the nick of an occupant)")
			}
			if c.aff == AffOutcast && c.bare == iq.from.Bare() {
				return nil, stanza.NewError("conflict", "you cannot ban yourself") // §9.1
			}
			if err := r.checkAffChange(myAff, iq.from.Bare(), c.bare, c.aff); err != nil {
				return nil, err
			}
			for j, a := range r.affs {
				if c.nick != "" && a.Nick == c.nick && j != c.bare {
					return nil, stanza.NewError("conflict", "that nickname is reserved by another member")
				}
			}
		case c.role != "":
			if me == nil || me.role != RoleModerator {
				return nil, stanza.NewError("forbidden", "only moderators change roles")
			}
			targets := r.occupantsByNick(c.nick)
			if len(targets) == 0 {
				return nil, stanza.NewError("item-not-found", "nobody with that nickname is in the group")
			}
			tAff := r.aff(targets[0].full)
			switch c.role {
			case RoleNone:
				// §8.2: nobody is kicked by a moderator of lower
				// affiliation.
				if affRank[tAff] > affRank[myAff] {
					return nil, stanza.NewError("not-allowed", "you cannot kick someone with a higher affiliation")
				}
			case RoleVisitor, RoleParticipant:
				// §8.4, §9.7: admins and owners keep voice and
				// moderation.
				if affRank[tAff] >= affRank[AffAdmin] {
					return nil, stanza.NewError("not-allowed", "admins and owners always keep voice and moderation")
				}
			case RoleModerator:
				if affRank[myAff] < affRank[AffAdmin] {
					return nil, stanza.NewError("forbidden", "only admins grant moderation")
				}
			default:
				return nil, stanza.NewError("bad-request", "unknown role "+c.role)
			}
		default:
			return nil, stanza.NewError("bad-request", "an item needs an affiliation or a role")
		}
		changes = append(changes, c)
	}
	if len(changes) == 0 {
		return nil, stanza.NewError("bad-request", "no items")
	}
	// Capacity: the members after the change must fit.
	after := map[jid.JID]string{}
	for j, a := range r.affs {
		after[j] = a.Affiliation
	}
	owners := 0
	for _, c := range changes {
		if c.aff != "" {
			after[c.bare] = c.aff
		}
	}
	n := 0
	for _, a := range after {
		if affRank[a] > 0 {
			n++
		}
		if a == AffOwner {
			owners++
		}
	}
	if n > r.cfg.MaxUsers && n > r.memberCount() {
		return nil, errRoomFull
	}
	if owners == 0 {
		return nil, stanza.NewError("conflict", "a group needs at least one owner; make someone else owner first")
	}
	for _, c := range changes {
		if c.aff != "" {
			if err := s.applyAffLocked(ctx, r, c); err != nil {
				return nil, err
			}
		} else {
			s.applyRoleLocked(ctx, r, c)
		}
	}
	return nil, nil
}

// checkAffChange is §9 and §10's permission table: owners change
// anything; admins only manage members, non-members and outcasts; nobody
// else changes affiliations, except their own to none (leaving). An admin
// can never remove or ban the owner.
func (r *Room) checkAffChange(myAff string, me, target jid.JID, to string) error {
	cur := r.aff(target)
	// Leaving the group (WhatsApp's "Exit group"): anyone may give up
	// their own affiliation. The last owner still cannot (conflict, below).
	if me == target && to == AffNone {
		return nil
	}
	switch myAff {
	case AffOwner:
		return nil
	case AffAdmin:
		if affRank[cur] >= affRank[AffAdmin] {
			return stanza.NewError("not-allowed", "admins cannot change the affiliation of an admin or owner")
		}
		if affRank[to] >= affRank[AffAdmin] {
			return stanza.NewError("not-allowed", "only owners appoint admins and owners")
		}
		return nil
	}
	return stanza.NewError("forbidden", "only admins and owners manage the group's members")
}

// applyAffLocked stores an affiliation and updates the occupants it
// concerns (§9.1, §9.4, §9.7): a ban removes them with 301, losing
// membership of a members-only room removes them with 321, anything else
// changes their role and is announced.
func (s *Service) applyAffLocked(ctx context.Context, r *Room, c change) error {
	// The reserved nick (§7.12): the one given with the item, else the
	// one the user had.
	nick := c.nick
	if old, ok := r.affs[c.bare]; ok && nick == "" {
		nick = old.Nick
	}
	if c.aff == AffOutcast || c.aff == AffNone {
		nick = ""
	}
	if err := s.setAffLocked(ctx, r, store.Affiliation{JID: c.bare.String(), Affiliation: c.aff, Nick: nick, Reason: c.reason}); err != nil {
		return err
	}
	for _, o := range r.occupantsOf(c.bare) {
		switch {
		case c.aff == AffOutcast:
			s.removeWithLocked(ctx, r, o, codeBanned, c.reason)
		case c.aff == AffNone && r.cfg.MembersOnly:
			s.removeWithLocked(ctx, r, o, codeAffChange, c.reason)
		default:
			o.role = r.defaultRole(c.aff)
			s.broadcastPresenceLocked(ctx, r, o, "")
		}
	}
	return nil
}

// applyRoleLocked changes the role of every session with a nick; role none
// is a kick (§8.2, status 307).
func (s *Service) applyRoleLocked(ctx context.Context, r *Room, c change) {
	for _, o := range r.occupantsByNick(c.nick) {
		if c.role == RoleNone {
			s.removeWithLocked(ctx, r, o, codeKicked, c.reason)
			continue
		}
		o.role = c.role
		s.broadcastPresenceLocked(ctx, r, o, "")
	}
}

// removeWithLocked removes an occupant and tells everyone, the occupant
// included, why (status code and reason).
func (s *Service) removeWithLocked(ctx context.Context, r *Room, o *occupant, code, reason string) {
	r.removeOccupant(o)
	s.fanoutLocked(ctx, r, func(to *occupant) *xmlstream.Element {
		p := s.presenceFor(r, o, to, "unavailable", code)
		if reason != "" {
			p.Child(NSUser, "x").Child(NSUser, "item").Append(xmlstream.New(NSUser, "reason").AppendText(reason))
		}
		return p
	}, o)
	s.maybeCloseLocked(ctx, r)
}
