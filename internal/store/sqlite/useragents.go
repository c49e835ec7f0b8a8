package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"bluetick/internal/store"
)

// Selecting from users makes an absent account insert nothing.
const (
	userAgentPut = `
INSERT INTO user_agents (user, id, software, device, last_seen, last_addr)
SELECT name, ?2, ?3, ?4, ?5, ?6 FROM users WHERE name = ?1
ON CONFLICT (user, id) DO UPDATE SET
	software = excluded.software, device = excluded.device,
	last_seen = excluded.last_seen, last_addr = excluded.last_addr`
	userAgentForget = `
DELETE FROM user_agents WHERE user = ?1 AND id NOT IN
	(SELECT id FROM user_agents WHERE user = ?1 ORDER BY last_seen DESC, id LIMIT ?2)`
)

// PutUserAgent implements store.UserAgents.
func (s *Store) PutUserAgent(ctx context.Context, user string, ua store.UserAgent, keep int) error {
	if keep <= 0 {
		keep = -1 // no LIMIT
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, userAgentPut, user, ua.ID, ua.Software, ua.Device, toDB(ua.LastSeen), ua.LastAddr)
		if err != nil {
			return fmt.Errorf("sqlite: put user agent of %q: %w", user, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound("put user agent: user %q", user)
		}
		if _, err := tx.ExecContext(ctx, userAgentForget, user, keep); err != nil {
			return fmt.Errorf("sqlite: forget old user agents of %q: %w", user, err)
		}
		return nil
	})
}

// UserAgents implements store.UserAgents.
func (s *Store) UserAgents(ctx context.Context, user string) ([]store.UserAgent, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT id, software, device, last_seen, last_addr FROM user_agents
WHERE user = ? ORDER BY last_seen DESC, id`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: user agents of %q: %w", user, err)
	}
	defer rows.Close()
	var out []store.UserAgent
	for rows.Next() {
		var ua store.UserAgent
		var seen int64
		if err := rows.Scan(&ua.ID, &ua.Software, &ua.Device, &seen, &ua.LastAddr); err != nil {
			return nil, fmt.Errorf("sqlite: user agents of %q: %w", user, err)
		}
		ua.LastSeen = fromDB(seen)
		out = append(out, ua)
	}
	return out, rows.Err()
}

// DeleteUserAgent implements store.UserAgents.
func (s *Store) DeleteUserAgent(ctx context.Context, user, id string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM user_agents WHERE user = ? AND id = ?`, user, id)
		if err != nil {
			return fmt.Errorf("sqlite: delete user agent of %q: %w", user, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound("delete user agent %q of %q", id, user)
		}
		return nil
	})
}
