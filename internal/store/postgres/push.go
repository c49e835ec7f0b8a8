package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/store"
)

// PutPushRegistration implements store.Push. Selecting from users makes an
// unknown account insert nothing (ErrNotFound); one deleted meanwhile trips
// the foreign key, also ErrNotFound.
func (s *Store) PutPushRegistration(ctx context.Context, r store.PushRegistration) error {
	opts := r.Options
	if opts == nil {
		opts = map[string]string{}
	}
	tag, err := s.pool.Exec(ctx, `
INSERT INTO push_registrations (username, service, node, resource, options, created)
SELECT name, $2, $3, $4, $5, $6 FROM users WHERE name = $1
ON CONFLICT (username, service, node) DO UPDATE SET
	resource = excluded.resource, options = excluded.options, created = excluded.created`,
		r.User, r.Service, r.Node, r.Resource, opts, r.Created)
	if err != nil {
		return wrap(err, "put push registration of %q", r.User)
	}
	if tag.RowsAffected() == 0 {
		return notFound("put push registration: user %q", r.User)
	}
	return nil
}

// DeletePushRegistrations implements store.Push.
func (s *Store) DeletePushRegistrations(ctx context.Context, user, service, node string) (int, error) {
	tag, err := s.pool.Exec(ctx, `
DELETE FROM push_registrations WHERE username = $1 AND service = $2 AND ($3 = '' OR node = $3)`,
		user, service, node)
	if err != nil {
		return 0, wrap(err, "delete push registrations of %q", user)
	}
	return int(tag.RowsAffected()), nil
}

// PushRegistrations implements store.Push.
func (s *Store) PushRegistrations(ctx context.Context, user string) ([]store.PushRegistration, error) {
	rows, err := s.pool.Query(ctx, `
SELECT service, node, resource, options, created FROM push_registrations
WHERE username = $1 ORDER BY created, service, node`, user)
	if err != nil {
		return nil, wrap(err, "push registrations of %q", user)
	}
	defer rows.Close()
	var out []store.PushRegistration
	for rows.Next() {
		r := store.PushRegistration{User: user}
		if err := rows.Scan(&r.Service, &r.Node, &r.Resource, &r.Options, &r.Created); err != nil {
			return nil, wrap(err, "push registrations of %q", user)
		}
		r.Created = utc(r.Created)
		out = append(out, r)
	}
	return out, wrap(rows.Err(), "push registrations of %q", user)
}

// PutPushDevice implements store.Push.
func (s *Store) PutPushDevice(ctx context.Context, d store.PushDevice) error {
	tag, err := s.pool.Exec(ctx, `
INSERT INTO push_devices (node, owner, device_id, provider, token, p256dh, auth, secret_hash, created)
SELECT $1, name, $3, $4, $5, $6, $7, $8, $9 FROM users WHERE name = $2
ON CONFLICT (node) DO UPDATE SET
	owner = excluded.owner, device_id = excluded.device_id, provider = excluded.provider,
	token = excluded.token, p256dh = excluded.p256dh, auth = excluded.auth,
	secret_hash = excluded.secret_hash, created = excluded.created`,
		d.Node, d.Owner, d.DeviceID, d.Provider, d.Token, nonNil(d.P256DH), nonNil(d.Auth), nonNil(d.SecretHash), d.Created)
	if err != nil {
		return wrap(err, "put push device of %q", d.Owner)
	}
	if tag.RowsAffected() == 0 {
		return notFound("put push device: user %q", d.Owner)
	}
	return nil
}

const deviceCols = `node, owner, device_id, provider, token, p256dh, auth, secret_hash, created`

func scanDevice(row pgx.Row) (store.PushDevice, error) {
	var d store.PushDevice
	err := row.Scan(&d.Node, &d.Owner, &d.DeviceID, &d.Provider, &d.Token, &d.P256DH, &d.Auth, &d.SecretHash, &d.Created)
	d.Created = utc(d.Created)
	return d, err
}

// PushDevice implements store.Push.
func (s *Store) PushDevice(ctx context.Context, node string) (store.PushDevice, error) {
	d, err := scanDevice(s.pool.QueryRow(ctx, `SELECT `+deviceCols+` FROM push_devices WHERE node = $1`, node))
	if errors.Is(err, pgx.ErrNoRows) {
		return store.PushDevice{}, notFound("push device %q", node)
	}
	if err != nil {
		return store.PushDevice{}, wrap(err, "push device")
	}
	return d, nil
}

// PushDevices implements store.Push.
func (s *Store) PushDevices(ctx context.Context, owner string) ([]store.PushDevice, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+deviceCols+` FROM push_devices WHERE owner = $1 ORDER BY created, node`, owner)
	if err != nil {
		return nil, wrap(err, "push devices of %q", owner)
	}
	defer rows.Close()
	var out []store.PushDevice
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return nil, wrap(err, "push devices of %q", owner)
		}
		out = append(out, d)
	}
	return out, wrap(rows.Err(), "push devices of %q", owner)
}

// DeletePushDevice implements store.Push.
func (s *Store) DeletePushDevice(ctx context.Context, node string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM push_devices WHERE node = $1`, node)
	if err != nil {
		return false, wrap(err, "delete push device")
	}
	return tag.RowsAffected() > 0, nil
}
