package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// CreateRoom implements store.Rooms.
func (s *Store) CreateRoom(ctx context.Context, r store.Room) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO rooms (jid, config, subject, subject_from, created) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING`,
		r.JID, nonNil(r.Config), r.Subject, r.SubjectFrom, r.Created)
	if err != nil {
		return wrap(err, "create room %q", r.JID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: room %q: %w", r.JID, store.ErrExists)
	}
	return nil
}

// UpdateRoom implements store.Rooms.
func (s *Store) UpdateRoom(ctx context.Context, r store.Room) error {
	tag, err := s.pool.Exec(ctx, `UPDATE rooms SET config = $1, subject = $2, subject_from = $3 WHERE jid = $4`,
		nonNil(r.Config), r.Subject, r.SubjectFrom, r.JID)
	if err != nil {
		return wrap(err, "update room %q", r.JID)
	}
	if tag.RowsAffected() == 0 {
		return notFound("room %q", r.JID)
	}
	return nil
}

// Room implements store.Rooms.
func (s *Store) Room(ctx context.Context, jid string) (store.Room, error) {
	var r store.Room
	err := s.pool.QueryRow(ctx, `SELECT jid, config, subject, subject_from, created FROM rooms WHERE jid = $1`, jid).
		Scan(&r.JID, &r.Config, &r.Subject, &r.SubjectFrom, &r.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, notFound("room %q", jid)
	}
	r.Created = utc(r.Created)
	return r, wrap(err, "room %q", jid)
}

// ListRooms implements store.Rooms.
func (s *Store) ListRooms(ctx context.Context) ([]store.Room, error) {
	rows, _ := s.pool.Query(ctx, `SELECT jid, config, subject, subject_from, created FROM rooms ORDER BY jid`)
	defer rows.Close()
	var out []store.Room
	for rows.Next() {
		var r store.Room
		if err := rows.Scan(&r.JID, &r.Config, &r.Subject, &r.SubjectFrom, &r.Created); err != nil {
			return nil, wrap(err, "list rooms")
		}
		r.Created = utc(r.Created)
		out = append(out, r)
	}
	return out, wrap(rows.Err(), "list rooms")
}

// DeleteRoom implements store.Rooms; the foreign keys cascade.
func (s *Store) DeleteRoom(ctx context.Context, jid string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM rooms WHERE jid = $1`, jid)
	if err != nil {
		return wrap(err, "delete room %q", jid)
	}
	if tag.RowsAffected() == 0 {
		return notFound("room %q", jid)
	}
	return nil
}

// SetAffiliation implements store.Rooms. The insert's foreign key makes a
// missing room ErrNotFound; a removal checks the room explicitly.
func (s *Store) SetAffiliation(ctx context.Context, room string, a store.Affiliation) error {
	if a.Affiliation == "none" || a.Affiliation == "" {
		var ok bool
		err := s.pool.QueryRow(ctx, `
WITH d AS (DELETE FROM room_affiliations WHERE room = $1 AND jid = $2)
SELECT EXISTS (SELECT 1 FROM rooms WHERE jid = $1)`, room, a.JID).Scan(&ok)
		if err != nil {
			return wrap(err, "set affiliation")
		}
		if !ok {
			return notFound("room %q", room)
		}
		return nil
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO room_affiliations (room, jid, affiliation, nick, reason) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason`,
		room, a.JID, a.Affiliation, a.Nick, a.Reason)
	return wrap(err, "set affiliation in %q", room)
}

// Affiliations implements store.Rooms.
func (s *Store) Affiliations(ctx context.Context, room string) ([]store.Affiliation, error) {
	rows, _ := s.pool.Query(ctx, `SELECT jid, affiliation, nick, reason FROM room_affiliations WHERE room = $1 ORDER BY jid`, room)
	defer rows.Close()
	var out []store.Affiliation
	for rows.Next() {
		var a store.Affiliation
		if err := rows.Scan(&a.JID, &a.Affiliation, &a.Nick, &a.Reason); err != nil {
			return nil, wrap(err, "affiliations")
		}
		out = append(out, a)
	}
	return out, wrap(rows.Err(), "affiliations")
}

// RoomsOf implements store.Rooms.
func (s *Store) RoomsOf(ctx context.Context, user string) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT room FROM room_affiliations WHERE jid = $1 AND affiliation IN ('owner', 'admin', 'member') ORDER BY room`, user)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, wrap(err, "rooms of %q", user)
		}
		out = append(out, r)
	}
	return out, wrap(rows.Err(), "rooms of %q", user)
}

// ArchiveRoomMessage implements store.Rooms.
func (s *Store) ArchiveRoomMessage(ctx context.Context, room string, m store.RoomMessage) (int64, error) {
	var seq int64
	err := s.pool.QueryRow(ctx, `
INSERT INTO room_archive (room, stanza_id, sender, nick, stored, data)
VALUES ($1, $2, $3, $4, $5, $6) RETURNING seq`,
		room, m.StanzaID, m.Sender, m.Nick, m.Stored, nonNil(m.Data)).Scan(&seq)
	return seq, wrap(err, "archive room message in %q", room)
}

// RoomMessages implements store.Rooms, in one repeatable-read transaction
// so the anchors and the page come from one snapshot.
func (s *Store) RoomMessages(ctx context.Context, room string, q store.RoomQuery) ([]store.RoomMessage, bool, error) {
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, false, wrap(err, "room messages")
	}
	defer tx.Rollback(ctx)
	seqOf := func(id string) (int64, error) {
		var seq int64
		err := tx.QueryRow(ctx, `SELECT seq FROM room_archive WHERE room = $1 AND stanza_id = $2`, room, id).Scan(&seq)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, notFound("archived message %q", id)
		}
		return seq, wrap(err, "room messages")
	}
	args := []any{room}
	where := []string{"room = $1"}
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.With != "" {
		add("sender = $%d", q.With)
	}
	if !q.Start.IsZero() {
		add("stored >= $%d", q.Start)
	}
	if !q.End.IsZero() {
		add("stored <= $%d", q.End)
	}
	if q.After != "" {
		seq, err := seqOf(q.After)
		if err != nil {
			return nil, false, err
		}
		add("seq > $%d", seq)
	}
	if q.Before != "" {
		seq, err := seqOf(q.Before)
		if err != nil {
			return nil, false, err
		}
		add("seq < $%d", seq)
	}
	back := q.Before != "" || q.Last
	order := "ASC"
	if back {
		order = "DESC"
	}
	var lim any
	if q.Max > 0 {
		lim = int64(q.Max + 1)
	}
	args = append(args, lim)
	rows, _ := tx.Query(ctx, `SELECT seq, stanza_id, sender, nick, stored, data FROM room_archive WHERE `+
		strings.Join(where, " AND ")+fmt.Sprintf(` ORDER BY seq %s LIMIT $%d`, order, len(args)), args...)
	defer rows.Close()
	var out []store.RoomMessage
	for rows.Next() {
		var m store.RoomMessage
		if err := rows.Scan(&m.Seq, &m.StanzaID, &m.Sender, &m.Nick, &m.Stored, &m.Data); err != nil {
			return nil, false, wrap(err, "room messages")
		}
		m.Stored = utc(m.Stored)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, wrap(err, "room messages")
	}
	more := q.Max > 0 && len(out) > q.Max
	if more {
		out = out[:q.Max]
	}
	if back {
		slices.Reverse(out)
	}
	return out, more, nil
}

// ExpireRoomMessages implements store.Rooms.
func (s *Store) ExpireRoomMessages(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM room_archive WHERE stored < $1`, before)
	if err != nil {
		return 0, wrap(err, "expire room messages")
	}
	return int(tag.RowsAffected()), nil
}

// PutRoomInvite implements store.Rooms.
func (s *Store) PutRoomInvite(ctx context.Context, inv store.RoomInvite) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO room_invites (token, room, creator, created) VALUES ($1, $2, $3, $4)`,
		inv.Token, inv.Room, inv.Creator, inv.Created)
	return wrap(err, "put room invite")
}

// RoomInvite implements store.Rooms.
func (s *Store) RoomInvite(ctx context.Context, token string) (store.RoomInvite, error) {
	inv := store.RoomInvite{Token: token}
	err := s.pool.QueryRow(ctx, `SELECT room, creator, created FROM room_invites WHERE token = $1`, token).Scan(&inv.Room, &inv.Creator, &inv.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		return inv, notFound("room invite")
	}
	inv.Created = utc(inv.Created)
	return inv, wrap(err, "room invite")
}

// RoomInvites implements store.Rooms.
func (s *Store) RoomInvites(ctx context.Context, room string) ([]store.RoomInvite, error) {
	rows, _ := s.pool.Query(ctx, `SELECT token, creator, created FROM room_invites WHERE room = $1 ORDER BY created, token`, room)
	defer rows.Close()
	var out []store.RoomInvite
	for rows.Next() {
		inv := store.RoomInvite{Room: room}
		if err := rows.Scan(&inv.Token, &inv.Creator, &inv.Created); err != nil {
			return nil, wrap(err, "room invites")
		}
		inv.Created = utc(inv.Created)
		out = append(out, inv)
	}
	return out, wrap(rows.Err(), "room invites")
}

// DeleteRoomInvite implements store.Rooms.
func (s *Store) DeleteRoomInvite(ctx context.Context, room, token string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM room_invites WHERE room = $1 AND token = $2`, room, token)
	if err != nil {
		return wrap(err, "delete room invite")
	}
	if tag.RowsAffected() == 0 {
		return notFound("room invite")
	}
	return nil
}

// MUCSecret implements store.Rooms: the first node to ask creates it, the
// others read the same row.
func (s *Store) MUCSecret(ctx context.Context) ([]byte, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh)
	if _, err := s.pool.Exec(ctx, `INSERT INTO muc_secret (id, secret) VALUES (1, $1) ON CONFLICT DO NOTHING`, fresh); err != nil {
		return nil, wrap(err, "muc secret")
	}
	var secret []byte
	err := s.pool.QueryRow(ctx, `SELECT secret FROM muc_secret WHERE id = 1`).Scan(&secret)
	return secret, wrap(err, "muc secret")
}
