package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// Selecting from users makes an absent account insert nothing.
const (
	userAgentPut = `
INSERT INTO user_agents (username, id, software, device, last_seen, last_addr)
SELECT name, $2, $3, $4, $5, $6 FROM users WHERE name = $1
ON CONFLICT (username, id) DO UPDATE SET
	software = excluded.software, device = excluded.device,
	last_seen = excluded.last_seen, last_addr = excluded.last_addr`
	userAgentForget = `
DELETE FROM user_agents WHERE username = $1 AND id NOT IN
	(SELECT id FROM user_agents WHERE username = $1 ORDER BY last_seen DESC, id LIMIT $2)`
)

// PutUserAgent implements store.UserAgents: one transaction, one round trip.
func (s *Store) PutUserAgent(ctx context.Context, user string, ua store.UserAgent, keep int) error {
	var limit *int // NULL: LIMIT ALL
	if keep > 0 {
		limit = &keep
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		b := &pgx.Batch{}
		b.Queue(userAgentPut, user, ua.ID, ua.Software, ua.Device, ua.LastSeen, ua.LastAddr)
		b.Queue(userAgentForget, user, limit)
		br := tx.SendBatch(ctx, b)
		tag, err := br.Exec()
		if err == nil && tag.RowsAffected() == 0 {
			err = notFound("put user agent: user %q", user)
		}
		return closeBatch(br, err)
	})
	return wrap(err, "put user agent of %q", user)
}

// UserAgents implements store.UserAgents.
func (s *Store) UserAgents(ctx context.Context, user string) ([]store.UserAgent, error) {
	rows, _ := s.pool.Query(ctx, `
SELECT id, software, device, last_seen, last_addr FROM user_agents
WHERE username = $1 ORDER BY last_seen DESC, id`, user)
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.UserAgent, error) {
		var ua store.UserAgent
		err := r.Scan(&ua.ID, &ua.Software, &ua.Device, &ua.LastSeen, &ua.LastAddr)
		ua.LastSeen = utc(ua.LastSeen)
		return ua, err
	})
	if err != nil {
		return nil, wrap(err, "user agents of %q", user)
	}
	return out, nil
}

// DeleteUserAgent implements store.UserAgents.
func (s *Store) DeleteUserAgent(ctx context.Context, user, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM user_agents WHERE username = $1 AND id = $2`, user, id)
	if err != nil {
		return wrap(err, "delete user agent of %q", user)
	}
	if tag.RowsAffected() == 0 {
		return notFound("delete user agent %q of %q", id, user)
	}
	return nil
}
