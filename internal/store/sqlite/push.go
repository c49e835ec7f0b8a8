package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"bluetick/internal/store"
)

// PutPushRegistration implements store.Push. Selecting from users makes an
// unknown account insert nothing (ErrNotFound).
func (s *Store) PutPushRegistration(ctx context.Context, r store.PushRegistration) error {
	opts, err := json.Marshal(nonNilMap(r.Options))
	if err != nil {
		return fmt.Errorf("sqlite: push options: %w", err)
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO push_registrations (user, service, node, resource, options, created)
SELECT name, ?, ?, ?, ?, ? FROM users WHERE name = ?
ON CONFLICT (user, service, node) DO UPDATE SET
	resource = excluded.resource, options = excluded.options, created = excluded.created`,
			r.Service, r.Node, r.Resource, string(opts), toDB(r.Created), r.User)
		if err != nil {
			return fmt.Errorf("sqlite: put push registration: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound("put push registration: user %q", r.User)
		}
		return nil
	})
}

// DeletePushRegistrations implements store.Push.
func (s *Store) DeletePushRegistrations(ctx context.Context, user, service, node string) (int, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
DELETE FROM push_registrations WHERE user = ? AND service = ? AND (? = '' OR node = ?)`,
			user, service, node, node)
		if err != nil {
			return fmt.Errorf("sqlite: delete push registrations: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}

// PushRegistrations implements store.Push.
func (s *Store) PushRegistrations(ctx context.Context, user string) ([]store.PushRegistration, error) {
	rows, err := s.db.QueryContext(ctx, `
SELECT service, node, resource, options, created FROM push_registrations
WHERE user = ? ORDER BY created, service, node`, user)
	if err != nil {
		return nil, fmt.Errorf("sqlite: push registrations: %w", err)
	}
	defer rows.Close()
	var out []store.PushRegistration
	for rows.Next() {
		r := store.PushRegistration{User: user}
		var opts string
		var created int64
		if err := rows.Scan(&r.Service, &r.Node, &r.Resource, &opts, &created); err != nil {
			return nil, fmt.Errorf("sqlite: push registrations: %w", err)
		}
		if err := json.Unmarshal([]byte(opts), &r.Options); err != nil {
			return nil, fmt.Errorf("sqlite: push registration options: %w", err)
		}
		r.Created = fromDB(created)
		out = append(out, r)
	}
	return out, rows.Err()
}

// PutPushDevice implements store.Push.
func (s *Store) PutPushDevice(ctx context.Context, d store.PushDevice) error {
	return s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `
INSERT INTO push_devices (node, owner, device_id, provider, token, p256dh, auth, secret_hash, created)
SELECT ?, name, ?, ?, ?, ?, ?, ?, ? FROM users WHERE name = ?
ON CONFLICT (node) DO UPDATE SET
	owner = excluded.owner, device_id = excluded.device_id, provider = excluded.provider,
	token = excluded.token, p256dh = excluded.p256dh, auth = excluded.auth,
	secret_hash = excluded.secret_hash, created = excluded.created`,
			d.Node, d.DeviceID, d.Provider, d.Token, nonNil(d.P256DH), nonNil(d.Auth), nonNil(d.SecretHash), toDB(d.Created), d.Owner)
		if err != nil {
			return fmt.Errorf("sqlite: put push device: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return notFound("put push device: user %q", d.Owner)
		}
		return nil
	})
}

const deviceCols = `node, owner, device_id, provider, token, p256dh, auth, secret_hash, created`

func scanDevice(sc interface{ Scan(...any) error }) (store.PushDevice, error) {
	var d store.PushDevice
	var created int64
	err := sc.Scan(&d.Node, &d.Owner, &d.DeviceID, &d.Provider, &d.Token, &d.P256DH, &d.Auth, &d.SecretHash, &created)
	d.Created = fromDB(created)
	return d, err
}

// PushDevice implements store.Push.
func (s *Store) PushDevice(ctx context.Context, node string) (store.PushDevice, error) {
	d, err := scanDevice(s.db.QueryRowContext(ctx, `SELECT `+deviceCols+` FROM push_devices WHERE node = ?`, node))
	if errors.Is(err, sql.ErrNoRows) {
		return store.PushDevice{}, notFound("push device %q", node)
	}
	if err != nil {
		return store.PushDevice{}, fmt.Errorf("sqlite: push device: %w", err)
	}
	return d, nil
}

// PushDevices implements store.Push.
func (s *Store) PushDevices(ctx context.Context, owner string) ([]store.PushDevice, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+deviceCols+` FROM push_devices WHERE owner = ? ORDER BY created, node`, owner)
	if err != nil {
		return nil, fmt.Errorf("sqlite: push devices: %w", err)
	}
	defer rows.Close()
	var out []store.PushDevice
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: push devices: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DeletePushDevice implements store.Push.
func (s *Store) DeletePushDevice(ctx context.Context, node string) (bool, error) {
	var n int64
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM push_devices WHERE node = ?`, node)
		if err != nil {
			return fmt.Errorf("sqlite: delete push device: %w", err)
		}
		n, err = res.RowsAffected()
		return err
	})
	return n > 0, err
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}
