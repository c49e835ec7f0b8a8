package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// PutFastToken implements store.FastTokens, in one transaction that first
// locks the account's row: concurrent logins of one account on several
// nodes then count and evict its clients one after the other.
func (s *Store) PutFastToken(ctx context.Context, t store.FastToken, maxAgents int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, lockUser, t.User).Scan(&one); errors.Is(err, pgx.ErrNoRows) {
			return notFound("put fast token: user %q", t.User)
		} else if err != nil {
			return err
		}
		// The client's unused tokens are superseded by this one.
		if _, err := tx.Exec(ctx, `
DELETE FROM fast_tokens WHERE username = $1 AND agent_id = $2 AND last_used IS NULL AND revoked IS NULL`,
			t.User, t.AgentID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
INSERT INTO fast_tokens (username, hash, agent_id, mechanism, software, device, created, expires, last_used, last_count)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			t.User, nonNil(t.Hash), t.AgentID, t.Mechanism, t.Software, t.Device, t.Created, t.Expires, nullTime(t.LastUsed), t.Count); err != nil {
			return err
		}
		if maxAgents <= 0 {
			return nil
		}
		// Revoke the tokens of all but the maxAgents-1 other clients
		// active most recently.
		if _, err := tx.Exec(ctx, `
UPDATE fast_tokens SET revoked = $2, revoke_reason = 'evicted'
WHERE username = $1 AND revoked IS NULL AND agent_id IN (
	SELECT agent_id FROM fast_tokens
	WHERE username = $1 AND revoked IS NULL AND expires > $2 AND agent_id <> $3
	GROUP BY agent_id ORDER BY max(greatest(created, last_used)) DESC, agent_id OFFSET $4)`,
			t.User, t.Created, t.AgentID, maxAgents-1); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `
DELETE FROM fast_tokens WHERE username = $1 AND revoked IS NOT NULL AND hash NOT IN
	(SELECT hash FROM fast_tokens WHERE username = $1 AND revoked IS NOT NULL ORDER BY revoked DESC, hash LIMIT $2)`,
			t.User, 2*maxAgents)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return wrap(err, "put fast token of %q", t.User)
	}
	return err
}

// nullTime sends a zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// FastTokens implements store.FastTokens.
func (s *Store) FastTokens(ctx context.Context, user string) ([]store.FastToken, error) {
	rows, err := s.pool.Query(ctx, `
SELECT hash, agent_id, mechanism, software, device, created, expires, last_used, last_count, revoked, revoke_reason
FROM fast_tokens WHERE username = $1 ORDER BY created, hash`, user)
	if err != nil {
		return nil, wrap(err, "fast tokens of %q", user)
	}
	defer rows.Close()
	var out []store.FastToken
	for rows.Next() {
		t := store.FastToken{User: user}
		var used, revoked *time.Time
		if err := rows.Scan(&t.Hash, &t.AgentID, &t.Mechanism, &t.Software, &t.Device, &t.Created, &t.Expires,
			&used, &t.Count, &revoked, &t.RevokeReason); err != nil {
			return nil, wrap(err, "fast tokens of %q", user)
		}
		t.Created, t.Expires = utc(t.Created), utc(t.Expires)
		if used != nil {
			t.LastUsed = utc(*used)
		}
		if revoked != nil {
			t.Revoked = utc(*revoked)
		}
		out = append(out, t)
	}
	return out, wrap(rows.Err(), "fast tokens of %q", user)
}

// UseFastToken implements store.FastTokens. The token's row is locked
// (FOR UPDATE) for the check and the update, so when two nodes receive
// the same count at once, one of them sees the other's.
func (s *Store) UseFastToken(ctx context.Context, u store.FastUse) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var agent string
		var expires time.Time
		var count int64
		var revoked *time.Time
		err := tx.QueryRow(ctx, `
SELECT agent_id, expires, last_count, revoked FROM fast_tokens WHERE username = $1 AND hash = $2 FOR UPDATE`,
			u.User, nonNil(u.Hash)).Scan(&agent, &expires, &count, &revoked)
		if errors.Is(err, pgx.ErrNoRows) || err == nil && revoked != nil {
			return notFound("use fast token of %q", u.User)
		}
		if err != nil {
			return err
		}
		if u.Count > 0 && u.Count <= count {
			return fmt.Errorf("postgres: use fast token of %q: count %d: %w", u.User, u.Count, store.ErrReplay)
		}
		if u.Invalidate {
			_, err := tx.Exec(ctx, `DELETE FROM fast_tokens WHERE username = $1 AND agent_id = $2 AND revoked IS NULL`, u.User, agent)
			return err
		}
		if u.Count > 0 {
			count = u.Count
		}
		if _, err := tx.Exec(ctx, `UPDATE fast_tokens SET last_used = $3, last_count = $4 WHERE username = $1 AND hash = $2`,
			u.User, nonNil(u.Hash), u.At, count); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `
DELETE FROM fast_tokens WHERE username = $1 AND agent_id = $2 AND hash <> $3 AND revoked IS NULL AND expires <= $4`,
			u.User, agent, nonNil(u.Hash), expires)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrReplay) {
		return wrap(err, "use fast token of %q", u.User)
	}
	return err
}

// RevokeFastTokens implements store.FastTokens.
func (s *Store) RevokeFastTokens(ctx context.Context, user, agentID string, at time.Time, reason string) (int, error) {
	tag, err := s.pool.Exec(ctx, `
UPDATE fast_tokens SET revoked = $2, revoke_reason = $3 WHERE username = $1 AND revoked IS NULL AND ($4 = '' OR agent_id = $4)`,
		user, at, reason, agentID)
	if err != nil {
		return 0, wrap(err, "revoke fast tokens of %q", user)
	}
	return int(tag.RowsAffected()), nil
}

// ExpireFastTokens implements store.FastTokens.
func (s *Store) ExpireFastTokens(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM fast_tokens WHERE expires < $1`, before)
	if err != nil {
		return 0, wrap(err, "expire fast tokens")
	}
	return int(tag.RowsAffected()), nil
}
