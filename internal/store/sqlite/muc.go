package sqlite

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"bluetick/internal/store"
)

// CreateRoom implements store.Rooms.
func (s *Store) CreateRoom(ctx context.Context, r store.Room) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO rooms (jid, config, subject, subject_from, created) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			r.JID, nonNil(r.Config), r.Subject, r.SubjectFrom, toDB(r.Created))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: room %q: %w", r.JID, store.ErrExists)
		}
		return nil
	})
	if err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("sqlite: create room: %w", err)
	}
	return err
}

// UpdateRoom implements store.Rooms.
func (s *Store) UpdateRoom(ctx context.Context, r store.Room) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE rooms SET config = ?, subject = ?, subject_from = ? WHERE jid = ?`,
			nonNil(r.Config), r.Subject, r.SubjectFrom, r.JID)
		if err != nil {
			return fmt.Errorf("sqlite: update room: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("room %q", r.JID)
		}
		return nil
	})
}

func scanRoom(sc interface{ Scan(...any) error }) (store.Room, error) {
	var r store.Room
	var created int64
	err := sc.Scan(&r.JID, &r.Config, &r.Subject, &r.SubjectFrom, &created)
	r.Created = fromDB(created)
	return r, err
}

// Room implements store.Rooms.
func (s *Store) Room(ctx context.Context, jid string) (store.Room, error) {
	r, err := scanRoom(s.db.QueryRowContext(ctx, `SELECT jid, config, subject, subject_from, created FROM rooms WHERE jid = ?`, jid))
	if errors.Is(err, sql.ErrNoRows) {
		return r, notFound("room %q", jid)
	}
	if err != nil {
		return r, fmt.Errorf("sqlite: room: %w", err)
	}
	return r, nil
}

// ListRooms implements store.Rooms.
func (s *Store) ListRooms(ctx context.Context) ([]store.Room, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT jid, config, subject, subject_from, created FROM rooms ORDER BY jid`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list rooms: %w", err)
	}
	defer rows.Close()
	var out []store.Room
	for rows.Next() {
		r, err := scanRoom(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: list rooms: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteRoom implements store.Rooms; the foreign keys cascade to the
// room's affiliations, archive and invites.
func (s *Store) DeleteRoom(ctx context.Context, jid string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM rooms WHERE jid = ?`, jid)
		if err != nil {
			return fmt.Errorf("sqlite: delete room: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("room %q", jid)
		}
		return nil
	})
}

func roomExists(ctx context.Context, tx *sql.Tx, room string) error {
	var one int
	err := tx.QueryRowContext(ctx, `SELECT 1 FROM rooms WHERE jid = ?`, room).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return notFound("room %q", room)
	}
	return err
}

// SetAffiliation implements store.Rooms.
func (s *Store) SetAffiliation(ctx context.Context, room string, a store.Affiliation) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := roomExists(ctx, tx, room); err != nil {
			return err
		}
		var err error
		if a.Affiliation == "none" || a.Affiliation == "" {
			_, err = tx.ExecContext(ctx, `DELETE FROM room_affiliations WHERE room = ? AND jid = ?`, room, a.JID)
		} else {
			_, err = tx.ExecContext(ctx, `
INSERT INTO room_affiliations (room, jid, affiliation, nick, reason) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (room, jid) DO UPDATE SET affiliation = excluded.affiliation, nick = excluded.nick, reason = excluded.reason`,
				room, a.JID, a.Affiliation, a.Nick, a.Reason)
		}
		if err != nil {
			return fmt.Errorf("sqlite: set affiliation: %w", err)
		}
		return nil
	})
}

// Affiliations implements store.Rooms.
func (s *Store) Affiliations(ctx context.Context, room string) ([]store.Affiliation, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT jid, affiliation, nick, reason FROM room_affiliations WHERE room = ? ORDER BY jid`, room)
	if err != nil {
		return nil, fmt.Errorf("sqlite: affiliations: %w", err)
	}
	defer rows.Close()
	var out []store.Affiliation
	for rows.Next() {
		var a store.Affiliation
		if err := rows.Scan(&a.JID, &a.Affiliation, &a.Nick, &a.Reason); err != nil {
			return nil, fmt.Errorf("sqlite: affiliations: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// RoomsOf implements store.Rooms.
func (s *Store) RoomsOf(ctx context.Context, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT room FROM room_affiliations WHERE jid = ? AND affiliation IN ('owner', 'admin', 'member') ORDER BY room`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: rooms of %q: %w", user, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var r string
		if err := rows.Scan(&r); err != nil {
			return nil, fmt.Errorf("sqlite: rooms of %q: %w", user, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// roomArchiveReq is one ArchiveRoomMessage call waiting for its group commit.
type roomArchiveReq struct {
	room string
	m    store.RoomMessage
	seq  int64
	err  error
}

// ArchiveRoomMessage implements store.Rooms. Like StoreOffline, concurrent
// calls — messages posted in different groups at the same time — share
// one transaction and one fsync (group commit); a nil error means the
// message is on disk.
func (s *Store) ArchiveRoomMessage(ctx context.Context, room string, m store.RoomMessage) (int64, error) {
	r := &roomArchiveReq{room: room, m: m}
	s.roomGC.do(s, r)
	if r.err != nil {
		return 0, fmt.Errorf("sqlite: archive room message: %w", r.err)
	}
	return r.seq, nil
}

// archiveOne inserts one message in tx. An unknown room or a duplicate
// stanza id is that request's answer and does not fail the batch.
func archiveOne(tx *sql.Tx, r *roomArchiveReq) error {
	ctx := context.Background()
	r.err = nil
	err := tx.QueryRowContext(ctx, `
INSERT INTO room_archive (room, stanza_id, sender, nick, stored, data)
SELECT jid, ?, ?, ?, ?, ? FROM rooms WHERE jid = ?
ON CONFLICT DO NOTHING RETURNING seq`,
		r.m.StanzaID, r.m.Sender, r.m.Nick, toDB(r.m.Stored), nonNil(r.m.Data), r.room).Scan(&r.seq)
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if err := roomExists(ctx, tx, r.room); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			r.err = err
			return nil
		}
		return err
	}
	r.err = fmt.Errorf("stanza id %q: %w", r.m.StanzaID, store.ErrExists)
	return nil
}

// RoomMessages implements store.Rooms. The page and the ids it is anchored
// on are read in one snapshot.
func (s *Store) RoomMessages(ctx context.Context, room string, q store.RoomQuery) ([]store.RoomMessage, bool, error) {
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: room messages: %w", err)
	}
	defer tx.Rollback()
	seqOf := func(id string) (int64, error) {
		var seq int64
		err := tx.QueryRowContext(ctx, `SELECT seq FROM room_archive WHERE room = ? AND stanza_id = ?`, room, id).Scan(&seq)
		if errors.Is(err, sql.ErrNoRows) {
			return 0, notFound("archived message %q", id)
		}
		return seq, err
	}
	where := []string{"room = ?"}
	args := []any{room}
	if q.With != "" {
		where = append(where, "sender = ?")
		args = append(args, q.With)
	}
	if !q.Start.IsZero() {
		where = append(where, "stored >= ?")
		args = append(args, toDB(q.Start))
	}
	if !q.End.IsZero() {
		where = append(where, "stored <= ?")
		args = append(args, toDB(q.End))
	}
	if q.After != "" {
		seq, err := seqOf(q.After)
		if err != nil {
			return nil, false, err
		}
		where = append(where, "seq > ?")
		args = append(args, seq)
	}
	if q.Before != "" {
		seq, err := seqOf(q.Before)
		if err != nil {
			return nil, false, err
		}
		where = append(where, "seq < ?")
		args = append(args, seq)
	}
	back := q.Before != "" || q.Last
	order := "ASC"
	if back {
		order = "DESC"
	}
	limit := -1
	if q.Max > 0 {
		limit = q.Max + 1
	}
	args = append(args, limit)
	rows, err := tx.QueryContext(ctx, `SELECT seq, stanza_id, sender, nick, stored, data FROM room_archive WHERE `+
		strings.Join(where, " AND ")+` ORDER BY seq `+order+` LIMIT ?`, args...)
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: room messages: %w", err)
	}
	defer rows.Close()
	var out []store.RoomMessage
	for rows.Next() {
		var m store.RoomMessage
		var stored int64
		if err := rows.Scan(&m.Seq, &m.StanzaID, &m.Sender, &m.Nick, &stored, &m.Data); err != nil {
			return nil, false, fmt.Errorf("sqlite: room messages: %w", err)
		}
		m.Stored = fromDB(stored)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("sqlite: room messages: %w", err)
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
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM room_archive WHERE stored < ?`, toDB(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: expire room messages: %w", err)
	}
	return int(n), nil
}

// PutRoomInvite implements store.Rooms.
func (s *Store) PutRoomInvite(ctx context.Context, inv store.RoomInvite) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if err := roomExists(ctx, tx, inv.Room); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO room_invites (token, room, creator, created) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING`,
			inv.Token, inv.Room, inv.Creator, toDB(inv.Created))
		if err != nil {
			return fmt.Errorf("sqlite: put room invite: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("sqlite: room invite: %w", store.ErrExists)
		}
		return nil
	})
}

// RoomInvite implements store.Rooms.
func (s *Store) RoomInvite(ctx context.Context, token string) (store.RoomInvite, error) {
	inv := store.RoomInvite{Token: token}
	var created int64
	err := s.db.QueryRowContext(ctx, `SELECT room, creator, created FROM room_invites WHERE token = ?`, token).Scan(&inv.Room, &inv.Creator, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return inv, notFound("room invite")
	}
	if err != nil {
		return inv, fmt.Errorf("sqlite: room invite: %w", err)
	}
	inv.Created = fromDB(created)
	return inv, nil
}

// RoomInvites implements store.Rooms.
func (s *Store) RoomInvites(ctx context.Context, room string) ([]store.RoomInvite, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT token, creator, created FROM room_invites WHERE room = ? ORDER BY created, token`, room)
	if err != nil {
		return nil, fmt.Errorf("sqlite: room invites: %w", err)
	}
	defer rows.Close()
	var out []store.RoomInvite
	for rows.Next() {
		inv := store.RoomInvite{Room: room}
		var created int64
		if err := rows.Scan(&inv.Token, &inv.Creator, &created); err != nil {
			return nil, fmt.Errorf("sqlite: room invites: %w", err)
		}
		inv.Created = fromDB(created)
		out = append(out, inv)
	}
	return out, rows.Err()
}

// DeleteRoomInvite implements store.Rooms.
func (s *Store) DeleteRoomInvite(ctx context.Context, room, token string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM room_invites WHERE room = ? AND token = ?`, room, token)
		if err != nil {
			return fmt.Errorf("sqlite: delete room invite: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("room invite")
		}
		return nil
	})
}

// MUCSecret implements store.Rooms.
func (s *Store) MUCSecret(ctx context.Context) ([]byte, error) {
	var secret []byte
	err := s.db.QueryRowContext(ctx, `SELECT secret FROM muc_secret WHERE id = 1`).Scan(&secret)
	if err == nil {
		return secret, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite: muc secret: %w", err)
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	err = s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO muc_secret (id, secret) VALUES (1, ?) ON CONFLICT DO NOTHING`, fresh); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `SELECT secret FROM muc_secret WHERE id = 1`).Scan(&secret)
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: muc secret: %w", err)
	}
	return secret, nil
}
