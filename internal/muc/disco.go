package muc

import (
	"context"
	"encoding/json"
	"sort"
	"strconv"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// serviceInfo is disco#info of the service domain (XEP-0045 §6.2).
func (s *Service) serviceInfo(iq *iqReq) (*xmlstream.Element, error) {
	if iq.payload.Attr("node") != "" {
		return nil, stanza.ErrItemNotFound
	}
	q := xmlstream.New(NSDiscoInfo, "query")
	q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "conference", "type", "text", "name", "Groups"))
	for _, f := range []string{NSDiscoInfo, NSDiscoItems, NS, NSPing} {
		q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", f))
	}
	return q, nil
}

// serviceItems lists rooms (§6.3): the rooms the requester is a member
// of — a user's list of groups, as WhatsApp shows it — and the public
// rooms. Rooms are read from the store, not loaded into memory.
func (s *Service) serviceItems(ctx context.Context, iq *iqReq) (*xmlstream.Element, error) {
	if iq.payload.Attr("node") != "" {
		return nil, stanza.ErrItemNotFound
	}
	mine, err := s.st.RoomsOf(ctx, iq.from.Bare().String())
	if err != nil {
		return nil, err
	}
	all, err := s.st.ListRooms(ctx)
	if err != nil {
		return nil, err
	}
	member := map[string]bool{}
	for _, r := range mine {
		member[r] = true
	}
	q := xmlstream.New(NSDiscoItems, "query")
	for _, sr := range all {
		var cfg RoomConfig
		_ = json.Unmarshal(sr.Config, &cfg)
		if member[sr.JID] || cfg.Public {
			q.Append(xmlstream.New(NSDiscoItems, "item", "jid", sr.JID, "name", cfg.Name))
		}
	}
	return q, nil
}

// roomFeatures are the room's disco features: what it is and what it does.
func (r *Room) features() []string {
	f := []string{NS, NSDiscoInfo, NSDiscoItems, NSMAM, NSSID, NSOccupantID, NSPing, NSInvite}
	pick := func(on bool, yes, no string) {
		if on {
			f = append(f, yes)
		} else {
			f = append(f, no)
		}
	}
	pick(r.cfg.Persistent, "muc_persistent", "muc_temporary")
	pick(r.cfg.MembersOnly, "muc_membersonly", "muc_open")
	pick(r.cfg.Moderated || r.cfg.AdminsOnly, "muc_moderated", "muc_unmoderated")
	pick(r.cfg.WhoIs == "anyone", "muc_nonanonymous", "muc_semianonymous")
	pick(r.cfg.Public, "muc_public", "muc_hidden")
	f = append(f, "muc_unsecured")
	sort.Strings(f)
	return f
}

// roomInfoLocked is disco#info of a room (§6.4), with the muc#roominfo
// extension. It is answered to anyone: a client needs it to know the room
// is members-only before joining. The member count is for readers only.
func (s *Service) roomInfoLocked(r *Room, iq *iqReq) (*xmlstream.Element, error) {
	if iq.payload.Attr("node") != "" {
		return nil, stanza.ErrItemNotFound
	}
	q := xmlstream.New(NSDiscoInfo, "query")
	name := r.cfg.Name
	if name == "" {
		name = r.jid.Local()
	}
	q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "conference", "type", "text", "name", name))
	for _, f := range r.features() {
		q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", f))
	}
	form := newForm("result", NSRoomInfo, "")
	form.field("muc#roominfo_description", "text-single", "Description", r.cfg.Description)
	if r.canRead(iq.from) {
		form.field("muc#roominfo_occupants", "text-single", "Number of occupants", strconv.Itoa(len(r.occupants)))
		form.field("muc#roominfo_subject", "text-single", "Subject", r.subject)
	}
	form.field("muc#roomconfig_changesubject", "boolean", "Occupants may change the subject", boolStr(r.cfg.ChangeSubject))
	form.field("muc#roomconfig_allowinvites", "boolean", "Members may invite", boolStr(r.cfg.AllowInvites))
	q.Append(form.x)
	return q, nil
}

func boolStr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// roomItemsLocked lists the occupants (§6.5) — to those who may read the
// room only.
func (s *Service) roomItemsLocked(r *Room, iq *iqReq) (*xmlstream.Element, error) {
	if iq.payload.Attr("node") != "" {
		return nil, stanza.ErrItemNotFound
	}
	if !r.canRead(iq.from) {
		return nil, stanza.NewError("forbidden", "only members see who is in this group")
	}
	q := xmlstream.New(NSDiscoItems, "query")
	seen := map[string]bool{}
	for _, o := range r.occupants {
		if !seen[o.nick] {
			seen[o.nick] = true
			q.Append(xmlstream.New(NSDiscoItems, "item", "jid", r.occJID(o.nick).String()))
		}
	}
	return q, nil
}
