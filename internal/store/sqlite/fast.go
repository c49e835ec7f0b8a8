package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"bluetick/internal/store"
)

// PutFastToken implements store.FastTokens. Selecting from users makes an
// unknown account insert nothing (ErrNotFound).
func (s *Store) PutFastToken(ctx context.Context, t store.FastToken, maxAgents int) error {
	now := toDB(t.Created)
	return s.write(ctx, func(tx *sql.Tx) error {
		// The client's unused tokens are superseded by this one.
		if _, err := tx.ExecContext(ctx, `
DELETE FROM fast_tokens WHERE user = ? AND agent_id = ? AND last_used = 0 AND revoked = 0`, t.User, t.AgentID); err != nil {
			return fmt.Errorf("sqlite: put fast token: %w", err)
		}
		res, err := tx.ExecContext(ctx, `
INSERT INTO fast_tokens (user, hash, agent_id, mechanism, software, device, created, expires, last_used, last_count)
SELECT name, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM users WHERE name = ?
ON CONFLICT (user, hash) DO NOTHING`,
			nonNil(t.Hash), t.AgentID, t.Mechanism, t.Software, t.Device, now, toDB(t.Expires), usedDB(t.LastUsed), t.Count, t.User)
		if err != nil {
			return fmt.Errorf("sqlite: put fast token: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			if err := userExists(ctx, tx, t.User); err != nil {
				return err
			}
			return fmt.Errorf("sqlite: put fast token of %q: %w", t.User, store.ErrExists)
		}
		if maxAgents <= 0 {
			return nil
		}
		// The other clients with live tokens, most recently active first.
		rows, err := tx.QueryContext(ctx, `
SELECT agent_id FROM fast_tokens
WHERE user = ? AND revoked = 0 AND expires > ? AND agent_id <> ?
GROUP BY agent_id ORDER BY MAX(MAX(created, last_used)) DESC, agent_id`, t.User, now, t.AgentID)
		if err != nil {
			return fmt.Errorf("sqlite: put fast token: %w", err)
		}
		var agents []string
		for rows.Next() {
			var a string
			if err := rows.Scan(&a); err != nil {
				rows.Close()
				return err
			}
			agents = append(agents, a)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for i := maxAgents - 1; i < len(agents); i++ {
			if _, err := tx.ExecContext(ctx, `
UPDATE fast_tokens SET revoked = ?, revoke_reason = 'evicted' WHERE user = ? AND agent_id = ? AND revoked = 0`,
				now, t.User, agents[i]); err != nil {
				return fmt.Errorf("sqlite: evict fast tokens: %w", err)
			}
		}
		_, err = tx.ExecContext(ctx, `
DELETE FROM fast_tokens WHERE user = ? AND revoked <> 0 AND hash NOT IN
	(SELECT hash FROM fast_tokens WHERE user = ? AND revoked <> 0 ORDER BY revoked DESC, hash LIMIT ?)`,
			t.User, t.User, 2*maxAgents)
		if err != nil {
			return fmt.Errorf("sqlite: prune revoked fast tokens: %w", err)
		}
		return nil
	})
}

// usedDB stores a zero time as 0 ("never").
func usedDB(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return toDB(t)
}

func usedFromDB(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromDB(us)
}

// The statements of a token login, prepared once (Store.stmtFast*).
const (
	fastTokensSQL = `
SELECT hash, agent_id, mechanism, software, device, created, expires, last_used, last_count, revoked, revoke_reason
FROM fast_tokens WHERE user = ? ORDER BY created, hash`
	fastUseGetSQL     = `SELECT agent_id, expires, last_count, revoked FROM fast_tokens WHERE user = ? AND hash = ?`
	fastUseSQL        = `UPDATE fast_tokens SET last_used = ?, last_count = ? WHERE user = ? AND hash = ?`
	fastSupersedeSQL  = `DELETE FROM fast_tokens WHERE user = ? AND agent_id = ? AND hash <> ? AND revoked = 0 AND expires <= ?`
	fastInvalidateSQL = `DELETE FROM fast_tokens WHERE user = ? AND agent_id = ? AND revoked = 0`
)

// FastTokens implements store.FastTokens.
func (s *Store) FastTokens(ctx context.Context, user string) ([]store.FastToken, error) {
	rows, err := s.stmtFastTokens.QueryContext(ctx, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: fast tokens: %w", err)
	}
	defer rows.Close()
	var out []store.FastToken
	for rows.Next() {
		t := store.FastToken{User: user}
		var created, expires, used, revoked int64
		if err := rows.Scan(&t.Hash, &t.AgentID, &t.Mechanism, &t.Software, &t.Device, &created, &expires, &used,
			&t.Count, &revoked, &t.RevokeReason); err != nil {
			return nil, fmt.Errorf("sqlite: fast tokens: %w", err)
		}
		t.Created, t.Expires = fromDB(created), fromDB(expires)
		t.LastUsed, t.Revoked = usedFromDB(used), usedFromDB(revoked)
		out = append(out, t)
	}
	return out, rows.Err()
}

// UseFastToken implements store.FastTokens. Token uses share group-commit
// transactions (a login that sends a count writes at every login, and a
// transaction each made such logins cost more than a SCRAM login); the
// write lock serializes them, so a count is accepted once.
func (s *Store) UseFastToken(ctx context.Context, u store.FastUse) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r := &fastUseReq{u: u}
	s.fastUseGC.do(s, r)
	return r.err
}

// fastUseReq is one UseFastToken in a group commit, err its answer.
type fastUseReq struct {
	u   store.FastUse
	err error
}

// useFast applies r in the batch's transaction. A refusal (no such live
// token, a replayed count) is r's answer; an error fails the batch.
func (s *Store) useFast(tx *sql.Tx, r *fastUseReq) error {
	ctx, u := context.Background(), r.u
	var agent string
	var expires, count, revoked int64
	err := tx.StmtContext(ctx, s.stmtFastUseGet).QueryRowContext(ctx, u.User, nonNil(u.Hash)).
		Scan(&agent, &expires, &count, &revoked)
	switch {
	case errors.Is(err, sql.ErrNoRows) || err == nil && revoked != 0:
		r.err = notFound("use fast token of %q", u.User)
		return nil
	case err != nil:
		return fmt.Errorf("sqlite: use fast token: %w", err)
	case u.Count > 0 && u.Count <= count:
		r.err = fmt.Errorf("sqlite: use fast token of %q: count %d: %w", u.User, u.Count, store.ErrReplay)
		return nil
	case u.Invalidate:
		_, err = tx.StmtContext(ctx, s.stmtFastInvalidate).ExecContext(ctx, u.User, agent)
		return err
	}
	if u.Count > 0 {
		count = u.Count
	}
	if _, err := tx.StmtContext(ctx, s.stmtFastUse).ExecContext(ctx, toDB(u.At), count, u.User, nonNil(u.Hash)); err != nil {
		return fmt.Errorf("sqlite: use fast token: %w", err)
	}
	_, err = tx.StmtContext(ctx, s.stmtFastSupersede).ExecContext(ctx, u.User, agent, nonNil(u.Hash), expires)
	return err
}

// RevokeFastTokens implements store.FastTokens.
func (s *Store) RevokeFastTokens(ctx context.Context, user, agentID string, at time.Time, reason string) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
UPDATE fast_tokens SET revoked = ?, revoke_reason = ? WHERE user = ? AND revoked = 0 AND (? = '' OR agent_id = ?)`,
			toDB(at), reason, user, agentID, agentID)
		if err != nil {
			return fmt.Errorf("sqlite: revoke fast tokens: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// ExpireFastTokens implements store.FastTokens.
func (s *Store) ExpireFastTokens(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM fast_tokens WHERE expires < ?`, toDB(before))
		if err != nil {
			return fmt.Errorf("sqlite: expire fast tokens: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
