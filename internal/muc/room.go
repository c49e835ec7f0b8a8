package muc

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Affiliations (XEP-0045 §5.2) and roles (§5.1).
const (
	AffOwner   = "owner"
	AffAdmin   = "admin"
	AffMember  = "member"
	AffNone    = "none"
	AffOutcast = "outcast"

	RoleModerator   = "moderator"
	RoleParticipant = "participant"
	RoleVisitor     = "visitor"
	RoleNone        = "none"
)

// affRank orders affiliations by power.
var affRank = map[string]int{AffOutcast: -1, AffNone: 0, AffMember: 1, AffAdmin: 2, AffOwner: 3}

// RoomConfig is a room's configuration (muc#roomconfig, XEP-0045 §10.2),
// stored as JSON. New rooms are WhatsApp groups: persistent, members-only,
// non-anonymous.
type RoomConfig struct {
	Name          string `json:"name,omitempty"`
	Description   string `json:"description,omitempty"`
	Persistent    bool   `json:"persistent"`
	MembersOnly   bool   `json:"members_only"`
	Moderated     bool   `json:"moderated"`
	WhoIs         string `json:"whois"` // "anyone" (non-anonymous) or "moderators"
	MaxUsers      int    `json:"max_users"`
	AllowInvites  bool   `json:"allow_invites"`  // members may invite (and so add) others
	ChangeSubject bool   `json:"change_subject"` // participants may change the subject
	Public        bool   `json:"public"`         // listed in the service's disco#items
	// AdminsOnly is WhatsApp's "only admins can send messages": members
	// enter as visitors (no voice) and only admins and owners post.
	AdminsOnly bool `json:"admins_only"`
}

func (s *Service) defaultConfig() RoomConfig {
	return RoomConfig{Persistent: true, MembersOnly: true, WhoIs: "anyone", MaxUsers: s.cfg.MaxMembers, ChangeSubject: true}
}

// occupant is one joined session (a user may join from several).
type occupant struct {
	full jid.JID
	nick string
	role string
	id   string             // XEP-0421 occupant id
	pres *xmlstream.Element // last presence payload (show, status, ...)
}

// Room is one room's state. mu serializes everything that happens in the
// room: joins, leaves, messages and admin changes, so every occupant sees
// them in one order, the archive's.
type Room struct {
	jid jid.JID

	mu          sync.Mutex
	cfg         RoomConfig
	subject     string
	subjectFrom string
	created     time.Time
	locked      bool // created, waiting for its owner's configuration (§10.1.1); not stored yet
	gone        bool // destroyed
	evicted     bool // dropped from memory while idle: look it up again
	used        time.Time
	affs        map[jid.JID]store.Affiliation
	occupants   []*occupant // in join order
}

// room returns the room, from memory or the store, or nil if it does not
// exist.
func (s *Service) room(ctx context.Context, bare jid.JID) (*Room, error) {
	s.mu.Lock()
	r := s.rooms[bare]
	s.mu.Unlock()
	if r != nil {
		return r, nil
	}
	sr, err := s.st.Room(ctx, bare.String())
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r = &Room{jid: bare, subject: sr.Subject, subjectFrom: sr.SubjectFrom, created: sr.Created, affs: map[jid.JID]store.Affiliation{}}
	r.cfg = s.defaultConfig()
	if err := json.Unmarshal(sr.Config, &r.cfg); err != nil {
		s.log.Error("muc: room config unreadable, using defaults", "room", bare.String(), "err", err)
	}
	affs, err := s.st.Affiliations(ctx, bare.String())
	if err != nil {
		return nil, err
	}
	for _, a := range affs {
		if j, err := jid.Parse(a.JID); err == nil {
			r.affs[j] = a
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.rooms[bare]; cur != nil {
		return cur, nil // loaded concurrently
	}
	s.rooms[bare] = r
	return r, nil
}

// lockRoom returns the room locked (or nil if it does not exist). A room
// evicted from memory between lookup and lock is looked up again, so two
// copies of a room are never live at once.
func (s *Service) lockRoom(ctx context.Context, bare jid.JID) (*Room, error) {
	for {
		r, err := s.room(ctx, bare)
		if r == nil || err != nil {
			return nil, err
		}
		r.mu.Lock()
		if !r.evicted {
			r.used = s.now()
			return r, nil
		}
		r.mu.Unlock()
	}
}

// lockOrCreateRoom is lockRoom for a join: a room that does not exist is
// created, locked, owned by owner.
func (s *Service) lockOrCreateRoom(ctx context.Context, bare, owner jid.JID) (*Room, bool, error) {
	for {
		r, created, err := s.createRoom(ctx, bare, owner)
		if err != nil {
			return nil, false, err
		}
		r.mu.Lock()
		if !r.evicted {
			r.used = s.now()
			return r, created, nil
		}
		r.mu.Unlock()
	}
}

// EvictIdle drops rooms nobody is in and nobody used for idle from memory,
// every interval until ctx ends: everything about them is in the store,
// and a service with many groups must not keep them all. Occupants live
// only in memory, so occupied rooms stay.
func (s *Service) EvictIdle(ctx context.Context, interval, idle time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.evictIdle(idle)
	}
}

// loaded lists the rooms in memory. The list is copied under the
// service's lock and returned without it: a room's lock is never taken
// under the service's.
func (s *Service) loaded() []*Room {
	s.mu.Lock()
	defer s.mu.Unlock()
	rooms := make([]*Room, 0, len(s.rooms))
	for _, r := range s.rooms {
		rooms = append(rooms, r)
	}
	return rooms
}

func (s *Service) evictIdle(idle time.Duration) int {
	rooms := s.loaded()
	n := 0
	now := s.now()
	for _, r := range rooms {
		r.mu.Lock()
		if len(r.occupants) == 0 && !r.locked && !r.gone && now.Sub(r.used) >= idle {
			r.evicted = true
			s.forget(r)
			n++
		}
		r.mu.Unlock()
	}
	return n
}

// createRoom makes a new locked room owned by owner, or returns the room
// that already exists.
func (s *Service) createRoom(ctx context.Context, bare, owner jid.JID) (r *Room, created bool, err error) {
	if r, err := s.room(ctx, bare); r != nil || err != nil {
		return r, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.rooms[bare]; cur != nil {
		return cur, false, nil
	}
	r = &Room{jid: bare, cfg: s.defaultConfig(), created: s.now().UTC(), locked: true,
		affs: map[jid.JID]store.Affiliation{owner: {JID: owner.String(), Affiliation: AffOwner}}}
	s.rooms[bare] = r
	return r, true, nil
}

// forget drops a room from memory (destroyed, or a temporary room left
// empty).
func (s *Service) forget(r *Room) {
	s.mu.Lock()
	if s.rooms[r.jid] == r {
		delete(s.rooms, r.jid)
	}
	s.mu.Unlock()
}

// unlockLocked stores a newly configured room with its owner. Called with
// r.mu held.
func (s *Service) unlockLocked(ctx context.Context, r *Room) error {
	cfg, _ := json.Marshal(r.cfg)
	if err := s.st.CreateRoom(ctx, store.Room{JID: r.jid.String(), Config: cfg, Created: r.created}); err != nil {
		return err
	}
	for _, a := range r.affs {
		if err := s.st.SetAffiliation(ctx, r.jid.String(), a); err != nil {
			return err
		}
	}
	r.locked = false
	return nil
}

// saveLocked writes config and subject. Called with r.mu held.
func (s *Service) saveLocked(ctx context.Context, r *Room) error {
	if r.locked {
		return nil
	}
	cfg, _ := json.Marshal(r.cfg)
	return s.st.UpdateRoom(ctx, store.Room{JID: r.jid.String(), Config: cfg, Subject: r.subject, SubjectFrom: r.subjectFrom, Created: r.created})
}

// setAffLocked changes a user's affiliation in memory and in the store.
func (s *Service) setAffLocked(ctx context.Context, r *Room, a store.Affiliation) error {
	bare, err := jid.Parse(a.JID)
	if err != nil {
		return err
	}
	if !r.locked {
		if err := s.st.SetAffiliation(ctx, r.jid.String(), a); err != nil {
			return err
		}
	}
	if a.Affiliation == AffNone {
		delete(r.affs, bare)
	} else {
		r.affs[bare] = a
	}
	return nil
}

// aff is a user's affiliation.
func (r *Room) aff(bare jid.JID) string {
	if a, ok := r.affs[bare.Bare()]; ok {
		return a.Affiliation
	}
	return AffNone
}

// memberCount counts owners, admins and members.
func (r *Room) memberCount() int {
	n := 0
	for _, a := range r.affs {
		if affRank[a.Affiliation] > 0 {
			n++
		}
	}
	return n
}

// defaultRole is the role an affiliation gets on entering (§5.1.2).
func (r *Room) defaultRole(aff string) string {
	switch aff {
	case AffOwner, AffAdmin:
		return RoleModerator
	case AffMember:
		if r.cfg.AdminsOnly {
			return RoleVisitor
		}
		return RoleParticipant
	case AffNone:
		if r.cfg.Moderated || r.cfg.AdminsOnly {
			return RoleVisitor
		}
		return RoleParticipant
	}
	return RoleNone
}

func (r *Room) occupantByFull(full jid.JID) *occupant {
	for _, o := range r.occupants {
		if o.full == full {
			return o
		}
	}
	return nil
}

func (r *Room) occupantsByNick(nick string) []*occupant {
	var out []*occupant
	for _, o := range r.occupants {
		if o.nick == nick {
			out = append(out, o)
		}
	}
	return out
}

func (r *Room) occupantsOf(bare jid.JID) []*occupant {
	var out []*occupant
	for _, o := range r.occupants {
		if o.full.Bare() == bare {
			out = append(out, o)
		}
	}
	return out
}

func (r *Room) removeOccupant(o *occupant) {
	for i, x := range r.occupants {
		if x == o {
			r.occupants = append(r.occupants[:i], r.occupants[i+1:]...)
			return
		}
	}
}

// distinctUsers counts the users present.
func (r *Room) distinctUsers() int {
	seen := map[jid.JID]bool{}
	for _, o := range r.occupants {
		seen[o.full.Bare()] = true
	}
	return len(seen)
}

// canRead reports whether a user may read the room's messages, archive and
// member list: in a members-only room, members and up; elsewhere anyone
// not banned.
func (r *Room) canRead(bare jid.JID) bool {
	a := r.aff(bare)
	if a == AffOutcast {
		return false
	}
	return !r.cfg.MembersOnly || affRank[a] > 0
}

func (r *Room) occJID(nick string) jid.JID {
	j, _ := jid.New(r.jid.Local(), r.jid.Domain(), nick)
	return j
}
