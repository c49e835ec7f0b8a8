package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"bluetick/internal/store"
)

// The insert of StoreOffline, run after lockUser in the same transaction,
// so its snapshot includes everything committed by whoever held the lock
// before, on any node. The CTE bumps users.offline_count and yields the
// user's row only if there is room ($6 <= 0: no quota), and the insert
// takes its row from it: an absent user or a full queue inserts nothing.
const insertOffline = `
WITH u AS (
	UPDATE users SET offline_count = offline_count + 1
	WHERE name = $1 AND ($6 <= 0 OR offline_count < $6)
	RETURNING name
)
INSERT INTO offline (username, stanza_id, sender, stored, data)
SELECT name, $2, $3, $4, $5 FROM u
RETURNING seq`

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
	b.Queue(insertOffline, user, m.StanzaID, m.From, m.Stored, nonNil(m.Data), int64(quota))
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
	// The insert decides: it may see an account that lockUser, an instant
	// earlier, did not (created in between).
	switch {
	case inserted:
		return seq, nil
	case !ok:
		return 0, notFound("store offline: user %q", user)
	}
	return 0, fmt.Errorf("postgres: store offline: %q holds %d or more messages: %w", user, quota, store.ErrQuota)
}

// deleteOffline deletes messages $2 of user $1 and keeps offline_count
// (see DeleteOffline).
const deleteOffline = `
WITH u AS MATERIALIZED (SELECT name FROM users WHERE name = $1 FOR NO KEY UPDATE),
d AS (DELETE FROM offline WHERE username = (SELECT name FROM u) AND seq = ANY ($2) RETURNING 1)
UPDATE users SET offline_count = offline_count - (SELECT count(*) FROM d)
WHERE name = (SELECT name FROM u) AND EXISTS (SELECT 1 FROM d)`

// ApplyOffline implements store.Offline as one batch, one implicit
// transaction, one round trip and one WAL flush. The users of the batch
// are locked first, in name order (every node locks in that order, so two
// batches cannot deadlock), then the writes run in the order given: Seqs
// increase in commit order per user, as StoreOffline guarantees.
func (s *Store) ApplyOffline(ctx context.Context, ws []*store.OfflineWrite) error {
	if len(ws) == 0 {
		return nil
	}
	var users []string
	for _, w := range ws {
		users = append(users, w.User)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	b := &pgx.Batch{}
	for _, u := range users {
		b.Queue(lockUser, u)
	}
	for _, w := range ws {
		if w.Msg == nil {
			b.Queue(deleteOffline, w.User, w.Seqs)
		} else {
			b.Queue(insertOffline, w.User, w.Msg.StanzaID, w.Msg.From, w.Msg.Stored, nonNil(w.Msg.Data), int64(w.Quota))
		}
	}
	br := s.pool.SendBatch(ctx, b)
	exists := make(map[string]bool, len(users))
	var err error
	for _, u := range users {
		var ok bool
		if ok, err = lockedRow(br); err != nil {
			break
		}
		exists[u] = ok
	}
	for _, w := range ws {
		if err != nil {
			break
		}
		if w.Msg == nil {
			_, err = br.Exec()
			continue
		}
		w.Seq, w.Err = 0, nil
		err = br.QueryRow().Scan(&w.Seq)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
			if !exists[w.User] {
				w.Err = notFound("store offline: user %q", w.User)
			} else {
				w.Err = fmt.Errorf("postgres: store offline: %q holds %d or more messages: %w", w.User, w.Quota, store.ErrQuota)
			}
		}
	}
	if err = closeBatch(br, err); err != nil {
		return wrap(err, "apply offline batch")
	}
	return nil
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
//
// The CTE u locks the user's row before the delete touches any message,
// the order every writer follows (see the package doc); the delete takes
// the user from u, so it deletes nothing if there was no row to lock. All
// of it runs on the snapshot taken before any wait for the lock, which is
// enough: the messages to delete were read, so committed, before this call
// began, and the UPDATE of the locked row sees its latest offline_count
// (READ COMMITTED re-reads a row that changed while it waited).
func (s *Store) DeleteOffline(ctx context.Context, user string, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, deleteOffline, user, seqs)
	if err != nil {
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

// expireBatch is how many users' expired messages ExpireOffline removes
// per transaction: enough to make the round trips negligible, few enough
// that the user locks it holds are released soon.
const expireBatch = 100

// ExpireOffline implements store.Offline. It lists the users holding
// expired messages (one scan of the index on stored) and then works through
// them in name order, a batch of users per transaction: lock their rows (in
// name order, so two nodes expiring at once cannot deadlock on each other),
// then, for the users actually locked, delete their expired messages and
// recount their offline_count, which also repairs any drift from changes
// made by hand. Only locked users are touched: a user missing from the
// lock (deleted meanwhile, perhaps re-created since) may have messages
// that another writer, holding that user's lock, is deleting, and waiting
// for those while holding other locks is how deadlocks start.
func (s *Store) ExpireOffline(ctx context.Context, before time.Time) (int, error) {
	rows, _ := s.pool.Query(ctx, `SELECT DISTINCT username FROM offline WHERE stored < $1 ORDER BY username`, before)
	users, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return 0, wrap(err, "expire offline")
	}
	total := 0
	for chunk := range slices.Chunk(users, expireBatch) {
		var n int64
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `SELECT name FROM users WHERE name = ANY ($1) ORDER BY name FOR NO KEY UPDATE`, chunk)
			locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil || len(locked) == 0 {
				return err
			}
			b := &pgx.Batch{}
			b.Queue(`DELETE FROM offline WHERE username = ANY ($1) AND stored < $2`, locked, before).Exec(func(tag pgconn.CommandTag) error {
				n = tag.RowsAffected()
				return nil
			})
			b.Queue(`
UPDATE users u SET offline_count = (SELECT count(*) FROM offline o WHERE o.username = u.name)
WHERE name = ANY ($1)`, locked)
			return tx.SendBatch(ctx, b).Close()
		})
		if err != nil {
			return total, wrap(err, "expire offline")
		}
		total += int(n)
	}
	return total, nil
}
