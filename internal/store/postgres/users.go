package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// insertCred stores one credential of a user. Selecting from users makes it
// insert nothing for an absent account instead of failing on the foreign
// key (and logging an error on the server). A repeated mechanism keeps the
// last one, as an account has one credential per mechanism.
const insertCred = `
INSERT INTO credentials (username, mechanism, salt, iterations, stored_key, server_key)
SELECT name, $2, $3, $4, $5, $6 FROM users WHERE name = $1
ON CONFLICT (username, mechanism) DO UPDATE SET
	salt = excluded.salt, iterations = excluded.iterations,
	stored_key = excluded.stored_key, server_key = excluded.server_key`

func queueCreds(b *pgx.Batch, user string, creds []store.Credential) {
	for _, c := range creds {
		b.Queue(insertCred, user, c.Mechanism, nonNil(c.Salt), c.Iterations, nonNil(c.StoredKey), nonNil(c.ServerKey))
	}
}

// CreateUser implements store.Users: the account and its credentials in
// one batch, hence one round trip and one transaction. A taken name fails
// the first insert with a unique violation (ErrExists), which rolls back
// the whole batch; a concurrent CreateUser of the same name waits for the
// first to commit and then fails the same way.
func (s *Store) CreateUser(ctx context.Context, user string, creds []store.Credential) error {
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO users (name) VALUES ($1)`, user)
	queueCreds(b, user, creds)
	br := s.pool.SendBatch(ctx, b)
	return wrap(closeBatch(br, nil), "create user %q", user)
}

// SetCredentials implements store.Users. The user's row lock makes
// concurrent replacements of one account's credentials apply one after the
// other; without it the delete of one and the inserts of another could
// interleave and leave a mix of both sets.
func (s *Store) SetCredentials(ctx context.Context, user string, creds []store.Credential) error {
	b := &pgx.Batch{}
	b.Queue(lockUser, user)
	b.Queue(`DELETE FROM credentials WHERE username = $1`, user)
	queueCreds(b, user, creds)
	br := s.pool.SendBatch(ctx, b)
	ok, err := lockedRow(br)
	if err = closeBatch(br, err); err != nil {
		return wrap(err, "set credentials of %q", user)
	}
	if !ok {
		return notFound("set credentials: user %q", user)
	}
	return nil
}

// DeleteUser implements store.Users. ON DELETE CASCADE removes the
// credentials, roster, offline messages and last activity in the same
// statement.
func (s *Store) DeleteUser(ctx context.Context, user string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM users WHERE name = $1`, user)
	if err != nil {
		return wrap(err, "delete user %q", user)
	}
	if tag.RowsAffected() == 0 {
		return notFound("delete user %q", user)
	}
	return nil
}

// Credential implements store.Users. It runs on every login.
func (s *Store) Credential(ctx context.Context, user, mechanism string) (store.Credential, error) {
	c := store.Credential{Mechanism: mechanism}
	err := s.pool.QueryRow(ctx, `
SELECT salt, iterations, stored_key, server_key FROM credentials
WHERE username = $1 AND mechanism = $2`, user, mechanism).Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Credential{}, notFound("credential %s for %q", mechanism, user)
	}
	if err != nil {
		return store.Credential{}, wrap(err, "credential")
	}
	return c, nil
}

// UserExists implements store.Users.
func (s *Store) UserExists(ctx context.Context, user string) (bool, error) {
	var ok bool
	if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE name = $1)`, user).Scan(&ok); err != nil {
		return false, wrap(err, "user exists")
	}
	return ok, nil
}

// ListUsers implements store.Users. The column's "C" collation orders by
// bytes, the order of sort.Strings, and lets the primary key index serve
// the ORDER BY.
func (s *Store) ListUsers(ctx context.Context) ([]string, error) {
	rows, _ := s.pool.Query(ctx, `SELECT name FROM users ORDER BY name`)
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap(err, "list users")
	}
	return out, nil
}

// SetLastActivity implements store.LastActivity. Selecting from users
// makes an unknown account insert nothing (ErrNotFound); an account deleted
// while this runs trips the foreign key instead, also ErrNotFound.
func (s *Store) SetLastActivity(ctx context.Context, user string, t time.Time, status string) error {
	tag, err := s.pool.Exec(ctx, `
INSERT INTO last_activity (username, at, status)
SELECT name, $2, $3 FROM users WHERE name = $1
ON CONFLICT (username) DO UPDATE SET at = excluded.at, status = excluded.status`,
		user, t, status)
	if err != nil {
		return wrap(err, "set last activity of %q", user)
	}
	if tag.RowsAffected() == 0 {
		return notFound("set last activity: user %q", user)
	}
	return nil
}

// LastActivity implements store.LastActivity.
func (s *Store) LastActivity(ctx context.Context, user string) (time.Time, string, error) {
	var at time.Time
	var status string
	err := s.pool.QueryRow(ctx, `SELECT at, status FROM last_activity WHERE username = $1`, user).Scan(&at, &status)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, "", notFound("last activity of %q", user)
	}
	if err != nil {
		return time.Time{}, "", wrap(err, "last activity")
	}
	return utc(at), status, nil
}

// SetUserDisabled implements store.Disabling.
func (s *Store) SetUserDisabled(ctx context.Context, user string, disabled bool) error {
	tag, err := s.pool.Exec(ctx, `UPDATE users SET disabled = $2 WHERE name = $1`, user, disabled)
	if err != nil {
		return wrap(err, "set user disabled")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: set user disabled %q: %w", user, store.ErrNotFound)
	}
	return nil
}

// UserDisabled implements store.Disabling.
func (s *Store) UserDisabled(ctx context.Context, user string) (bool, error) {
	var v bool
	err := s.pool.QueryRow(ctx, `SELECT disabled FROM users WHERE name = $1`, user).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, wrap(err, "user disabled")
	}
	return v, nil
}
