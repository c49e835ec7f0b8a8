package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations is the schema history, oldest first. Step i (0-based) takes
// the schema from version i to version i+1; schema_version holds the number
// of steps applied. Steps are append-only: once released, a step is never
// edited, because databases in the field have already run it. To change the
// schema, add a step. A step may hold several statements (it is sent with
// the simple query protocol) and runs in one transaction with the version
// bump; PostgreSQL's DDL is transactional, so a failed step leaves nothing
// behind.
//
// Objects are created unqualified, in the first schema of the connection's
// search_path, so one database can hold several independent stores (the
// tests use a schema per test).
var migrations = []string{
	// 1: initial schema, the same tables as the SQLite store's.
	`
CREATE TABLE users (
	name           TEXT COLLATE "C" PRIMARY KEY,
	-- Current roster version (RFC 6121 §2.6), taken from the
	-- roster_version sequence on every roster change.
	roster_version BIGINT NOT NULL DEFAULT 0
);

-- Hands out roster versions: one counter for all users means a version
-- number is never issued twice, so a client caching the roster of a deleted
-- account cannot mistake the roster of a new account with the same name for
-- it. A sequence rather than a counter row, so that roster changes of
-- different users never wait for each other. CACHE must stay 1: with a
-- per-session cache, two nodes would hand out numbers out of order.
CREATE SEQUENCE roster_version AS BIGINT CACHE 1;

CREATE TABLE credentials (
	username   TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	mechanism  TEXT COLLATE "C" NOT NULL,
	salt       BYTEA NOT NULL,
	iterations INTEGER NOT NULL,
	stored_key BYTEA NOT NULL,
	server_key BYTEA NOT NULL,
	PRIMARY KEY (username, mechanism)
);

CREATE TABLE roster (
	username     TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	contact      TEXT COLLATE "C" NOT NULL,
	name         TEXT NOT NULL,
	subscription TEXT NOT NULL,
	pending_out  BOOLEAN NOT NULL,
	pending_in   BOOLEAN NOT NULL,
	approved     BOOLEAN NOT NULL,
	in_roster    BOOLEAN NOT NULL,
	-- Group names in the user's order. Groups are only ever read and
	-- written with their item, so a child table would buy nothing but a
	-- join.
	groups       TEXT[] NOT NULL DEFAULT '{}',
	PRIMARY KEY (username, contact)
);

-- seq comes from an identity sequence, which never hands out a number
-- twice, even after the row is deleted or its transaction rolled back: a
-- reused seq could make a late DeleteOffline from one session remove a
-- message another session has not delivered yet. Per user, seqs increase in
-- commit order because StoreOffline takes the user's row lock before the
-- insert draws its number. CACHE must stay 1, as for roster_version.
CREATE TABLE offline (
	seq       BIGINT GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
	username  TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	stanza_id TEXT NOT NULL,
	sender    TEXT NOT NULL,
	stored    TIMESTAMPTZ NOT NULL,
	data      BYTEA NOT NULL
);
-- Listing, counting and deleting a user's messages, in seq order.
CREATE INDEX offline_user ON offline (username, seq);
-- ExpireOffline.
CREATE INDEX offline_stored ON offline (stored);

CREATE TABLE last_activity (
	username TEXT COLLATE "C" PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
	at       TIMESTAMPTZ NOT NULL,
	status   TEXT NOT NULL
);
`,

	// 2: users.offline_count, the number of rows of offline each user has,
	// kept by every statement that adds or removes them, under the user's
	// row lock, so that the quota check is one comparison rather than a
	// count of up to the quota's (default 10,000) rows on every message
	// stored. Counted here for the messages already stored; the table
	// lock keeps other nodes from storing or deleting messages between the
	// count and the commit. Nodes still running the previous version
	// during a rolling upgrade do not keep the count; ExpireOffline
	// recounts every user it expires messages of.
	`
LOCK TABLE users, offline IN SHARE ROW EXCLUSIVE MODE;
ALTER TABLE users ADD COLUMN offline_count BIGINT NOT NULL DEFAULT 0;
UPDATE users u SET offline_count = c.n
FROM (SELECT username, count(*) AS n FROM offline GROUP BY username) c
WHERE u.name = c.username;
`,

	// 3: message
	// archive (XEP-0313) with its preferences, blocklists (XEP-0191) and
	// the last-seen privacy setting, as in the SQLite store.
	//
	// Archive order is (stored, seq): AppendArchive raises stored to the
	// archive's latest under the user's row lock, so it never goes
	// backwards within one archive, and the index on (username, stored,
	// seq) serves paging, start/end and after/before bounds as one range
	// scan; the one on with_bare does the same for a 'with' filter.
	`
CREATE TABLE archive (
	seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username  TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	id        TEXT COLLATE "C" NOT NULL,
	with_bare TEXT COLLATE "C" NOT NULL,
	with_full TEXT COLLATE "C" NOT NULL,
	stored    TIMESTAMPTZ NOT NULL,
	data      BYTEA NOT NULL
);
CREATE UNIQUE INDEX archive_user_id ON archive (username, id);
CREATE INDEX archive_user_stored ON archive (username, stored, seq);
CREATE INDEX archive_user_with ON archive (username, with_bare, stored, seq);
CREATE INDEX archive_stored ON archive (stored);

CREATE TABLE archive_prefs (
	username     TEXT COLLATE "C" PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
	default_mode TEXT NOT NULL,
	always_jids  TEXT[] NOT NULL,
	never_jids   TEXT[] NOT NULL
);

CREATE TABLE blocklist (
	username TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	jid      TEXT COLLATE "C" NOT NULL,
	PRIMARY KEY (username, jid)
);

CREATE TABLE privacy (
	username  TEXT COLLATE "C" PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
	last_seen TEXT NOT NULL
);
`,

	// 4: personal eventing
	// (XEP-0163) nodes and items, private XML (XEP-0049), vcard-temp
	// (XEP-0054) and the entity capabilities cache (XEP-0115).
	`
CREATE TABLE pep_nodes (
	username TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	node     TEXT COLLATE "C" NOT NULL,
	config   BYTEA NOT NULL, -- JSON, owned by package pep
	PRIMARY KEY (username, node)
);

-- seq orders items by publication: a republished id gets a new seq.
CREATE TABLE pep_items (
	seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	username  TEXT COLLATE "C" NOT NULL,
	node      TEXT COLLATE "C" NOT NULL,
	item_id   TEXT COLLATE "C" NOT NULL,
	publisher TEXT NOT NULL,
	published TIMESTAMPTZ NOT NULL,
	payload   BYTEA NOT NULL,
	FOREIGN KEY (username, node) REFERENCES pep_nodes (username, node) ON DELETE CASCADE
);
CREATE UNIQUE INDEX pep_items_id ON pep_items (username, node, item_id);
CREATE INDEX pep_items_order ON pep_items (username, node, seq);

CREATE TABLE private_xml (
	username TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	ns       TEXT COLLATE "C" NOT NULL,
	data     BYTEA NOT NULL,
	PRIMARY KEY (username, ns)
);

CREATE TABLE vcards (
	username TEXT COLLATE "C" PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
	data     BYTEA NOT NULL
);

-- Verified XEP-0115 hashes: a hash names its disco#info for ever.
CREATE TABLE caps (
	key  TEXT COLLATE "C" PRIMARY KEY,
	info BYTEA NOT NULL
);
`,

	// 5: group chats (XEP-0045 rooms of the MUC service, package muc),
	// the same tables as the SQLite store's step 4. Rooms do not reference
	// users: affiliations name bare JIDs that need not be accounts.
	`
CREATE TABLE rooms (
	jid          TEXT COLLATE "C" PRIMARY KEY,
	config       BYTEA NOT NULL, -- JSON, owned by package muc
	subject      TEXT NOT NULL,
	subject_from TEXT NOT NULL,
	created      TIMESTAMPTZ NOT NULL
);

CREATE TABLE room_affiliations (
	room        TEXT COLLATE "C" NOT NULL REFERENCES rooms (jid) ON DELETE CASCADE,
	jid         TEXT COLLATE "C" NOT NULL,
	affiliation TEXT NOT NULL,
	nick        TEXT NOT NULL,
	reason      TEXT NOT NULL,
	PRIMARY KEY (room, jid)
);
CREATE INDEX room_affiliations_jid ON room_affiliations (jid);

-- An identity never hands out a number twice (see offline.seq).
CREATE TABLE room_archive (
	seq       BIGINT GENERATED ALWAYS AS IDENTITY (CACHE 1) PRIMARY KEY,
	room      TEXT COLLATE "C" NOT NULL REFERENCES rooms (jid) ON DELETE CASCADE,
	stanza_id TEXT COLLATE "C" NOT NULL,
	sender    TEXT COLLATE "C" NOT NULL,
	nick      TEXT NOT NULL,
	stored    TIMESTAMPTZ NOT NULL,
	data      BYTEA NOT NULL
);
CREATE INDEX room_archive_room ON room_archive (room, seq);
CREATE UNIQUE INDEX room_archive_id ON room_archive (room, stanza_id);
CREATE INDEX room_archive_stored ON room_archive (stored);

CREATE TABLE room_invites (
	token   TEXT COLLATE "C" PRIMARY KEY,
	room    TEXT COLLATE "C" NOT NULL REFERENCES rooms (jid) ON DELETE CASCADE,
	creator TEXT NOT NULL,
	created TIMESTAMPTZ NOT NULL
);
CREATE INDEX room_invites_room ON room_invites (room, created);

CREATE TABLE muc_secret (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	secret BYTEA NOT NULL
);
`,

	// 6: XEP-0357 push registrations and the built-in push gateway's
	// devices (docs/push.md), the same tables as the SQLite store's.
	`
CREATE TABLE push_registrations (
	username TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	service  TEXT COLLATE "C" NOT NULL,
	node     TEXT COLLATE "C" NOT NULL,
	resource TEXT NOT NULL,
	options  JSONB NOT NULL DEFAULT '{}',
	created  TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (username, service, node)
);

CREATE TABLE push_devices (
	node        TEXT COLLATE "C" PRIMARY KEY,
	owner       TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	device_id   TEXT NOT NULL,
	provider    TEXT NOT NULL,
	token       TEXT NOT NULL,
	p256dh      BYTEA NOT NULL,
	auth        BYTEA NOT NULL,
	secret_hash BYTEA NOT NULL,
	created     TIMESTAMPTZ NOT NULL
);
CREATE INDEX push_devices_owner ON push_devices (owner, created);
`,

	// 7: login outcomes per account (store.Logins), the same tables as
	// the SQLite store's step 6. Every node's login throttle reads
	// login_stats.streak, so the per-account limit holds for the cluster.
	`
CREATE TABLE login_stats (
	username          TEXT COLLATE "C" PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE,
	failed            INTEGER NOT NULL DEFAULT 0,
	last_failure      TIMESTAMPTZ,
	last_failure_addr TEXT NOT NULL DEFAULT '',
	last_success      TIMESTAMPTZ,
	last_success_addr TEXT NOT NULL DEFAULT '',
	streak            INTEGER NOT NULL DEFAULT 0,
	streak_last       TIMESTAMPTZ
);

CREATE TABLE login_known (
	username  TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	prefix    TEXT COLLATE "C" NOT NULL,
	last_seen TIMESTAMPTZ NOT NULL,
	PRIMARY KEY (username, prefix)
);
`,

	// 8: XEP-0484 (FAST) login tokens (store.FastTokens, package fast),
	// the same table as the SQLite store's step 7. Shared by every node,
	// so a token issued by one node logs in on any of them.
	`
CREATE TABLE fast_tokens (
	username      TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	hash          BYTEA NOT NULL,
	agent_id      TEXT COLLATE "C" NOT NULL,
	mechanism     TEXT NOT NULL,
	software      TEXT NOT NULL DEFAULT '',
	device        TEXT NOT NULL DEFAULT '',
	created       TIMESTAMPTZ NOT NULL,
	expires       TIMESTAMPTZ NOT NULL,
	last_used     TIMESTAMPTZ,            -- NULL: never used
	last_count    BIGINT NOT NULL DEFAULT 0,
	revoked       TIMESTAMPTZ,            -- NULL: live
	revoke_reason TEXT NOT NULL DEFAULT '',
	PRIMARY KEY (username, hash)
);
CREATE INDEX fast_tokens_expires ON fast_tokens (expires);
`,

	// 9: the client installations that logged in to each
	// account with SASL2 (store.UserAgents), the same table as the SQLite
	// store's step 8.
	`
CREATE TABLE user_agents (
	username  TEXT COLLATE "C" NOT NULL REFERENCES users (name) ON DELETE CASCADE,
	id        TEXT COLLATE "C" NOT NULL,
	software  TEXT NOT NULL,
	device    TEXT NOT NULL,
	last_seen TIMESTAMPTZ NOT NULL,
	last_addr TEXT NOT NULL,
	PRIMARY KEY (username, id)
);
`,

	// 10: disabled accounts (store.Disabling), as the SQLite store's step 9.
	`
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false;
`,
}

// migrateLockClass is the first key of the advisory lock that serialises
// migrations ("blue" in ASCII); the second is a hash of the schema name, so
// stores in different schemas of one database do not wait for each other.
const migrateLockClass = 0x626c7565

// migrate brings the schema up to len(steps) and returns the version it
// found. It is safe to run on every start and from several nodes at once.
//
// Each step is one transaction that first takes a transaction-scoped
// advisory lock (pg_advisory_xact_lock): concurrent nodes queue on it, and
// whoever gets it next re-reads schema_version, so every step runs exactly
// once. Being transaction-scoped, the lock is released by the commit or
// rollback, or when a node dies mid-step and its connection drops, so it
// can never be left held. Without the lock, two nodes would both see
// version 0 and both run CREATE TABLE, and one would fail.
func migrate(ctx context.Context, pool *pgxpool.Pool, steps []string) (from int, err error) {
	// One connection throughout keeps the steps strictly sequential.
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, err
	}
	defer conn.Release()

	from = -1
	for {
		done := false
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))`, int32(migrateLockClass)); err != nil {
				return fmt.Errorf("taking the migration lock: %w", err)
			}
			if from < 0 {
				// Under the lock, so concurrent first starts do not race
				// on creating it.
				if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)`); err != nil {
					return fmt.Errorf("creating schema_version: %w", err)
				}
				if _, err := tx.Exec(ctx, `INSERT INTO schema_version (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM schema_version)`); err != nil {
					return fmt.Errorf("creating schema_version: %w", err)
				}
			}
			var v int
			if err := tx.QueryRow(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil {
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
			if _, err := tx.Exec(ctx, steps[v]); err != nil {
				return fmt.Errorf("migration step %d: %w", v+1, err)
			}
			_, err := tx.Exec(ctx, `UPDATE schema_version SET version = $1`, v+1)
			return err
		})
		if err != nil {
			return max(from, 0), err
		}
		if done {
			return from, nil
		}
	}
}
