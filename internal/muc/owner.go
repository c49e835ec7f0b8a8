package muc

import (
	"context"
	"errors"
	"strconv"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Room configuration fields (XEP-0045 §15.5.3) the service understands.
const (
	fName          = "muc#roomconfig_roomname"
	fDesc          = "muc#roomconfig_roomdesc"
	fPersistent    = "muc#roomconfig_persistentroom"
	fMembersOnly   = "muc#roomconfig_membersonly"
	fModerated     = "muc#roomconfig_moderatedroom"
	fWhoIs         = "muc#roomconfig_whois"
	fMaxUsers      = "muc#roomconfig_maxusers"
	fAllowInvites  = "muc#roomconfig_allowinvites"
	fChangeSubject = "muc#roomconfig_changesubject"
	fPublic        = "muc#roomconfig_publicroom"
	// fAdminsOnly is Bluetick's own field (XEP-0068: a service may add
	// fields in its own namespace), WhatsApp's "only admins can send".
	fAdminsOnly = "urn:bluetick:muc:roomconfig#adminsonly"
)

// ownerGetLocked returns the configuration form (§10.2).
func (s *Service) ownerGetLocked(r *Room, iq *iqReq) (*xmlstream.Element, error) {
	if r.aff(iq.from) != AffOwner {
		return nil, stanza.NewError("forbidden", "only owners configure the group")
	}
	f := newForm("form", NSRoomConfig, "Group configuration")
	f.field(fName, "text-single", "Name", r.cfg.Name)
	f.field(fDesc, "text-single", "Description", r.cfg.Description)
	f.boolean(fPersistent, "Keep the group when nobody is in it", r.cfg.Persistent)
	f.boolean(fMembersOnly, "Members only", r.cfg.MembersOnly)
	f.boolean(fModerated, "Only members may speak", r.cfg.Moderated)
	f.list(fWhoIs, "Who sees members' addresses", r.cfg.WhoIs, "Moderators only", "moderators", "Anyone", "anyone")
	f.field(fMaxUsers, "text-single", "Maximum members (at most "+strconv.Itoa(s.cfg.MaxMembers)+")", strconv.Itoa(r.cfg.MaxUsers))
	f.boolean(fAllowInvites, "Members may invite others", r.cfg.AllowInvites)
	f.boolean(fChangeSubject, "Members may change the subject", r.cfg.ChangeSubject)
	f.boolean(fPublic, "List the group publicly", r.cfg.Public)
	f.boolean(fAdminsOnly, "Only admins can send messages", r.cfg.AdminsOnly)
	q := xmlstream.New(NSOwner, "query")
	q.Append(f.x)
	return q, nil
}

// applyConfig returns cfg changed by a submitted form; fields not in the
// form keep their values (§10.2: a client may submit only what changed).
func (s *Service) applyConfig(cfg RoomConfig, f *Form) (RoomConfig, error) {
	if ft := f.FormType(); ft != "" && ft != NSRoomConfig {
		return cfg, stanza.NewError("bad-request", "FORM_TYPE must be "+NSRoomConfig)
	}
	var err error
	boolField := func(name string, dst *bool) {
		if err == nil && f.Has(name) {
			*dst, err = f.Bool(name)
		}
	}
	if f.Has(fName) {
		cfg.Name = f.Value(fName)
	}
	if f.Has(fDesc) {
		cfg.Description = f.Value(fDesc)
	}
	if len(cfg.Name) > 1024 || len(cfg.Description) > 4096 {
		return cfg, stanza.NewError("not-acceptable", "name or description too long")
	}
	boolField(fPersistent, &cfg.Persistent)
	boolField(fMembersOnly, &cfg.MembersOnly)
	boolField(fModerated, &cfg.Moderated)
	boolField(fAllowInvites, &cfg.AllowInvites)
	boolField(fChangeSubject, &cfg.ChangeSubject)
	boolField(fPublic, &cfg.Public)
	boolField(fAdminsOnly, &cfg.AdminsOnly)
	if err != nil {
		return cfg, err
	}
	if f.Has(fWhoIs) {
		switch v := f.Value(fWhoIs); v {
		case "anyone", "moderators":
			cfg.WhoIs = v
		default:
			return cfg, stanza.NewError("not-acceptable", "whois must be anyone or moderators")
		}
	}
	if f.Has(fMaxUsers) {
		v := f.Value(fMaxUsers)
		n, err := strconv.Atoi(v)
		if v == "" || v == "none" {
			n, err = s.cfg.MaxMembers, nil
		}
		if err != nil || n < 1 || n > s.cfg.MaxMembers {
			return cfg, stanza.NewError("not-acceptable", "maxusers must be a number from 1 to "+strconv.Itoa(s.cfg.MaxMembers))
		}
		cfg.MaxUsers = n
	}
	return cfg, nil
}

// ownerSetLocked submits a configuration (which also unlocks a new room:
// an empty submitted form is the instant room of §10.1.2), cancels the
// creation of a locked room (§10.1.3), or destroys the room (§10.9).
func (s *Service) ownerSetLocked(ctx context.Context, r *Room, iq *iqReq) (*xmlstream.Element, error) {
	// The service itself (from its bare domain) acts as an owner: that is
	// the operator's `bluetick room destroy` forwarded from another node
	// (Destroy). No user can send from it: the server stamps their from.
	if r.aff(iq.from) != AffOwner && iq.from != s.domain {
		return nil, stanza.NewError("forbidden", "only owners configure or destroy the group")
	}
	if d := iq.payload.Child(NSOwner, "destroy"); d != nil {
		return nil, s.destroyLocked(ctx, r, d)
	}
	f, err := ParseForm(iq.payload.Child(NSData, "x"))
	if err != nil {
		return nil, err
	}
	switch f.Type {
	case "cancel":
		if r.locked {
			s.destroyLocked(ctx, r, nil)
		}
		return nil, nil
	case "submit":
	default:
		return nil, stanza.NewError("bad-request", "submit the form with type='submit'")
	}
	cfg, err := s.applyConfig(r.cfg, f)
	if err != nil {
		return nil, err
	}
	old := r.cfg
	r.cfg = cfg
	if r.locked {
		err = s.unlockLocked(ctx, r)
	} else {
		err = s.saveLocked(ctx, r)
	}
	if err != nil {
		r.cfg = old
		return nil, err
	}
	// Becoming members-only removes the non-members present (§9.1.1 note,
	// status 322).
	if cfg.MembersOnly && !old.MembersOnly {
		for _, o := range append([]*occupant(nil), r.occupants...) {
			if affRank[r.aff(o.full)] < 1 {
				s.removeWithLocked(ctx, r, o, codeMembersOnly, "")
			}
		}
	}
	// Roles follow the new configuration (moderated, admins only); those
	// that change are announced.
	for _, o := range append([]*occupant(nil), r.occupants...) {
		if role := r.defaultRole(r.aff(o.full)); role != o.role {
			o.role = role
			s.broadcastPresenceLocked(ctx, r, o, "")
		}
	}
	// §10.2.1: a configuration change is announced with status 104.
	s.fanoutLocked(ctx, r, func(to *occupant) *xmlstream.Element {
		m := xmlstream.New(xmlstream.NSClient, "message", "type", "groupchat", "from", r.jid.String(), "to", to.full.String(), "id", newID())
		m.Append(xmlstream.New(NSUser, "x").Append(xmlstream.New(NSUser, "status", "code", "104")))
		return m
	}, nil)
	return nil, nil
}

// destroyLocked ends the room (§10.9): every occupant is told, with the
// alternate venue and reason if any, and everything stored goes.
func (s *Service) destroyLocked(ctx context.Context, r *Room, d *xmlstream.Element) error {
	if !r.locked {
		if err := s.st.DeleteRoom(ctx, r.jid.String()); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	r.gone = true
	s.forget(r)
	occ := r.occupants
	r.occupants = nil
	for _, o := range occ {
		p := xmlstream.New(xmlstream.NSClient, "presence", "type", "unavailable", "from", r.occJID(o.nick).String(), "to", o.full.String())
		x := xmlstream.New(NSUser, "x")
		x.Append(xmlstream.New(NSUser, "item", "affiliation", AffNone, "role", RoleNone))
		dest := xmlstream.New(NSUser, "destroy")
		if d != nil {
			if alt, err := jid.Parse(d.Attr("jid")); err == nil && !alt.IsZero() {
				dest.SetAttr("jid", alt.String())
			}
			if reason := d.ChildText(NSOwner, "reason"); reason != "" {
				dest.Append(xmlstream.New(NSUser, "reason").AppendText(reason))
			}
		}
		x.Append(dest)
		x.Append(xmlstream.New(NSUser, "status", "code", codeSelf))
		p.Append(x)
		_ = s.send(ctx, o.full, p)
	}
	return nil
}
