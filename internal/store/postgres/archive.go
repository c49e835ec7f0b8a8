package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// Message archive (XEP-0313), blocklists (XEP-0191) and privacy settings.
// Archive order is (stored, seq); see migration step 3 for the indexes
// that make every page one range scan.

// AppendArchive implements store.Archive in one transaction: it locks the
// users' rows in name order (the package's lock order, so two nodes
// archiving for the same pair cannot deadlock), then inserts each entry
// with stored raised to its archive's latest, so archive order never
// goes backwards even when the nodes' clocks disagree.
func (s *Store) AppendArchive(ctx context.Context, entries []store.ArchiveEntry) error {
	if len(entries) == 0 {
		return nil
	}
	var users []string
	for _, e := range entries {
		users = append(users, e.User)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		rows, _ := tx.Query(ctx, `SELECT name FROM users WHERE name = ANY ($1) ORDER BY name FOR NO KEY UPDATE`, users)
		locked, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(locked) != len(users) {
			return notFound("append archive: user of %q", users)
		}
		b := &pgx.Batch{}
		for _, e := range entries {
			b.Queue(`
INSERT INTO archive (username, id, with_bare, with_full, stored, data)
VALUES ($1, $2, $3, $4, GREATEST($5, (SELECT max(stored) FROM archive WHERE username = $1)), $6)`,
				e.User, e.ID, bareOf(e.With), e.With, e.Stored, nonNil(e.Data))
		}
		return tx.SendBatch(ctx, b).Close()
	})
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	return wrap(err, "append archive")
}

// bareOf strips the resource of a JID string.
func bareOf(j string) string {
	if i := strings.IndexByte(j, '/'); i >= 0 {
		return j[:i]
	}
	return j
}

type archivePos struct {
	stored time.Time
	seq    int64
}

func (p archivePos) after(o archivePos) bool {
	return p.stored.After(o.stored) || p.stored.Equal(o.stored) && p.seq > o.seq
}

func (s *Store) archivePosOf(ctx context.Context, user, id string) (archivePos, error) {
	var p archivePos
	err := s.pool.QueryRow(ctx, `SELECT stored, seq FROM archive WHERE username = $1 AND id = $2`, user, id).Scan(&p.stored, &p.seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, notFound("archive id %q", id)
	}
	return p, wrap(err, "archive id")
}

// QueryArchive implements store.Archive.
func (s *Store) QueryArchive(ctx context.Context, user string, q store.ArchiveQuery) (store.ArchivePage, error) {
	var page store.ArchivePage
	args := []any{user}
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	where := []string{"username = $1"}
	if q.With != "" {
		where = append(where, "with_bare = "+arg(bareOf(q.With)))
		if strings.IndexByte(q.With, '/') >= 0 {
			where = append(where, "with_full = "+arg(q.With))
		}
	}
	if !q.Start.IsZero() {
		where = append(where, "stored >= "+arg(q.Start))
	}
	if !q.End.IsZero() {
		where = append(where, "stored <= "+arg(q.End))
	}
	var lo, hi *archivePos
	for _, id := range q.After {
		p, err := s.archivePosOf(ctx, user, id)
		if err != nil {
			return page, err
		}
		if lo == nil || p.after(*lo) {
			lo = &p
		}
	}
	for _, id := range q.Before {
		p, err := s.archivePosOf(ctx, user, id)
		if err != nil {
			return page, err
		}
		if hi == nil || hi.after(p) {
			hi = &p
		}
	}
	if lo != nil {
		where = append(where, "(stored, seq) > ("+arg(lo.stored)+", "+arg(lo.seq)+")")
	}
	if hi != nil {
		where = append(where, "(stored, seq) < ("+arg(hi.stored)+", "+arg(hi.seq)+")")
	}
	if len(q.IDs) > 0 {
		for _, id := range q.IDs {
			if _, err := s.archivePosOf(ctx, user, id); err != nil {
				return page, err
			}
		}
		where = append(where, "id = ANY ("+arg(q.IDs)+")")
	}
	order := "stored, seq"
	if q.FromEnd {
		order = "stored DESC, seq DESC"
	}
	limit := max(q.Max, 0)
	sql := `SELECT id, with_full, stored, data FROM archive WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY ` + order + ` LIMIT ` + arg(int64(limit+1))
	rows, _ := s.pool.Query(ctx, sql, args...)
	defer rows.Close()
	for rows.Next() {
		var m store.ArchivedMessage
		if err := rows.Scan(&m.ID, &m.With, &m.Stored, &m.Data); err != nil {
			return page, wrap(err, "query archive of %q", user)
		}
		m.Stored = utc(m.Stored)
		page.Messages = append(page.Messages, m)
	}
	if err := rows.Err(); err != nil {
		return page, wrap(err, "query archive of %q", user)
	}
	page.Complete = len(page.Messages) <= limit
	if !page.Complete {
		page.Messages = page.Messages[:limit]
	}
	if q.FromEnd {
		slices.Reverse(page.Messages)
	}
	return page, nil
}

// ExpireArchive implements store.Archive. Archive rows carry no per-user
// counter, so no user lock is needed: one delete on the stored index.
func (s *Store) ExpireArchive(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM archive WHERE stored < $1`, before)
	if err != nil {
		return 0, wrap(err, "expire archive")
	}
	return int(tag.RowsAffected()), nil
}

// ArchivePrefs implements store.Archive.
func (s *Store) ArchivePrefs(ctx context.Context, user string) (store.ArchivePrefs, error) {
	var p store.ArchivePrefs
	err := s.pool.QueryRow(ctx, `SELECT default_mode, always_jids, never_jids FROM archive_prefs WHERE username = $1`, user).Scan(&p.Default, &p.Always, &p.Never)
	if errors.Is(err, pgx.ErrNoRows) {
		return p, notFound("archive prefs of %q", user)
	}
	if len(p.Always) == 0 {
		p.Always = nil
	}
	if len(p.Never) == 0 {
		p.Never = nil
	}
	return p, wrap(err, "archive prefs of %q", user)
}

// SetArchivePrefs implements store.Archive.
func (s *Store) SetArchivePrefs(ctx context.Context, user string, p store.ArchivePrefs) error {
	tag, err := s.pool.Exec(ctx, `
INSERT INTO archive_prefs (username, default_mode, always_jids, never_jids)
SELECT name, $2, $3, $4 FROM users WHERE name = $1
ON CONFLICT (username) DO UPDATE SET default_mode = excluded.default_mode,
	always_jids = excluded.always_jids, never_jids = excluded.never_jids`,
		user, p.Default, nonNil(p.Always), nonNil(p.Never))
	if err != nil {
		return wrap(err, "set archive prefs of %q", user)
	}
	if tag.RowsAffected() == 0 {
		return notFound("set archive prefs: user %q", user)
	}
	return nil
}

// Blocklist implements store.Blocking.
func (s *Store) Blocklist(ctx context.Context, user string) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT jid FROM blocklist WHERE username = $1 ORDER BY jid`, user)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if len(out) == 0 {
		out = nil
	}
	return out, wrap(err, "blocklist of %q", user)
}

// Block implements store.Blocking: one statement; the join with users
// makes it insert nothing for an absent account.
func (s *Store) Block(ctx context.Context, user string, jids []string) error {
	var ok bool
	err := s.pool.QueryRow(ctx, `
WITH u AS (SELECT name FROM users WHERE name = $1),
ins AS (INSERT INTO blocklist (username, jid) SELECT u.name, j FROM u, unnest($2::text[]) AS j ON CONFLICT DO NOTHING)
SELECT EXISTS (SELECT 1 FROM u)`, user, nonNil(jids)).Scan(&ok)
	if err != nil {
		return wrap(err, "block for %q", user)
	}
	if !ok {
		return notFound("block: user %q", user)
	}
	return nil
}

// Unblock implements store.Blocking.
func (s *Store) Unblock(ctx context.Context, user string, jids []string) error {
	var err error
	if len(jids) == 0 {
		_, err = s.pool.Exec(ctx, `DELETE FROM blocklist WHERE username = $1`, user)
	} else {
		_, err = s.pool.Exec(ctx, `DELETE FROM blocklist WHERE username = $1 AND jid = ANY ($2)`, user, jids)
	}
	return wrap(err, "unblock for %q", user)
}

// BlockedAny implements store.Blocking.
func (s *Store) BlockedAny(ctx context.Context, user string, jids []string) (bool, error) {
	if len(jids) == 0 {
		return false, nil
	}
	var ok bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM blocklist WHERE username = $1 AND jid = ANY ($2))`, user, jids).Scan(&ok)
	return ok, wrap(err, "blocked for %q", user)
}

// LastSeenVisibility implements store.Privacy.
func (s *Store) LastSeenVisibility(ctx context.Context, user string) (string, error) {
	var v string
	err := s.pool.QueryRow(ctx, `SELECT last_seen FROM privacy WHERE username = $1`, user).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", notFound("last seen visibility of %q", user)
	}
	return v, wrap(err, "last seen visibility of %q", user)
}

// SetLastSeenVisibility implements store.Privacy.
func (s *Store) SetLastSeenVisibility(ctx context.Context, user, v string) error {
	tag, err := s.pool.Exec(ctx, `
INSERT INTO privacy (username, last_seen) SELECT name, $2 FROM users WHERE name = $1
ON CONFLICT (username) DO UPDATE SET last_seen = excluded.last_seen`, user, v)
	if err != nil {
		return wrap(err, "set last seen visibility of %q", user)
	}
	if tag.RowsAffected() == 0 {
		return notFound("set last seen visibility: user %q", user)
	}
	return nil
}
