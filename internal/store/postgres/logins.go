package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// Selecting from users makes an absent account insert nothing.
const (
	loginFailed = `
INSERT INTO login_stats AS l (username, failed, last_failure, last_failure_addr, streak, streak_last)
SELECT name, 1, $2, $3, CASE WHEN $4 THEN 1 ELSE 0 END, CASE WHEN $4 THEN $2::timestamptz END FROM users WHERE name = $1
ON CONFLICT (username) DO UPDATE SET
	failed = l.failed + 1,
	last_failure = excluded.last_failure,
	last_failure_addr = excluded.last_failure_addr,
	streak = CASE WHEN NOT $4 THEN l.streak
		WHEN l.streak_last IS NULL OR l.streak_last < excluded.last_failure - $5::interval THEN 1
		ELSE l.streak + 1 END,
	streak_last = CASE WHEN $4 THEN excluded.last_failure ELSE l.streak_last END`
	loginSucceeded = `
INSERT INTO login_stats (username, last_success, last_success_addr)
SELECT name, $2, $3 FROM users WHERE name = $1
ON CONFLICT (username) DO UPDATE SET
	failed = 0, last_success = excluded.last_success, last_success_addr = excluded.last_success_addr`
	loginKnown = `
INSERT INTO login_known AS k (username, prefix, last_seen)
SELECT name, $2, $3 FROM users WHERE name = $1
ON CONFLICT (username, prefix) DO UPDATE SET last_seen = greatest(k.last_seen, excluded.last_seen)`
	loginForget = `
DELETE FROM login_known WHERE username = $1 AND prefix NOT IN
	(SELECT prefix FROM login_known WHERE username = $1 ORDER BY last_seen DESC, prefix LIMIT $2)`
)

// RecordLogins implements store.Logins: one batch, one round trip, one
// transaction. Concurrent batches of several nodes touching one account
// serialize on its login_stats row.
func (s *Store) RecordLogins(ctx context.Context, events []store.LoginEvent, p store.LoginPolicy) error {
	if len(events) == 0 {
		return nil
	}
	var keep *int // NULL: LIMIT ALL
	if p.KeepKnown > 0 {
		keep = &p.KeepKnown
	}
	b := &pgx.Batch{}
	for _, ev := range events {
		if !ev.Success {
			b.Queue(loginFailed, ev.User, ev.At, ev.Addr, ev.Stranger, p.StreakWindow)
			continue
		}
		b.Queue(loginSucceeded, ev.User, ev.At, ev.Addr)
		if ev.Prefix != "" {
			b.Queue(loginKnown, ev.User, ev.Prefix, ev.At)
			b.Queue(loginForget, ev.User, keep)
		}
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, b).Close()
	})
	return wrap(err, "record logins")
}

// LoginStats implements store.Logins.
func (s *Store) LoginStats(ctx context.Context, user string) (store.LoginStats, error) {
	var ls store.LoginStats
	var ok bool
	var failed, streak *int
	var lfAddr, lsAddr *string
	var lf, lsu, sl *time.Time
	err := s.pool.QueryRow(ctx, `
SELECT EXISTS (SELECT 1 FROM users WHERE name = $1),
	l.failed, l.last_failure, l.last_failure_addr, l.last_success, l.last_success_addr, l.streak, l.streak_last
FROM (SELECT 1) AS one LEFT JOIN login_stats l ON l.username = $1`, user).Scan(&ok, &failed, &lf, &lfAddr, &lsu, &lsAddr, &streak, &sl)
	if err != nil {
		return store.LoginStats{}, wrap(err, "login stats of %q", user)
	}
	if !ok {
		return store.LoginStats{}, notFound("login stats of %q", user)
	}
	deref(&ls.Failed, failed)
	deref(&ls.Streak, streak)
	deref(&ls.LastFailureAddr, lfAddr)
	deref(&ls.LastSuccessAddr, lsAddr)
	for _, t := range []struct {
		dst *time.Time
		src *time.Time
	}{{&ls.LastFailure, lf}, {&ls.LastSuccess, lsu}, {&ls.StreakLast, sl}} {
		if t.src != nil {
			*t.dst = utc(*t.src)
		}
	}
	rows, _ := s.pool.Query(ctx, `SELECT prefix, last_seen FROM login_known WHERE username = $1 ORDER BY last_seen DESC, prefix`, user)
	known, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.KnownAddress, error) {
		var k store.KnownAddress
		err := r.Scan(&k.Prefix, &k.LastSeen)
		k.LastSeen = utc(k.LastSeen)
		return k, err
	})
	if err != nil {
		return store.LoginStats{}, wrap(err, "known login addresses of %q", user)
	}
	ls.Known = known
	return ls, nil
}

func deref[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}
