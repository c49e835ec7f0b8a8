package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"bluetick/internal/store"
)

// CreateUser implements store.Users.
func (s *Store) CreateUser(ctx context.Context, user string, creds []store.Credential) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		// ON CONFLICT DO NOTHING plus a row count tells "taken" apart
		// without parsing driver error codes.
		res, err := tx.ExecContext(ctx, `INSERT INTO users (name) VALUES (?) ON CONFLICT (name) DO NOTHING`, user)
		if err != nil {
			return fmt.Errorf("sqlite: create user %q: %w", user, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return fmt.Errorf("sqlite: create user %q: %w", user, store.ErrExists)
		}
		return insertCreds(ctx, tx, user, creds)
	})
}

// SetCredentials implements store.Users.
func (s *Store) SetCredentials(ctx context.Context, user string, creds []store.Credential) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		var ok bool
		if err := tx.StmtContext(ctx, s.stmtUserExists).QueryRowContext(ctx, user).Scan(&ok); err != nil {
			return err
		}
		if !ok {
			return notFound("set credentials: user %q", user)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM credentials WHERE user = ?`, user); err != nil {
			return err
		}
		return insertCreds(ctx, tx, user, creds)
	})
}

// insertCreds stores creds; a repeated mechanism keeps the last one, as
// the account has one credential per mechanism.
func insertCreds(ctx context.Context, tx *sql.Tx, user string, creds []store.Credential) error {
	for _, c := range creds {
		_, err := tx.ExecContext(ctx, `
INSERT INTO credentials (user, mechanism, salt, iterations, stored_key, server_key)
VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (user, mechanism) DO UPDATE SET
	salt = excluded.salt, iterations = excluded.iterations,
	stored_key = excluded.stored_key, server_key = excluded.server_key`,
			user, c.Mechanism, nonNil(c.Salt), c.Iterations, nonNil(c.StoredKey), nonNil(c.ServerKey))
		if err != nil {
			return fmt.Errorf("sqlite: credential %s for %q: %w", c.Mechanism, user, err)
		}
	}
	return nil
}

// DeleteUser implements store.Users. The schema's ON DELETE CASCADE
// removes the credentials, roster, offline messages and last activity in
// the same transaction.
func (s *Store) DeleteUser(ctx context.Context, user string) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE name = ?`, user)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound("delete user %q", user)
		}
		return nil
	})
}

// Credential implements store.Users.
func (s *Store) Credential(ctx context.Context, user, mechanism string) (store.Credential, error) {
	c := store.Credential{Mechanism: mechanism}
	err := s.stmtCredential.QueryRowContext(ctx, user, mechanism).Scan(&c.Salt, &c.Iterations, &c.StoredKey, &c.ServerKey)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Credential{}, notFound("credential %s for %q", mechanism, user)
	}
	if err != nil {
		return store.Credential{}, fmt.Errorf("sqlite: credential: %w", err)
	}
	return c, nil
}

// UserExists implements store.Users.
func (s *Store) UserExists(ctx context.Context, user string) (bool, error) {
	var ok bool
	if err := s.stmtUserExists.QueryRowContext(ctx, user).Scan(&ok); err != nil {
		return false, fmt.Errorf("sqlite: user exists: %w", err)
	}
	return ok, nil
}

// ListUsers implements store.Users. BINARY collation orders by bytes, the
// order of sort.Strings.
func (s *Store) ListUsers(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT name FROM users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("sqlite: list users: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// SetLastActivity implements store.LastActivity. Selecting from users
// makes an unknown account insert nothing (ErrNotFound) instead of
// tripping the foreign key.
func (s *Store) SetLastActivity(ctx context.Context, user string, t time.Time, status string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Every session that ends writes here: when many end at once (a mass
	// disconnect, a shutdown) they share commits (BenchmarkSetLastActivity).
	r := &lastActivityReq{user: user, at: toDB(t), status: status}
	s.lastGC.do(s, r)
	return r.err
}

// lastActivityReq is one SetLastActivity in a group commit.
type lastActivityReq struct {
	user   string
	at     int64
	status string
	err    error
}

// setLastActivity applies r in the batch's transaction; an account that
// does not exist is r's answer, not the batch's.
func setLastActivity(tx *sql.Tx, r *lastActivityReq) error {
	res, err := tx.Exec(`
INSERT INTO last_activity (user, at, status)
SELECT name, ?, ? FROM users WHERE name = ?
ON CONFLICT (user) DO UPDATE SET at = excluded.at, status = excluded.status`,
		r.at, r.status, r.user)
	if err != nil {
		return fmt.Errorf("sqlite: set last activity: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		r.err = notFound("set last activity: user %q", r.user)
	}
	return nil
}

// LastActivity implements store.LastActivity.
func (s *Store) LastActivity(ctx context.Context, user string) (time.Time, string, error) {
	var at int64
	var status string
	err := s.db.QueryRowContext(ctx, `SELECT at, status FROM last_activity WHERE user = ?`, user).Scan(&at, &status)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, "", notFound("last activity of %q", user)
	}
	if err != nil {
		return time.Time{}, "", fmt.Errorf("sqlite: last activity: %w", err)
	}
	return fromDB(at), status, nil
}

// SetUserDisabled implements store.Disabling.
func (s *Store) SetUserDisabled(ctx context.Context, user string, disabled bool) error {
	v := 0
	if disabled {
		v = 1
	}
	res, err := s.db.ExecContext(ctx, `UPDATE users SET disabled = ? WHERE name = ?`, v, user)
	if err != nil {
		return fmt.Errorf("sqlite: set user disabled: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("sqlite: set user disabled: %w", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite: set user disabled %q: %w", user, store.ErrNotFound)
	}
	return nil
}

// UserDisabled implements store.Disabling.
func (s *Store) UserDisabled(ctx context.Context, user string) (bool, error) {
	var v int
	err := s.db.QueryRowContext(ctx, `SELECT disabled FROM users WHERE name = ?`, user).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: user disabled: %w", err)
	}
	return v != 0, nil
}
