// Package postgres is the store.Store for cluster mode: every node of a
// cluster opens the same PostgreSQL database, so accounts, rosters and
// offline messages are shared. It uses pgx (github.com/jackc/pgx/v5)
// directly, not database/sql, for its connection pool, binary encoding and
// pipelined batches.
//
// # Round trips
//
// A node talks to the database over the network, so the number of round
// trips per call matters more than anything the server does. A call that
// needs several statements sends them as one pgx.Batch: the statements go
// out together, pipelined, and the server runs everything up to the batch's
// Sync as one implicit transaction, committed at the Sync (or rolled back
// if any statement fails). So every call is one round trip, except
// ExpireOffline (one per hundred users with expired messages). Statements
// go through pgx's per-connection statement cache
// (QueryExecModeCacheStatement), so each is parsed and planned once per
// connection (one extra round trip, the first time) and then only bound
// and executed.
//
// # Concurrency across nodes
//
// Nothing in-process can serialise the nodes, so every read-modify-write
// first takes a row lock on the user's row in users (SELECT ... FOR NO KEY
// UPDATE), usually as the first statement of its transaction. Under READ
// COMMITTED each later statement of that transaction takes a fresh snapshot
// after the lock is granted, so it sees everything committed by whoever
// held the lock before. That makes the offline quota check-and-insert
// atomic, makes each user's offline Seqs increase in commit order (a
// drainer never sees Seq 7 and then a later-committed 6), and keeps roster
// versions increasing per user. FOR NO KEY UPDATE rather than FOR UPDATE: it excludes the other
// writers of the same user and DeleteUser, but not the FOR KEY SHARE locks
// that foreign-key checks take, so inserts into other tables for the user
// do not queue behind it.
//
// Lock order: a transaction locks users rows (several only in name order)
// before it touches any of their offline rows, never the other way round,
// so writers on different nodes can wait for each other but never
// deadlock. That order is also what keeps users.offline_count, the number
// of messages each user holds, exact: the quota check compares it instead
// of counting up to quota rows for every message stored.
//
// # Durability
//
// StoreOffline's caller acknowledges the message to its sender once it
// returns, so the commit must be on disk by then. That is PostgreSQL's
// default, synchronous_commit=on; a database or role may have it turned off,
// so Open sets it back to on for its own sessions unless the DSN itself
// names a synchronous_commit value (say remote_apply, for a replicated
// setup, or off for a throwaway test server).
//
// # Data
//
// Names (users, contacts, mechanisms) are TEXT COLLATE "C": equality is
// byte equality and ORDER BY is byte order, the order of Go's sort.Strings,
// whatever the database's default locale. Times are TIMESTAMPTZ, which
// PostgreSQL keeps as microseconds since 2000-01-01 UTC; pgx truncates a
// time.Time to the microsecond, as the SQLite store does, and times are
// returned in UTC. TEXT columns cannot hold NUL or invalid UTF-8; every
// string stored comes from XML (stanza ids, JIDs, roster names, status
// texts), which cannot contain either. Message payloads are BYTEA and may
// hold any bytes.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"bluetick/internal/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store in one PostgreSQL database (or one schema of it,
// chosen by search_path in the DSN). It is safe for concurrent use, and any
// number of Stores, in any number of processes, may share the database.
type Store struct {
	pool *pgxpool.Pool
	// migratedFrom is the schema version Open found (for tests: with
	// several nodes starting at once exactly one sees 0).
	migratedFrom int

	closeOnce sync.Once
}

// Options tunes the connection pool. The zero value is the recommended
// setting; a zero field means "the default", which a pool_max_conns,
// pool_min_conns or pool_max_conn_lifetime parameter in the DSN may set
// instead (a non-zero field wins over the DSN).
type Options struct {
	// MaxConns is the most connections the node opens. Default
	// max(4, 2×GOMAXPROCS): every call holds a connection only for its
	// round trip (plus the commit's WAL flush for writes), so a few per
	// CPU keep the node busy, and more would mostly use up the server's
	// max_connections (100 by default), which all nodes of a cluster
	// share.
	MaxConns int32
	// MinConns is how many connections are kept open even when idle.
	// Default 0: connections open on demand and close after 30 idle
	// minutes. Set it to avoid the connection setup (TCP, TLS,
	// authentication) on the first calls after a quiet period.
	MinConns int32
	// MaxConnLifetime is how long a connection is used before it is
	// replaced. Default 1 hour (with up to 10% random extra, so the pool
	// does not reconnect all at once). Recycling returns the memory a
	// long-lived server backend accumulates and spreads connections again
	// after a failover or a change of the address behind a DNS name.
	MaxConnLifetime time.Duration
}

// Open connects to the database at dsn, a libpq connection string in URL
// (postgres://user:pass@host:5432/db?sslmode=verify-full) or keyword/value
// (host=... dbname=...) form, and brings the schema up to date. Unset
// parameters come from the PG* environment variables, as with libpq.
//
// Several nodes may open the same database at once: the schema migration
// runs under an advisory lock, so it is applied exactly once. ctx bounds the
// connection and the migration; the Store is not tied to it.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := poolConfig(dsn, opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	s := &Store{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	from, err := migrate(ctx, pool, migrations)
	if err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: migrating the schema: %w", err)
	}
	s.migratedFrom = from
	return s, nil
}

// poolConfig parses dsn and applies opts and the defaults.
func poolConfig(dsn string, opts Options) (*pgxpool.Config, error) {
	if opts.MaxConns < 0 || opts.MinConns < 0 || opts.MaxConnLifetime < 0 {
		return nil, errors.New("postgres: negative pool option")
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgconn's ParseConfigError redacts the password.
		return nil, fmt.Errorf("postgres: %w", err)
	}
	// The pool_* parameters are gone from cfg once parsed, so ask the DSN
	// itself whether they were given.
	switch {
	case opts.MaxConns > 0:
		cfg.MaxConns = opts.MaxConns
	case !strings.Contains(dsn, "pool_max_conns"):
		cfg.MaxConns = max(4, 2*int32(runtime.GOMAXPROCS(0)))
	}
	if opts.MinConns > 0 {
		cfg.MinConns = opts.MinConns
	}
	if cfg.MinConns > cfg.MaxConns {
		return nil, fmt.Errorf("postgres: MinConns %d above MaxConns %d", cfg.MinConns, cfg.MaxConns)
	}
	switch {
	case opts.MaxConnLifetime > 0:
		cfg.MaxConnLifetime = opts.MaxConnLifetime
	case !strings.Contains(dsn, "pool_max_conn_lifetime"):
		cfg.MaxConnLifetime = time.Hour
	}
	if !strings.Contains(dsn, "pool_max_conn_lifetime_jitter") {
		cfg.MaxConnLifetimeJitter = cfg.MaxConnLifetime / 10
	}

	rp := cfg.ConnConfig.RuntimeParams
	if _, ok := rp["synchronous_commit"]; !ok {
		rp["synchronous_commit"] = "on" // see the package doc
	}
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "bluetick" // shows in pg_stat_activity
	}
	// The default, stated because the package relies on it: the statement
	// cache makes hot statements parse once per connection.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheStatement
	return cfg, nil
}

// Close closes the pool, waiting for calls in progress to return their
// connections. Closing again is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(s.pool.Close)
	return nil
}

// PostgreSQL error codes (SQLSTATE) mapped to the store's errors.
const (
	codeUniqueViolation     = "23505"
	codeForeignKeyViolation = "23503"
)

// wrap prefixes err with what failed and, if it is a PostgreSQL error with
// a meaning for callers, adds the matching store error: a unique violation
// is ErrExists; a foreign-key violation can only be a write for a user who
// does not exist (or was deleted while the write ran), so it is
// ErrNotFound.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	what := fmt.Sprintf(format, args...)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			return fmt.Errorf("postgres: %s: %w (%w)", what, store.ErrExists, err)
		case codeForeignKeyViolation:
			return fmt.Errorf("postgres: %s: %w (%w)", what, store.ErrNotFound, err)
		}
	}
	return fmt.Errorf("postgres: %s: %w", what, err)
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("postgres: "+format+": %w", append(args, store.ErrNotFound)...)
}

// nonNil turns a nil slice into an empty one: pgx sends nil as NULL, which
// the NOT NULL columns refuse.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// lockUser is the first statement of most transactions that read and then
// write a user's data (see the package doc). It returns one row if the user
// exists, none otherwise.
const lockUser = `SELECT 1 FROM users WHERE name = $1 FOR NO KEY UPDATE`

// lockedRow reads the result of lockUser from br: whether the user exists.
func lockedRow(br pgx.BatchResults) (bool, error) {
	var one int
	err := br.QueryRow().Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// closeBatch closes br and returns the first error of err and Close's. Close
// reads up to the batch's ReadyForQuery, so a nil result also means the
// implicit transaction committed (and, with synchronous_commit=on, was
// flushed).
func closeBatch(br pgx.BatchResults, err error) error {
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// utc returns t in UTC; pgx returns timestamptz in the local zone.
func utc(t time.Time) time.Time { return t.UTC() }
