package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// The insert of StoreOffline, run after lockUser in the same transaction.
// Selecting from users makes it insert nothing for an absent user. With a
// quota it counts the user's messages first; this statement's snapshot is
// taken after the lock was granted, so the count includes every message a
// concurrent StoreOffline for the same user committed, on any node.
const (
	insertOffline = `
INSERT INTO offline (username, stanza_id, sender, stored, data)
SELECT name, $2, $3, $4, $5 FROM users WHERE name = $1
RETURNING seq`
	insertOfflineQuota = `
INSERT INTO offline (username, stanza_id, sender, stored, data)
SELECT name, $2, $3, $4, $5 FROM users
WHERE name = $1 AND (SELECT count(*) FROM offline WHERE username = $1) < $6
RETURNING seq`
)

// StoreOffline implements store.Offline in one round trip: lockUser and
// the insert go as one batch, one implicit transaction committed at its
// end. A nil error means the commit returned, and with synchronous_commit
// on, that the message is in the flushed WAL.
//
// The row lock is taken even without a quota: it is what makes Seqs
// increase in commit order per user. Without it two nodes storing for the
// same user could draw Seqs 6 and 7 and commit 7 first, and a client
// draining meanwhile would be handed 7 and then 6.
func (s *Store) StoreOffline(ctx context.Context, user string, m store.OfflineMessage, quota int) (int64, error) {
	b := &pgx.Batch{}
	b.Queue(lockUser, user)
	if quota > 0 {
		b.Queue(insertOfflineQuota, user, m.StanzaID, m.From, m.Stored, nonNil(m.Data), int64(quota))
	} else {
		b.Queue(insertOffline, user, m.StanzaID, m.From, m.Stored, nonNil(m.Data))
	}
	br := s.pool.SendBatch(ctx, b)
	ok, err := lockedRow(br)
	var seq int64
	inserted := false
	if err == nil {
		err = br.QueryRow().Scan(&seq)
		inserted = err == nil
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
	}
	if err = closeBatch(br, err); err != nil {
		return 0, wrap(err, "store offline for %q", user)
	}
	switch {
	case !ok:
		return 0, notFound("store offline: user %q", user)
	case !inserted:
		return 0, fmt.Errorf("postgres: store offline: %q holds %d or more messages: %w", user, quota, store.ErrQuota)
	}
	return seq, nil
}

// OfflineMessages implements store.Offline.
func (s *Store) OfflineMessages(ctx context.Context, user string, limit int) ([]store.OfflineMessage, error) {
	var lim any // LIMIT NULL is no limit
	if limit > 0 {
		lim = int64(limit)
	}
	rows, _ := s.pool.Query(ctx, `
SELECT seq, stanza_id, sender, stored, data FROM offline
WHERE username = $1 ORDER BY seq LIMIT $2`, user, lim)
	defer rows.Close()
	var out []store.OfflineMessage
	for rows.Next() {
		var m store.OfflineMessage
		// Scanning into *[]byte copies out of pgx's read buffer.
		if err := rows.Scan(&m.Seq, &m.StanzaID, &m.From, &m.Stored, &m.Data); err != nil {
			return nil, wrap(err, "offline messages of %q", user)
		}
		m.Stored = utc(m.Stored)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "offline messages of %q", user)
	}
	return out, nil
}

// DeleteOffline implements store.Offline: one statement for the whole
// list. Seqs of other users, and seqs that are gone already, are ignored:
// the user condition is part of the delete.
func (s *Store) DeleteOffline(ctx context.Context, user string, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	if _, err := s.pool.Exec(ctx, `DELETE FROM offline WHERE username = $1 AND seq = ANY ($2)`, user, seqs); err != nil {
		return wrap(err, "delete offline of %q", user)
	}
	return nil
}

// CountOffline implements store.Offline.
func (s *Store) CountOffline(ctx context.Context, user string) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM offline WHERE username = $1`, user).Scan(&n); err != nil {
		return 0, wrap(err, "count offline of %q", user)
	}
	return n, nil
}

// ExpireOffline implements store.Offline, using the index on stored.
func (s *Store) ExpireOffline(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM offline WHERE stored < $1`, before)
	if err != nil {
		return 0, wrap(err, "expire offline")
	}
	return int(tag.RowsAffected()), nil
}
