package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"bluetick/internal/store"
)

// offlineReq is one StoreOffline call waiting for its group commit.
type offlineReq struct {
	user  string
	m     store.OfflineMessage
	quota int
	seq   int64
	err   error
}

// StoreOffline implements store.Offline. The quota check and the insert
// are a single INSERT ... SELECT, hence atomic. Concurrent calls are
// committed together (group commit): the first caller becomes the leader
// and runs every request queued meanwhile in one transaction, so many
// senders share one fsync (synchronous=FULL). A nil error means the
// message is on disk.
func (s *Store) StoreOffline(ctx context.Context, user string, m store.OfflineMessage, quota int) (int64, error) {
	r := &offlineReq{user: user, m: m, quota: quota}
	s.offlineGC.do(s, r)
	if r.err != nil {
		return 0, fmt.Errorf("sqlite: store offline: %w", r.err)
	}
	return r.seq, nil
}

// storeOne inserts one message in tx. A refusal (no account, quota) is
// that request's answer and does not fail the batch; an SQL error does.
func (s *Store) storeOne(tx *sql.Tx, r *offlineReq) error {
	ctx := context.Background()
	r.err = nil
	err := tx.StmtContext(ctx, s.stmtStoreOffline).QueryRowContext(ctx,
		r.user, r.m.StanzaID, r.m.From, toDB(r.m.Stored), nonNil(r.m.Data), r.quota).Scan(&r.seq)
	if !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	var ok bool
	if err := tx.StmtContext(ctx, s.stmtUserExists).QueryRowContext(ctx, r.user).Scan(&ok); err != nil {
		return err
	}
	if !ok {
		r.err = fmt.Errorf("user %q: %w", r.user, store.ErrNotFound)
	} else {
		r.err = fmt.Errorf("%q holds %d or more messages: %w", r.user, r.quota, store.ErrQuota)
	}
	return nil
}

// OfflineMessages implements store.Offline.
func (s *Store) OfflineMessages(ctx context.Context, user string, limit int) ([]store.OfflineMessage, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.stmtOffline.QueryContext(ctx, user, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: offline messages: %w", err)
	}
	defer rows.Close()
	var out []store.OfflineMessage
	for rows.Next() {
		var m store.OfflineMessage
		var stored int64
		// Scanning into *[]byte copies; the driver's buffer is not retained.
		if err := rows.Scan(&m.Seq, &m.StanzaID, &m.From, &stored, &m.Data); err != nil {
			return nil, fmt.Errorf("sqlite: offline messages: %w", err)
		}
		m.Stored = fromDB(stored)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: offline messages: %w", err)
	}
	return out, nil
}

// DeleteOffline implements store.Offline. Seqs of other users, and seqs
// that are gone already, are ignored: the user condition is part of every
// delete.
func (s *Store) DeleteOffline(ctx context.Context, user string, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	// One transaction for the batch: one fsync, however many messages.
	err := s.write(ctx, func(tx *sql.Tx) error {
		st := tx.StmtContext(ctx, s.stmtDeleteOne)
		for _, seq := range seqs {
			if _, err := st.ExecContext(ctx, user, seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete offline: %w", err)
	}
	return nil
}

// CountOffline implements store.Offline.
func (s *Store) CountOffline(ctx context.Context, user string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT count(*) FROM offline WHERE user = ?`, user).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlite: count offline: %w", err)
	}
	return n, nil
}

// ExpireOffline implements store.Offline, using the index on stored.
func (s *Store) ExpireOffline(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM offline WHERE stored < ?`, toDB(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: expire offline: %w", err)
	}
	return int(n), nil
}
