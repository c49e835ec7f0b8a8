// Package sqlite is the embedded store.Store: one database file next to the
// server, no separate service to run. It uses modernc.org/sqlite, a pure-Go
// translation of SQLite, so `go run` and cross-compiling work without a C
// toolchain.
//
// # Durability
//
// The database runs in WAL mode with synchronous=FULL. The server
// acknowledges a message to its sender (and drops it from the sender's
// XEP-0198 queue) as soon as StoreOffline returns, so from then on the
// database is the only copy. With synchronous=NORMAL, WAL mode stays
// consistent but a power loss or kernel crash can roll back the last
// transactions that reported success; FULL fsyncs the WAL on every commit,
// so a committed message survives. The price is one fsync per write
// transaction, which bounds write throughput on slow disks (see
// BenchmarkStoreOffline). OpenBulk is the exception, for loads that can
// simply be run again (bluetick import): NORMAL, and one sync at Close.
//
// # Concurrency
//
// SQLite admits one writer at a time. All writes of a Store go through a
// one-slot semaphore in Go, so they queue fairly in-process instead of
// spinning in SQLite's busy handler, whose sleeps of up to 100 ms would
// dominate latency under load. Reads do not take the semaphore: in WAL mode
// they run concurrently with each other and with the writer on the other
// connections of the pool. Write transactions begin with BEGIN IMMEDIATE
// (_txlock=immediate), taking the write lock up front, so a transaction
// never fails halfway through upgrading a read lock; busy_timeout covers
// the remaining contention from other processes, such as `bluetick user`
// run while the server is up.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"bluetick/internal/store"
)

var _ store.Store = (*Store)(nil)

// Store is a store.Store in one SQLite database. It is safe for concurrent
// use.
type Store struct {
	db *sql.DB
	// wsem serialises write transactions (see the package doc).
	wsem chan struct{}
	bulk bool // opened by OpenBulk: commits not synced, Close checkpoints

	// Group commit (groupcommit.go) of the writes made once per message:
	// offline messages, archived messages and room archive messages.
	offlineGC groupCommit[*offlineReq]
	archiveGC groupCommit[*archiveReq]
	roomGC    groupCommit[*roomArchiveReq]
	fastUseGC groupCommit[*fastUseReq]      // token logins that write (fast.go)
	lastGC    groupCommit[*lastActivityReq] // sessions ending (users.go)

	// Prepared statements for the hot paths: one offline message is
	// stored, listed and deleted per message routed to an offline user,
	// and Credential runs on every login.
	stmtStoreOffline *sql.Stmt
	stmtUserExists   *sql.Stmt
	stmtOffline      *sql.Stmt
	stmtDeleteOne    *sql.Stmt
	stmtCredential   *sql.Stmt
	// ApplyOffline's statements (batch.go).
	stmtBatchQuota  *sql.Stmt
	stmtBatchInsert *sql.Stmt // insertChunk rows
	stmtBatchOne    *sql.Stmt
	stmtBatchUsers  *sql.Stmt
	stmtBatchDelete *sql.Stmt
	// A token login's (fast.go): the read runs on every one, the writes
	// when it has something to record.
	stmtFastTokens     *sql.Stmt
	stmtFastUseGet     *sql.Stmt
	stmtFastUse        *sql.Stmt
	stmtFastSupersede  *sql.Stmt
	stmtFastInvalidate *sql.Stmt
	stmtLoginStats     *sql.Stmt // every password login (logins.go)
	stmtLoginKnown     *sql.Stmt
	stmtRosterVersion  *sql.Stmt // a new session's roster reads (roster.go)
	stmtRosterItems    *sql.Stmt
	stmts              []*sql.Stmt // all of the above, for Close

	closeOnce sync.Once
	closeErr  error
}

// busyTimeout is how long a statement waits for a lock held by another
// process before failing with SQLITE_BUSY. Within one process writes
// never wait on it (they queue on wsem).
const busyTimeout = 10 * time.Second

// Open opens the database at path, creating it if needed, and brings its
// schema up to date. path is a file name; ":memory:" gives a private
// in-memory database (for tests; it is lost on Close).
func Open(path string) (*Store, error) { return open(path, false) }

// OpenBulk opens the database for a load that is safe to repeat, with no
// server running (bluetick import): commits are not synced one by one
// (synchronous=NORMAL: the database stays consistent, a crash can only
// lose the last commits, and the load is run again), and Close moves the
// WAL into the database file and syncs it. An import of 2,000 accounts
// with 10 contacts each took 4.4 s instead of 10.5 (docs/operations.md).
func OpenBulk(path string) (*Store, error) { return open(path, true) }

func open(path string, bulk bool) (*Store, error) {
	if path == "" {
		// SQLite would give each pool connection its own temporary database.
		return nil, errors.New("sqlite: empty database path")
	}
	memory := path == ":memory:"
	db, err := sql.Open("sqlite", dsn(path, bulk))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %w", err)
	}
	if memory {
		// Each connection to ":memory:" is a separate database, so there
		// must be exactly one, and it must never be closed while idle.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
	} else {
		// One connection is the writer at any moment; the others serve
		// concurrent readers. Keep them all idle rather than closing them,
		// so their prepared statements and page caches stay warm.
		n := max(4, runtime.GOMAXPROCS(0)+1)
		db.SetMaxOpenConns(n)
		db.SetMaxIdleConns(n)
	}
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)

	s := &Store{db: db, wsem: make(chan struct{}, 1), bulk: bulk}
	s.offlineGC = groupCommit[*offlineReq]{apply: s.storeOne, failed: func(r *offlineReq, err error) { r.err, r.seq = err, 0 }}
	s.fastUseGC = groupCommit[*fastUseReq]{apply: s.useFast, failed: func(r *fastUseReq, err error) { r.err = err }}
	s.archiveGC = groupCommit[*archiveReq]{apply: s.appendOne, failed: func(r *archiveReq, err error) { r.err = err }}
	s.roomGC = groupCommit[*roomArchiveReq]{apply: archiveOne, failed: func(r *roomArchiveReq, err error) { r.err, r.seq = err, 0 }}
	s.lastGC = groupCommit[*lastActivityReq]{apply: setLastActivity, failed: func(r *lastActivityReq, err error) { r.err = err }}
	if err := s.init(memory); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	return s, nil
}

// dsn builds the driver's data source name. The pragmas are in the DSN,
// not run once after Open, because busy_timeout, foreign_keys and
// synchronous are per connection and the pool opens connections lazily.
func dsn(path string, bulk bool) string {
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	params.Add("_pragma", "foreign_keys(1)")
	params.Add("_pragma", "journal_mode(WAL)")
	if bulk {
		params.Add("_pragma", "synchronous(NORMAL)")
	} else {
		params.Add("_pragma", "synchronous(FULL)")
	}
	params.Set("_txlock", "immediate")
	q := params.Encode()
	if path == ":memory:" {
		return path + "?" + q
	}
	// As a file: URI, so that a '?' or '#' in the path is not taken for
	// the start of the parameters; SQLite decodes %XX in the path.
	return "file:" + escapePath(path) + "?" + q
}

func (s *Store) init(memory bool) error {
	ctx := context.Background()
	if !memory {
		// journal_mode=WAL silently stays in the old mode where WAL is not
		// possible (e.g. a file system without shared memory). Then readers
		// would block the writer; refuse rather than run degraded.
		var mode string
		if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
			return err
		}
		if !strings.EqualFold(mode, "wal") {
			return fmt.Errorf("journal_mode is %q, not WAL (is the file on a local file system?)", mode)
		}
	}
	if _, err := migrate(ctx, s.db, migrations); err != nil {
		return err
	}
	for _, p := range []struct {
		st  **sql.Stmt
		sql string
	}{
		// The quota check and the insert are one statement, so they are
		// atomic even without the write semaphore. ?6 <= 0 means no quota.
		// The SELECT from users yields no row for an unknown account.
		{&s.stmtStoreOffline, `
INSERT INTO offline (user, stanza_id, sender, stored, data)
SELECT name, ?2, ?3, ?4, ?5 FROM users
WHERE name = ?1 AND (?6 <= 0 OR (SELECT count(*) FROM offline WHERE user = ?1) < ?6)
RETURNING seq`},
		{&s.stmtUserExists, `SELECT EXISTS (SELECT 1 FROM users WHERE name = ?)`},
		// LIMIT -1 is no limit.
		{&s.stmtOffline, `
SELECT seq, stanza_id, sender, stored, data FROM offline
WHERE user = ? ORDER BY seq LIMIT ?`},
		{&s.stmtDeleteOne, `DELETE FROM offline WHERE user = ? AND seq = ?`},
		{&s.stmtCredential, `
SELECT salt, iterations, stored_key, server_key FROM credentials
WHERE user = ? AND mechanism = ?`},
		{&s.stmtBatchQuota, batchQuotaSQL},
		{&s.stmtBatchInsert, batchInsertSQL(insertChunk)},
		{&s.stmtBatchOne, batchInsertSQL(1)},
		{&s.stmtBatchUsers, batchUsersSQL},
		{&s.stmtBatchDelete, batchDeleteSQL},
		{&s.stmtFastTokens, fastTokensSQL},
		{&s.stmtFastUseGet, fastUseGetSQL},
		{&s.stmtFastUse, fastUseSQL},
		{&s.stmtFastSupersede, fastSupersedeSQL},
		{&s.stmtFastInvalidate, fastInvalidateSQL},
		{&s.stmtLoginStats, loginStatsSQL},
		{&s.stmtLoginKnown, loginKnownSQL},
		{&s.stmtRosterVersion, rosterVersionSQL},
		{&s.stmtRosterItems, rosterItemsSQL},
	} {
		st, err := s.db.PrepareContext(ctx, p.sql)
		if err != nil {
			s.closeStmts()
			return fmt.Errorf("preparing %q: %w", strings.TrimSpace(p.sql), err)
		}
		*p.st = st
		s.stmts = append(s.stmts, st)
	}
	return nil
}

// Close closes the database. Call it once the server has stopped using
// the store: a call still running may fail. Closing again is a no-op.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closeStmts()
		if s.bulk {
			// Synced: with NORMAL a checkpoint syncs the WAL before and
			// the database file after.
			_, err := s.db.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
			s.closeErr = err
		}
		if err := s.db.Close(); s.closeErr == nil {
			s.closeErr = err
		}
	})
	return s.closeErr
}

func (s *Store) closeStmts() {
	for _, st := range s.stmts {
		st.Close()
	}
}

// write runs fn in a write transaction, after the writes queued before it.
// fn must use only tx: with ":memory:" the pool has a single connection,
// which tx holds.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	select {
	case s.wsem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-s.wsem }()
	tx, err := s.db.BeginTx(ctx, nil) // BEGIN IMMEDIATE, from the DSN
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Times are stored as Unix microseconds: an integer compares and indexes
// cheaply (ExpireOffline is a range scan) and cannot be misparsed, and
// microseconds match PostgreSQL's timestamptz, so both stores round the
// same way.
func toDB(t time.Time) int64    { return t.UnixMicro() }
func fromDB(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nonNil turns a nil slice into an empty one: database/sql binds nil as
// NULL, which the NOT NULL BLOB columns refuse.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

func notFound(format string, args ...any) error {
	return fmt.Errorf("sqlite: "+format+": %w", append(args, store.ErrNotFound)...)
}
