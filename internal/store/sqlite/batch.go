package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"bluetick/internal/store"
)

// ApplyOffline runs the offline journal's batches (every message routed
// through the server is one insert, and one delete once acked), so it is
// written for rows per second rather than for simplicity:
//
//   - Seqs are assigned here (unless the caller did), in batch order, above the highest ever used
//     (sqlite_sequence, which AUTOINCREMENT keeps, explicit values
//     included), instead of one RETURNING per row: the batch runs in one
//     write transaction, so no other writer draws seqs meanwhile.
//   - Inserts without a quota go insertChunk rows to a statement, after one
//     query that checks which of the batch's users exist.
//   - Deletes go one statement per user, the seqs as a JSON array.
//
// Measured on the development machine: about 6 µs a row against 14 µs
// with one statement per row (BenchmarkApplyOffline).
func (s *Store) ApplyOffline(ctx context.Context, ws []*store.OfflineWrite) error {
	if len(ws) == 0 {
		return nil
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		var next int64
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'offline'), 0)`).Scan(&next); err != nil {
			return err
		}
		exists, err := s.batchUsers(ctx, tx, ws)
		if err != nil {
			return err
		}
		b := batchWriter{ctx: ctx, ins: tx.StmtContext(ctx, s.stmtBatchInsert), one: tx.StmtContext(ctx, s.stmtBatchOne)}
		var quota *sql.Stmt
		dels := map[string][]int64{}
		var users []string // delete order: first seen
		for _, w := range ws {
			if w.Msg == nil {
				if _, ok := dels[w.User]; !ok {
					users = append(users, w.User)
				}
				dels[w.User] = append(dels[w.User], w.Seqs...)
				continue
			}
			if w.Seq > 0 { // assigned by the caller (the journal with a log)
				next = max(next, w.Seq)
			} else {
				next++
				w.Seq = next
			}
			w.Err = nil
			switch {
			case !exists[w.User]:
				w.Seq, w.Err = 0, fmt.Errorf("user %q: %w", w.User, store.ErrNotFound)
			case w.Quota <= 0:
				if err := b.add(w); err != nil {
					return err
				}
			default:
				if quota == nil {
					quota = tx.StmtContext(ctx, s.stmtBatchQuota)
				}
				res, err := quota.ExecContext(ctx, w.User, w.Msg.StanzaID, w.Msg.From, toDB(w.Msg.Stored), nonNil(w.Msg.Data), w.Quota, w.Seq)
				if err != nil {
					return err
				}
				if n, err := res.RowsAffected(); err != nil {
					return err
				} else if n == 0 {
					w.Seq, w.Err = 0, fmt.Errorf("%q holds %d or more messages: %w", w.User, w.Quota, store.ErrQuota)
				}
			}
		}
		if err := b.flush(); err != nil {
			return err
		}
		if len(users) > 0 {
			del := tx.StmtContext(ctx, s.stmtBatchDelete)
			for _, u := range users {
				if _, err := del.ExecContext(ctx, u, seqsJSON(dels[u])); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		for _, w := range ws {
			w.Seq = 0
		}
		return fmt.Errorf("sqlite: apply offline batch: %w", err)
	}
	return nil
}

// insertChunk is how many rows one multi-row insert takes (6 parameters
// a row, far below SQLite's limit).
const insertChunk = 16

const batchQuotaSQL = `
INSERT INTO offline (seq, user, stanza_id, sender, stored, data)
SELECT ?7, name, ?2, ?3, ?4, ?5 FROM users
WHERE name = ?1 AND (?6 <= 0 OR (SELECT count(*) FROM offline WHERE user = ?1) < ?6)`

const batchUsersSQL = `SELECT name FROM users WHERE name IN (SELECT value FROM json_each(?))`

const batchDeleteSQL = `DELETE FROM offline WHERE user = ?1 AND seq IN (SELECT value FROM json_each(?2))`

// batchInsertSQL ignores a row whose seq exists: a message recovered
// from the journal's log after a crash may have reached the store before.
func batchInsertSQL(rows int) string {
	return "INSERT OR IGNORE INTO offline (seq, user, stanza_id, sender, stored, data) VALUES " +
		strings.TrimSuffix(strings.Repeat("(?,?,?,?,?,?),", rows), ",")
}

// batchUsers returns which users of the batch's inserts exist.
func (s *Store) batchUsers(ctx context.Context, tx *sql.Tx, ws []*store.OfflineWrite) (map[string]bool, error) {
	seen := map[string]bool{}
	var names []string
	for _, w := range ws {
		if w.Msg != nil && !seen[w.User] {
			seen[w.User] = true
			names = append(names, w.User)
		}
	}
	exists := make(map[string]bool, len(names))
	if len(names) == 0 {
		return exists, nil
	}
	js, err := json.Marshal(names)
	if err != nil {
		return nil, err
	}
	rows, err := tx.StmtContext(ctx, s.stmtBatchUsers).QueryContext(ctx, string(js))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		exists[n] = true
	}
	return exists, rows.Err()
}

// batchWriter gathers rows into multi-row inserts.
type batchWriter struct {
	ctx      context.Context
	ins, one *sql.Stmt
	args     []any
}

func (b *batchWriter) add(w *store.OfflineWrite) error {
	b.args = append(b.args, w.Seq, w.User, w.Msg.StanzaID, w.Msg.From, toDB(w.Msg.Stored), nonNil(w.Msg.Data))
	if len(b.args) == 6*insertChunk {
		_, err := b.ins.ExecContext(b.ctx, b.args...)
		b.args = b.args[:0]
		return err
	}
	return nil
}

func (b *batchWriter) flush() error {
	for i := 0; i < len(b.args); i += 6 {
		if _, err := b.one.ExecContext(b.ctx, b.args[i:i+6]...); err != nil {
			return err
		}
	}
	b.args = b.args[:0]
	return nil
}

// seqsJSON is seqs as a JSON array.
func seqsJSON(seqs []int64) string {
	b := make([]byte, 0, 12*len(seqs)+2)
	b = append(b, '[')
	for i, q := range seqs {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, q, 10)
	}
	return string(append(b, ']'))
}

// OfflineSeqBase returns the highest offline seq ever used: the journal's
// log assigns seqs above it (see offline.Journal.UseLog).
func (s *Store) OfflineSeqBase(ctx context.Context) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, `SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'offline'), 0)`).Scan(&n)
	return n, err
}
