package muc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// RoomInfo is one room as the operator sees it (`bluetick room list`).
type RoomInfo struct {
	JID        jid.JID
	Name       string
	Persistent bool
	// Locked: created, still waiting for its owner's configuration
	// (§10.1.1); it lives in memory only.
	Locked bool
	// Members counts owners, admins and members (the WhatsApp member
	// list), outcasts not included.
	Members int
	// Here reports whether the room's live state is on this node: only
	// then is Occupants (joined resources) known. In a single node it is
	// always true.
	Here      bool
	Occupants int
	Created   time.Time
}

// ErrNotHere is the answer of Destroy for a room whose live state is on
// another node when there is no way to forward to it.
var ErrNotHere = errors.New("the room's live state is on another node")

// Rooms lists every room: those in the store (shared by a cluster's
// nodes) and those only in memory here (created, not yet configured),
// sorted by JID. Occupants are counted for the rooms homed on this node.
func (s *Service) Rooms(ctx context.Context) ([]RoomInfo, error) {
	stored, err := s.st.ListRooms(ctx)
	if err != nil {
		return nil, err
	}
	live := map[jid.JID]*Room{}
	for _, r := range s.loaded() {
		live[r.jid] = r
	}
	var out []RoomInfo
	for _, sr := range stored {
		j, err := jid.Parse(sr.JID)
		if err != nil {
			continue
		}
		if r := live[j]; r != nil {
			if info, ok := s.liveInfo(r); ok {
				out = append(out, info)
				delete(live, j)
				continue
			}
		}
		cfg := s.defaultConfig()
		_ = json.Unmarshal(sr.Config, &cfg)
		affs, err := s.st.Affiliations(ctx, sr.JID)
		if err != nil {
			return nil, err
		}
		info := RoomInfo{JID: j, Name: cfg.Name, Persistent: cfg.Persistent, Created: sr.Created, Here: s.here(j)}
		for _, a := range affs {
			if a.Affiliation != AffOutcast && a.Affiliation != AffNone {
				info.Members++
			}
		}
		out = append(out, info)
		delete(live, j)
	}
	for _, r := range live {
		if info, ok := s.liveInfo(r); ok {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b RoomInfo) int { return strings.Compare(a.JID.String(), b.JID.String()) })
	return out, nil
}

// liveInfo describes a room in memory; false if it was destroyed or
// evicted meanwhile.
func (s *Service) liveInfo(r *Room) (RoomInfo, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gone || r.evicted {
		return RoomInfo{}, false
	}
	info := RoomInfo{JID: r.jid, Name: r.cfg.Name, Persistent: r.cfg.Persistent, Locked: r.locked,
		Created: r.created, Here: s.here(r.jid), Occupants: len(r.occupants)}
	for _, a := range r.affs {
		if a.Affiliation != AffOutcast && a.Affiliation != AffNone {
			info.Members++
		}
	}
	return info, true
}

func (s *Service) here(room jid.JID) bool { return s.Home == nil || s.Home(room) }

// Destroy is the operator's destruction of a room (`bluetick room
// destroy`), the same as its owner's (XEP-0045 §10.9): every occupant gets
// the unavailable presence with <destroy/> and the reason, and the room
// with its members, archive and invites is deleted. It returns how many
// occupants were told, or -1 when the room is homed on another node of a
// cluster: the destruction is forwarded there (as an owner's request
// from the service itself) and done when Destroy returns, but the
// occupants are counted there. An unknown room is an item-not-found
// stanza error.
func (s *Service) Destroy(ctx context.Context, room jid.JID, reason string) (int, error) {
	if room.Local() == "" || room.Domain() != s.domain.Domain() || !room.IsBare() {
		return 0, stanza.NewError("jid-malformed", fmt.Sprintf("%q is not a room of %s (e.g. team@%s)", room.String(), s.domain.Domain(), s.domain.Domain()))
	}
	d := xmlstream.New(NSOwner, "destroy")
	if reason != "" {
		d.Append(xmlstream.New(NSOwner, "reason").AppendText(reason))
	}
	if !s.here(room) {
		if s.Forward == nil {
			return 0, ErrNotHere
		}
		// A room not configured yet is in its home's memory only: the
		// operator destroys it there.
		if _, err := s.st.Room(ctx, room.String()); errors.Is(err, store.ErrNotFound) {
			return 0, stanza.NewError("item-not-found", "no room "+room.String())
		} else if err != nil {
			return 0, err
		}
		iq := xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", newID(), "from", s.domain.String(), "to", room.String()).
			Append(xmlstream.New(NSOwner, "query").Append(d))
		if err := s.Forward(ctx, room, s.domain, iq); err != nil {
			return 0, fmt.Errorf("forwarding to the room's home node: %w", err)
		}
		s.log.Info("muc: room destroyed by an administrator on its home node", "room", room.String(), "reason", reason)
		return -1, nil
	}
	r, err := s.lockRoom(ctx, room)
	if err != nil {
		return 0, err
	}
	if r == nil {
		return 0, stanza.NewError("item-not-found", "no room "+room.String())
	}
	defer r.mu.Unlock()
	n := len(r.occupants)
	if err := s.destroyLocked(ctx, r, d); err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0, err
	}
	s.log.Info("muc: room destroyed by an administrator", "room", room.String(), "occupants", n, "reason", reason)
	return n, nil
}
