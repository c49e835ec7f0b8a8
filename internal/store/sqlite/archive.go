package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"bluetick/internal/store"
)

// Message archive (XEP-0313), blocklists (XEP-0191) and privacy settings.
// Archive order is (stored, seq); see migration step 2 for the indexes
// that make every page one range scan.

// archiveReq is one AppendArchive call waiting for its group commit.
type archiveReq struct {
	entries []store.ArchiveEntry
	err     error
}

// AppendArchive implements store.Archive. A call's entries go in one
// transaction, so the sender's and the recipient's copies of a message
// are stored together; concurrent calls share it too (group commit, as
// StoreOffline: one fsync for many messages), each in its own savepoint,
// so one call's refusal (absent user, taken id) does not fail the others.
func (s *Store) AppendArchive(ctx context.Context, entries []store.ArchiveEntry) error {
	if len(entries) == 0 {
		return nil
	}
	r := &archiveReq{entries: entries}
	s.archiveGC.do(s, r)
	if r.err != nil && !errors.Is(r.err, store.ErrNotFound) && !errors.Is(r.err, store.ErrExists) {
		return fmt.Errorf("sqlite: append archive: %w", r.err)
	}
	return r.err
}

// appendOne inserts one request's entries in tx, inside a savepoint that
// is rolled back if the request is refused (its answer, not the batch's).
// stored is raised to the archive's latest so it never goes backwards (a
// clock step back must not put a new message before old ones).
func (s *Store) appendOne(tx *sql.Tx, r *archiveReq) error {
	ctx := context.Background()
	r.err = nil
	if _, err := tx.ExecContext(ctx, `SAVEPOINT archive_req`); err != nil {
		return err
	}
	for _, e := range r.entries {
		res, err := tx.ExecContext(ctx, `
INSERT INTO archive (user, id, with_bare, with_full, stored, data)
SELECT name, ?2, ?3, ?4, max(?5, coalesce((SELECT max(stored) FROM archive WHERE user = ?1), 0)), ?6
FROM users WHERE name = ?1
ON CONFLICT (user, id) DO NOTHING`,
			e.User, e.ID, bareOf(e.With), e.With, toDB(e.Stored), nonNil(e.Data))
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n > 0 {
			continue
		}
		var ok bool
		if err := tx.StmtContext(ctx, s.stmtUserExists).QueryRowContext(ctx, e.User).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			r.err = notFound("append archive: user %q", e.User)
		} else {
			r.err = fmt.Errorf("sqlite: append archive: id %q of %q: %w", e.ID, e.User, store.ErrExists)
		}
		if _, err := tx.ExecContext(ctx, `ROLLBACK TO archive_req`); err != nil {
			return err
		}
		break
	}
	_, err := tx.ExecContext(ctx, `RELEASE archive_req`)
	return err
}

// bareOf strips the resource of a JID string (the store gets normalised
// JIDs; a resource starts at the first '/').
func bareOf(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

type archivePos struct {
	stored int64
	seq    int64
}

// archivePosOf finds the position of an archive ID.
func (s *Store) archivePosOf(ctx context.Context, user, id string) (archivePos, error) {
	var p archivePos
	err := s.db.QueryRowContext(ctx, `SELECT stored, seq FROM archive WHERE user = ? AND id = ?`, user, id).Scan(&p.stored, &p.seq)
	if errors.Is(err, sql.ErrNoRows) {
		return p, notFound("archive id %q", id)
	}
	return p, err
}

// QueryArchive implements store.Archive.
func (s *Store) QueryArchive(ctx context.Context, user string, q store.ArchiveQuery) (store.ArchivePage, error) {
	var page store.ArchivePage
	where := []string{"user = ?"}
	args := []any{user}
	if q.With != "" {
		if strings.IndexByte(q.With, '/') >= 0 {
			where = append(where, "with_bare = ? AND with_full = ?")
			args = append(args, bareOf(q.With), q.With)
		} else {
			where = append(where, "with_bare = ?")
			args = append(args, q.With)
		}
	}
	if !q.Start.IsZero() {
		where = append(where, "stored >= ?")
		args = append(args, toDB(q.Start))
	}
	if !q.End.IsZero() {
		where = append(where, "stored <= ?")
		args = append(args, toDB(q.End))
	}
	var lo, hi *archivePos
	for _, id := range q.After {
		p, err := s.archivePosOf(ctx, user, id)
		if err != nil {
			return page, err
		}
		if lo == nil || p.stored > lo.stored || p.stored == lo.stored && p.seq > lo.seq {
			lo = &p
		}
	}
	for _, id := range q.Before {
		p, err := s.archivePosOf(ctx, user, id)
		if err != nil {
			return page, err
		}
		if hi == nil || p.stored < hi.stored || p.stored == hi.stored && p.seq < hi.seq {
			hi = &p
		}
	}
	if lo != nil {
		where = append(where, "(stored, seq) > (?, ?)")
		args = append(args, lo.stored, lo.seq)
	}
	if hi != nil {
		where = append(where, "(stored, seq) < (?, ?)")
		args = append(args, hi.stored, hi.seq)
	}
	if len(q.IDs) > 0 {
		for _, id := range q.IDs {
			if _, err := s.archivePosOf(ctx, user, id); err != nil {
				return page, err
			}
		}
		where = append(where, "id IN (?"+strings.Repeat(", ?", len(q.IDs)-1)+")")
		for _, id := range q.IDs {
			args = append(args, id)
		}
	}
	order := "stored, seq"
	if q.FromEnd {
		order = "stored DESC, seq DESC"
	}
	limit := max(q.Max, 0)
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, `SELECT id, with_full, stored, data FROM archive WHERE `+
		strings.Join(where, " AND ")+` ORDER BY `+order+` LIMIT ?`, args...)
	if err != nil {
		return page, fmt.Errorf("sqlite: query archive: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var m store.ArchivedMessage
		var stored int64
		if err := rows.Scan(&m.ID, &m.With, &stored, &m.Data); err != nil {
			return page, fmt.Errorf("sqlite: query archive: %w", err)
		}
		m.Stored = fromDB(stored)
		page.Messages = append(page.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return page, fmt.Errorf("sqlite: query archive: %w", err)
	}
	page.Complete = len(page.Messages) <= limit
	if !page.Complete {
		page.Messages = page.Messages[:limit]
	}
	if q.FromEnd {
		for i, j := 0, len(page.Messages)-1; i < j; i, j = i+1, j-1 {
			page.Messages[i], page.Messages[j] = page.Messages[j], page.Messages[i]
		}
	}
	return page, nil
}

// expireChunk is how many archived messages one expiry transaction
// deletes: SQLite has one writer, and a first sweep over a big archive
// must not hold it for long while messages wait to be stored.
const expireChunk = 5000

// ExpireArchive implements store.Archive, using the index on stored, a
// chunk per transaction.
func (s *Store) ExpireArchive(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := s.write(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `
DELETE FROM archive WHERE seq IN (SELECT seq FROM archive WHERE stored < ? LIMIT ?)`, toDB(before), expireChunk)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		total += int(n)
		if err != nil {
			return total, fmt.Errorf("sqlite: expire archive: %w", err)
		}
		if n < expireChunk {
			return total, nil
		}
	}
}

// ArchivePrefs implements store.Archive.
func (s *Store) ArchivePrefs(ctx context.Context, user string) (store.ArchivePrefs, error) {
	var p store.ArchivePrefs
	var always, never string
	err := s.db.QueryRowContext(ctx, `SELECT default_mode, always_jids, never_jids FROM archive_prefs WHERE user = ?`, user).Scan(&p.Default, &always, &never)
	if errors.Is(err, sql.ErrNoRows) {
		return p, notFound("archive prefs of %q", user)
	}
	if err != nil {
		return p, fmt.Errorf("sqlite: archive prefs: %w", err)
	}
	if err := json.Unmarshal([]byte(always), &p.Always); err != nil {
		return p, fmt.Errorf("sqlite: archive prefs: %w", err)
	}
	if err := json.Unmarshal([]byte(never), &p.Never); err != nil {
		return p, fmt.Errorf("sqlite: archive prefs: %w", err)
	}
	return p, nil
}

func jsonList(l []string) string {
	if l == nil {
		l = []string{}
	}
	b, _ := json.Marshal(l)
	return string(b)
}

// SetArchivePrefs implements store.Archive.
func (s *Store) SetArchivePrefs(ctx context.Context, user string, p store.ArchivePrefs) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO archive_prefs (user, default_mode, always_jids, never_jids)
SELECT name, ?2, ?3, ?4 FROM users WHERE name = ?1
ON CONFLICT (user) DO UPDATE SET default_mode = excluded.default_mode,
	always_jids = excluded.always_jids, never_jids = excluded.never_jids`,
			user, p.Default, jsonList(p.Always), jsonList(p.Never))
		if err != nil {
			return fmt.Errorf("sqlite: set archive prefs: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("set archive prefs: user %q", user)
		}
		return nil
	})
}

// Blocklist implements store.Blocking.
func (s *Store) Blocklist(ctx context.Context, user string) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT jid FROM blocklist WHERE user = ? ORDER BY jid`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: blocklist: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var j string
		if err := rows.Scan(&j); err != nil {
			return nil, fmt.Errorf("sqlite: blocklist: %w", err)
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

// Block implements store.Blocking.
func (s *Store) Block(ctx context.Context, user string, jids []string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var ok bool
		if err := tx.StmtContext(ctx, s.stmtUserExists).QueryRowContext(ctx, user).Scan(&ok); err != nil {
			return fmt.Errorf("sqlite: block: %w", err)
		}
		if !ok {
			return notFound("block: user %q", user)
		}
		for _, j := range jids {
			if _, err := tx.ExecContext(ctx, `INSERT INTO blocklist (user, jid) VALUES (?, ?) ON CONFLICT DO NOTHING`, user, j); err != nil {
				return fmt.Errorf("sqlite: block: %w", err)
			}
		}
		return nil
	})
}

// Unblock implements store.Blocking.
func (s *Store) Unblock(ctx context.Context, user string, jids []string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		if len(jids) == 0 {
			_, err := tx.ExecContext(ctx, `DELETE FROM blocklist WHERE user = ?`, user)
			return err
		}
		for _, j := range jids {
			if _, err := tx.ExecContext(ctx, `DELETE FROM blocklist WHERE user = ? AND jid = ?`, user, j); err != nil {
				return fmt.Errorf("sqlite: unblock: %w", err)
			}
		}
		return nil
	})
}

// BlockedAny implements store.Blocking: one primary-key probe per form.
func (s *Store) BlockedAny(ctx context.Context, user string, jids []string) (bool, error) {
	if len(jids) == 0 {
		return false, nil
	}
	args := []any{user}
	for _, j := range jids {
		args = append(args, j)
	}
	var ok bool
	err := s.db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM blocklist WHERE user = ? AND jid IN (?`+
		strings.Repeat(", ?", len(jids)-1)+`))`, args...).Scan(&ok)
	if err != nil {
		return false, fmt.Errorf("sqlite: blocked: %w", err)
	}
	return ok, nil
}

// LastSeenVisibility implements store.Privacy.
func (s *Store) LastSeenVisibility(ctx context.Context, user string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, `SELECT last_seen FROM privacy WHERE user = ?`, user).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", notFound("last seen visibility of %q", user)
	}
	if err != nil {
		return "", fmt.Errorf("sqlite: last seen visibility: %w", err)
	}
	return v, nil
}

// SetLastSeenVisibility implements store.Privacy.
func (s *Store) SetLastSeenVisibility(ctx context.Context, user, v string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO privacy (user, last_seen) SELECT name, ?2 FROM users WHERE name = ?1
ON CONFLICT (user) DO UPDATE SET last_seen = excluded.last_seen`, user, v)
		if err != nil {
			return fmt.Errorf("sqlite: set last seen visibility: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return notFound("set last seen visibility: user %q", user)
		}
		return nil
	})
}
