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

	// 2: message
	// archive (XEP-0313) with its preferences, blocklists (XEP-0191) and
	// the last-seen privacy setting.
	//
	// Archive order is (stored, seq): stored never goes backwards within
	// one user's archive (AppendArchive raises it to the latest), so the
	// index on (user, stored, seq) serves paging, start/end and the
	// after/before bounds as one range scan; the one on with_bare does the
	// same for a 'with' filter. AUTOINCREMENT so a seq is never reused.
	`
CREATE TABLE archive (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	id        TEXT NOT NULL,
	with_bare TEXT NOT NULL,
	with_full TEXT NOT NULL,
	stored    INTEGER NOT NULL, -- Unix microseconds, UTC
	data      BLOB NOT NULL
);
CREATE UNIQUE INDEX archive_user_id ON archive (user, id);
CREATE INDEX archive_user_stored ON archive (user, stored, seq);
CREATE INDEX archive_user_with ON archive (user, with_bare, stored, seq);
CREATE INDEX archive_stored ON archive (stored);

CREATE TABLE archive_prefs (
	user         TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
	default_mode TEXT NOT NULL,
	always_jids  TEXT NOT NULL, -- JSON array
	never_jids   TEXT NOT NULL  -- JSON array
) WITHOUT ROWID;

CREATE TABLE blocklist (
	user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	jid  TEXT NOT NULL,
	PRIMARY KEY (user, jid)
) WITHOUT ROWID;

CREATE TABLE privacy (
	user      TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
	last_seen TEXT NOT NULL
) WITHOUT ROWID;
`,

	// 3: personal eventing
	// (XEP-0163) nodes and items, private XML (XEP-0049), vcard-temp
	// (XEP-0054) and the entity capabilities cache (XEP-0115).
	`
CREATE TABLE pep_nodes (
	user   TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	node   TEXT NOT NULL,
	config BLOB NOT NULL, -- JSON, owned by package pep
	PRIMARY KEY (user, node)
) WITHOUT ROWID;

-- seq orders items by publication: a republished id gets a new seq.
CREATE TABLE pep_items (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	user      TEXT NOT NULL,
	node      TEXT NOT NULL,
	item_id   TEXT NOT NULL,
	publisher TEXT NOT NULL,
	published INTEGER NOT NULL, -- Unix microseconds, UTC
	payload   BLOB NOT NULL,
	FOREIGN KEY (user, node) REFERENCES pep_nodes (user, node) ON DELETE CASCADE
);
CREATE UNIQUE INDEX pep_items_id ON pep_items (user, node, item_id);
CREATE INDEX pep_items_order ON pep_items (user, node, seq);

CREATE TABLE private_xml (
	user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	ns   TEXT NOT NULL,
	data BLOB NOT NULL,
	PRIMARY KEY (user, ns)
) WITHOUT ROWID;

CREATE TABLE vcards (
	user TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
	data BLOB NOT NULL
) WITHOUT ROWID;

-- Verified XEP-0115 hashes: a hash names its disco#info for ever.
CREATE TABLE caps (
	key  TEXT PRIMARY KEY,
	info BLOB NOT NULL
) WITHOUT ROWID;
`,

	// 4: group chats (XEP-0045 rooms of the MUC service, package muc).
	//
	// Rooms do not reference users: affiliations name bare JIDs that need
	// not be accounts, and rooms outlive their members' accounts.
	`
CREATE TABLE rooms (
	jid          TEXT PRIMARY KEY,
	config       BLOB NOT NULL, -- JSON, owned by package muc
	subject      TEXT NOT NULL,
	subject_from TEXT NOT NULL,
	created      INTEGER NOT NULL -- Unix microseconds, UTC
) WITHOUT ROWID;

CREATE TABLE room_affiliations (
	room        TEXT NOT NULL REFERENCES rooms(jid) ON DELETE CASCADE,
	jid         TEXT NOT NULL,
	affiliation TEXT NOT NULL,
	nick        TEXT NOT NULL,
	reason      TEXT NOT NULL,
	PRIMARY KEY (room, jid)
) WITHOUT ROWID;
CREATE INDEX room_affiliations_jid ON room_affiliations (jid);

-- AUTOINCREMENT for the same reason as offline.seq: a seq is never reused.
CREATE TABLE room_archive (
	seq       INTEGER PRIMARY KEY AUTOINCREMENT,
	room      TEXT NOT NULL REFERENCES rooms(jid) ON DELETE CASCADE,
	stanza_id TEXT NOT NULL,
	sender    TEXT NOT NULL,
	nick      TEXT NOT NULL,
	stored    INTEGER NOT NULL, -- Unix microseconds, UTC
	data      BLOB NOT NULL
);
CREATE INDEX room_archive_room ON room_archive (room, seq);
CREATE UNIQUE INDEX room_archive_id ON room_archive (room, stanza_id);
CREATE INDEX room_archive_stored ON room_archive (stored);

CREATE TABLE room_invites (
	token   TEXT PRIMARY KEY,
	room    TEXT NOT NULL REFERENCES rooms(jid) ON DELETE CASCADE,
	creator TEXT NOT NULL,
	created INTEGER NOT NULL -- Unix microseconds, UTC
) WITHOUT ROWID;
CREATE INDEX room_invites_room ON room_invites (room, created);

CREATE TABLE muc_secret (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	secret BLOB NOT NULL
);
`,

	// 5: XEP-0357 push registrations and the built-in push gateway's
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

	// 6: login outcomes per account (store.Logins): failures since the
	// last success for the owner and the operator, the per-account login
	// throttle's streak, and the addresses the account logged in from.
	`
CREATE TABLE login_stats (
	user              TEXT PRIMARY KEY REFERENCES users(name) ON DELETE CASCADE,
	failed            INTEGER NOT NULL DEFAULT 0,
	last_failure      INTEGER NOT NULL DEFAULT 0, -- Unix microseconds, UTC; 0 = none
	last_failure_addr TEXT NOT NULL DEFAULT '',
	last_success      INTEGER NOT NULL DEFAULT 0,
	last_success_addr TEXT NOT NULL DEFAULT '',
	streak            INTEGER NOT NULL DEFAULT 0,
	streak_last       INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

CREATE TABLE login_known (
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	prefix    TEXT NOT NULL,
	last_seen INTEGER NOT NULL, -- Unix microseconds, UTC
	PRIMARY KEY (user, prefix)
) WITHOUT ROWID;
`,

	// 7: XEP-0484 (FAST) login tokens (store.FastTokens, package fast).
	// hash is SHA-256 of the token, never the token itself; the primary
	// key is per user because a login names its user and then tries that
	// user's few tokens. revoked rows stay (so the holder can be told
	// why) until the sweeper removes them with the expired ones.
	`
CREATE TABLE fast_tokens (
	user          TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	hash          BLOB NOT NULL,
	agent_id      TEXT NOT NULL,
	mechanism     TEXT NOT NULL,
	software      TEXT NOT NULL DEFAULT '',
	device        TEXT NOT NULL DEFAULT '',
	created       INTEGER NOT NULL, -- Unix microseconds, UTC
	expires       INTEGER NOT NULL,
	last_used     INTEGER NOT NULL DEFAULT 0, -- 0: never used
	last_count    INTEGER NOT NULL DEFAULT 0,
	revoked       INTEGER NOT NULL DEFAULT 0, -- 0: live
	revoke_reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (user, hash)
) WITHOUT ROWID;
CREATE INDEX fast_tokens_expires ON fast_tokens (expires);
`,

	// 8: the client installations that logged in to each
	// account with SASL2 (store.UserAgents, XEP-0388 <user-agent/>).
	`
CREATE TABLE user_agents (
	user      TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
	id        TEXT NOT NULL, -- the client's installation id (a UUID)
	software  TEXT NOT NULL,
	device    TEXT NOT NULL,
	last_seen INTEGER NOT NULL, -- Unix microseconds, UTC
	last_addr TEXT NOT NULL,
	PRIMARY KEY (user, id)
) WITHOUT ROWID;
`,

	// 9: disabled accounts (store.Disabling, XEP-0133 disable-user):
	// they keep their data and cannot log in.
	`
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
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
