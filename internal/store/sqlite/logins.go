package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"bluetick/internal/store"
)

// Selecting from users makes an absent account insert nothing.
const (
	loginFailed = `
INSERT INTO login_stats (user, failed, last_failure, last_failure_addr, streak, streak_last)
SELECT name, 1, ?2, ?3, ?4, CASE ?4 WHEN 0 THEN 0 ELSE ?2 END FROM users WHERE name = ?1
ON CONFLICT (user) DO UPDATE SET
	failed = failed + 1,
	last_failure = excluded.last_failure,
	last_failure_addr = excluded.last_failure_addr,
	streak = CASE WHEN excluded.streak = 0 THEN streak
		WHEN streak_last < excluded.last_failure - ?5 THEN 1
		ELSE streak + 1 END,
	streak_last = CASE WHEN excluded.streak = 0 THEN streak_last ELSE excluded.last_failure END`
	loginSucceeded = `
INSERT INTO login_stats (user, last_success, last_success_addr)
SELECT name, ?2, ?3 FROM users WHERE name = ?1
ON CONFLICT (user) DO UPDATE SET
	failed = 0, last_success = excluded.last_success, last_success_addr = excluded.last_success_addr`
	loginKnown = `
INSERT INTO login_known (user, prefix, last_seen)
SELECT name, ?2, ?3 FROM users WHERE name = ?1
ON CONFLICT (user, prefix) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`
	loginForget = `
DELETE FROM login_known WHERE user = ?1 AND prefix NOT IN
	(SELECT prefix FROM login_known WHERE user = ?1 ORDER BY last_seen DESC, prefix LIMIT ?2)`
)

// RecordLogins implements store.Logins.
func (s *Store) RecordLogins(ctx context.Context, events []store.LoginEvent, p store.LoginPolicy) error {
	if len(events) == 0 {
		return nil
	}
	keep := p.KeepKnown
	if keep <= 0 {
		keep = -1 // no LIMIT
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		for _, ev := range events {
			var err error
			switch {
			case !ev.Success:
				stranger := 0
				if ev.Stranger {
					stranger = 1
				}
				_, err = tx.ExecContext(ctx, loginFailed, ev.User, toDB(ev.At), ev.Addr, stranger, p.StreakWindow.Microseconds())
			default:
				_, err = tx.ExecContext(ctx, loginSucceeded, ev.User, toDB(ev.At), ev.Addr)
				if err == nil && ev.Prefix != "" {
					if _, err = tx.ExecContext(ctx, loginKnown, ev.User, ev.Prefix, toDB(ev.At)); err == nil {
						_, err = tx.ExecContext(ctx, loginForget, ev.User, keep)
					}
				}
			}
			if err != nil {
				return fmt.Errorf("sqlite: record login of %q: %w", ev.User, err)
			}
		}
		return nil
	})
}

// LoginStats' statements, prepared once (Store.stmtLogin*): every
// password login reads them.
const (
	loginStatsSQL = `
SELECT EXISTS (SELECT 1 FROM users WHERE name = ?1),
	l.failed, l.last_failure, l.last_failure_addr, l.last_success, l.last_success_addr, l.streak, l.streak_last
FROM (SELECT 1) LEFT JOIN login_stats l ON l.user = ?1`
	loginKnownSQL = `SELECT prefix, last_seen FROM login_known WHERE user = ? ORDER BY last_seen DESC, prefix`
)

// LoginStats implements store.Logins.
func (s *Store) LoginStats(ctx context.Context, user string) (store.LoginStats, error) {
	var ls store.LoginStats
	var lf, lsu, sl sql.NullInt64
	var ok bool
	err := s.stmtLoginStats.QueryRowContext(ctx, user).Scan(&ok,
		nullInt{&ls.Failed}, &lf, nullStr{&ls.LastFailureAddr}, &lsu, nullStr{&ls.LastSuccessAddr}, nullInt{&ls.Streak}, &sl)
	if err != nil {
		return store.LoginStats{}, fmt.Errorf("sqlite: login stats: %w", err)
	}
	if !ok {
		return store.LoginStats{}, notFound("login stats of %q", user)
	}
	ls.LastFailure, ls.LastSuccess, ls.StreakLast = optTime(lf), optTime(lsu), optTime(sl)
	rows, err := s.stmtLoginKnown.QueryContext(ctx, user)
	if err != nil {
		return store.LoginStats{}, fmt.Errorf("sqlite: known login addresses: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k store.KnownAddress
		var at int64
		if err := rows.Scan(&k.Prefix, &at); err != nil {
			return store.LoginStats{}, err
		}
		k.LastSeen = fromDB(at)
		ls.Known = append(ls.Known, k)
	}
	return ls, rows.Err()
}

// optTime reads a time column where 0 (or NULL) means none.
func optTime(v sql.NullInt64) time.Time {
	if !v.Valid || v.Int64 == 0 {
		return time.Time{}
	}
	return fromDB(v.Int64)
}

// nullInt and nullStr scan a column of an outer join, NULL reading as 0 or "".
type nullInt struct{ p *int }

func (n nullInt) Scan(v any) error {
	var x sql.NullInt64
	if err := x.Scan(v); err != nil {
		return err
	}
	*n.p = int(x.Int64)
	return nil
}

type nullStr struct{ p *string }

func (n nullStr) Scan(v any) error {
	var x sql.NullString
	if err := x.Scan(v); err != nil {
		return err
	}
	*n.p = x.String
	return nil
}
