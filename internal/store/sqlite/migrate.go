package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations is the schema history, oldest first. Step i (0-based) takes
// the database from version i to version i+1; schema_version holds the
// number of steps applied. Steps are append-only: once released, a step is
// never edited, because databases in the field have already run it. To
// change the schema, add a step.
//
// Each step runs in its own transaction together with the version bump, so
// a crash mid-upgrade leaves the database at the previous version rather
// than half-migrated. foreign_keys is on for the connection and cannot be
// switched inside a transaction: a future step that rebuilds a referenced
// table must use the create-copy-drop-rename procedure of
// https://sqlite.org/lang_altertable.html#otheralter with that in mind.
var migrations = []string{
	// 1: initial schema.
	//
	// Names are compared byte-wise (BINARY collation): the server normalises
	// localparts and JIDs before they reach the store, and ListUsers sorts
	// in the same byte order as Go's sort.Strings.
	`
CREATE TABLE users (
	name           TEXT PRIMARY KEY,
	-- Current roster version (RFC 6121 §2.6), taken from
	-- counters.roster_version on every roster change.
	roster_version INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE credentials (
	user       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	mechanism  TEXT NOT NULL,
	salt       BLOB NOT NULL,
	iterations INTEGER NOT NULL,
	stored_key BLOB NOT NULL,
	server_key BLOB NOT NULL,
	PRIMARY KEY (user, mechanism)
) WITHOUT ROWID;

CREATE TABLE roster (
	user         TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	contact      TEXT NOT NULL,
	name         TEXT NOT NULL,
	subscription TEXT NOT NULL,
	pending_out  INTEGER NOT NULL,
	pending_in   INTEGER NOT NULL,
	approved     INTEGER NOT NULL,
	in_roster    INTEGER NOT NULL,
	-- JSON array of group names, in the user's order. Groups are only
	-- ever read and written with their item, so a child table would buy
	-- nothing but a join.
	group_names  TEXT NOT NULL DEFAULT '[]',
	PRIMARY KEY (user, contact)
) WITHOUT ROWID;

-- Database-wide counters. roster_version hands out roster versions: one
-- counter for all users means a version number is never issued twice, so a
-- client caching the roster of a deleted account cannot mistake the roster
-- of a new account with the same name for it.
CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO counters (name, value) VALUES ('roster_version', 0);

-- AUTOINCREMENT, not a plain rowid: a plain rowid reuses the highest
-- number once that row is deleted, and a reused seq could make a late
-- DeleteOffline from one session remove a message another session has not
-- delivered yet.
CREATE TABLE offline (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	stanza_id TEXT NOT NULL,
	sender    TEXT NOT NULL,
	stored    INTEGER NOT NULL, -- Unix microseconds, UTC
	data      BLOB NOT NULL
);
CREATE INDEX offline_user ON offline (user, seq);
CREATE INDEX offline_stored ON offline (stored);

CREATE TABLE last_activity (
	user   TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
	at     INTEGER NOT NULL, -- Unix microseconds, UTC
	status TEXT NOT NULL
) WITHOUT ROWID;
`,

	// 2: XEP-0357 push registrations and the built-in push gateway's
	// devices (docs/push.md). Options is a JSON object of the
	// publish-options fields.
	`
CREATE TABLE push_registrations (
	user     TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	service  TEXT NOT NULL,
	node     TEXT NOT NULL,
	resource TEXT NOT NULL,
	options  TEXT NOT NULL DEFAULT '{}',
	created  INTEGER NOT NULL, -- Unix microseconds, UTC
	PRIMARY KEY (user, service, node)
) WITHOUT ROWID;

CREATE TABLE push_devices (
	node        TEXT PRIMARY KEY,
	owner       TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	device_id   TEXT NOT NULL,
	provider    TEXT NOT NULL,
	token       TEXT NOT NULL,
	p256dh      BLOB NOT NULL,
	auth        BLOB NOT NULL,
	secret_hash BLOB NOT NULL,
	created     INTEGER NOT NULL -- Unix microseconds, UTC
) WITHOUT ROWID;
CREATE INDEX push_devices_owner ON push_devices (owner, created);
`,
}

// migrate brings the database up to len(steps) and returns the version it
// found. It is safe to run on every open and from several processes at
// once: each step reads the version and applies itself inside one
// BEGIN IMMEDIATE transaction, so a step runs exactly once.
func migrate(ctx context.Context, db *sql.DB, steps []string) (from int, err error) {
	// One connection throughout: with ":memory:" it is the only one, and
	// it keeps the steps strictly sequential.
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Close()

	if err := inTx(ctx, conn, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `
CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);
INSERT INTO schema_version (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version);`)
		return err
	}); err != nil {
		return 0, fmt.Errorf("creating schema_version: %w", err)
	}

	from = -1
	for {
		done := false
		err := inTx(ctx, conn, func(tx *sql.Tx) error {
			var v int
			if err := tx.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil {
				return fmt.Errorf("reading schema_version: %w", err)
			}
			if from < 0 {
				from = v
			}
			switch {
			case v > len(steps):
				// An older binary must not write to a schema it does not
				// know; it could violate constraints the newer one relies on.
				return fmt.Errorf("database schema version %d is newer than this program supports (%d); upgrade bluetick", v, len(steps))
			case v == len(steps):
				done = true
				return nil
			}
			if _, err := tx.ExecContext(ctx, steps[v]); err != nil {
				return fmt.Errorf("migration step %d: %w", v+1, err)
			}
			_, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1)
			return err
		})
		if err != nil {
			return from, err
		}
		if done {
			return from, nil
		}
	}
}

// inTx runs fn in a transaction on conn, committing if it returns nil.
func inTx(ctx context.Context, conn *sql.Conn, fn func(*sql.Tx) error) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}
