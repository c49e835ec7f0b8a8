package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"bluetick/internal/store"
)

// StoreOffline implements store.Offline. The quota check and the insert
// are a single INSERT ... SELECT, hence atomic; the transaction around it
// makes the commit, and its fsync (synchronous=FULL), an explicit step whose
// error is returned, so a nil error means the message is on disk.
func (s *Store) StoreOffline(ctx context.Context, user string, m store.OfflineMessage, quota int) (int64, error) {
	var seq int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.StmtContext(ctx, s.stmtStoreOffline).QueryRowContext(ctx,
			user, m.StanzaID, m.From, toDB(m.Stored), nonNil(m.Data), quota).Scan(&seq)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// Nothing inserted: either no such account or no room. Not a hot
		// path, and still inside the same transaction.
		var ok bool
		if err := tx.StmtContext(ctx, s.stmtUserExists).QueryRowContext(ctx, user).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("user %q: %w", user, store.ErrNotFound)
		}
		return fmt.Errorf("%q holds %d or more messages: %w", user, quota, store.ErrQuota)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: store offline: %w", err)
	}
	return seq, nil
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
