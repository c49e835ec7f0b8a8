package postgres

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"bluetick/internal/pgtest"
	"bluetick/internal/store"
	"bluetick/internal/store/storetest"
)

// One throwaway server for the whole test binary.
func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openSchema opens a Store on a new schema of the database at dsn. When
// the test ends, after the caller's own cleanups (such as closing the
// store), it checks the schema's invariants.
func openSchema(t testing.TB, dsn string) *Store {
	t.Helper()
	dsn = pgtest.Schema(t, dsn)
	s, err := Open(context.Background(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { checkCounts(t, dsn) })
	return s
}

// checkCounts fails t unless every user's offline_count is the number of
// messages the user holds: the quota relies on it.
func checkCounts(t testing.TB, dsn string) {
	t.Helper()
	if t.Failed() {
		return
	}
	ctx := context.Background()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Error(err)
		return
	}
	defer c.Close(ctx)
	rows, _ := c.Query(ctx, `
SELECT format('%s has offline_count %s but %s messages', name, offline_count, n)
FROM (SELECT name, offline_count, (SELECT count(*) FROM offline WHERE username = name) AS n FROM users) x
WHERE offline_count <> n`)
	bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Error(err)
	}
	for _, b := range bad {
		t.Error(b)
	}
}

// TestContract runs the store contract, each subtest on a fresh schema of
// one database: a schema costs milliseconds, a database tens of them.
func TestContract(t *testing.T) {
	dsn := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openSchema(t, dsn) })
}

func rawConn(t testing.TB, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func schemaVersion(t testing.TB, c *pgx.Conn) int {
	t.Helper()
	var v int
	if err := c.QueryRow(context.Background(), `SELECT version FROM schema_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestConcurrentOpen starts three "nodes" at once on a new schema: all must
// open, and each step must run exactly once (a second run of step 1 would
// fail on CREATE TABLE users, of step 2 on ADD COLUMN), and exactly one
// node sees version 0.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.Start(t))
	const nodes = 3
	stores := make([]*Store, nodes)
	errs := make([]error, nodes)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			<-start
			stores[i], errs[i] = Open(t.Context(), dsn, Options{})
		})
	}
	close(start)
	wg.Wait()
	fromZero := 0
	for i := range nodes {
		if errs[i] != nil {
			t.Fatalf("node %d: %v", i, errs[i])
		}
		defer stores[i].Close()
		// The lock is per step, so a node may find a version between
		// 0 and the last, but only one can find the schema empty.
		if stores[i].migratedFrom == 0 {
			fromZero++
		}
	}
	if fromZero != 1 {
		t.Fatalf("%d nodes found an empty schema, want exactly 1", fromZero)
	}
	if v := schemaVersion(t, rawConn(t, dsn)); v != len(migrations) {
		t.Fatalf("schema at version %d, want %d", v, len(migrations))
	}
	// All nodes work on the one schema.
	ctx := t.Context()
	if err := stores[0].CreateUser(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	for i, s := range stores {
		if ok, err := s.UserExists(ctx, "alice"); err != nil || !ok {
			t.Fatalf("node %d: UserExists = %v, %v", i, ok, err)
		}
	}
}

func newPool(t testing.TB, dsn string) *Store {
	t.Helper()
	cfg, err := poolConfig(dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &Store{pool: mustPool(t, cfg)}
}

// TestMigrateStepsOnce races migrate with a three-step history from several
// pools, starting from version 1. Step 1 cannot run twice (CREATE TABLE
// without IF NOT EXISTS), and steps 2 and 3 insert rows, so the rows show
// exactly which steps ran, and how often.
func TestMigrateStepsOnce(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	steps := []string{
		`CREATE TABLE t (step INTEGER NOT NULL, at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp())`,
		`INSERT INTO t (step) VALUES (2)`,
		// Several statements in one step, and a slow one, to widen the race.
		`INSERT INTO t (step) VALUES (3); SELECT pg_sleep(0.2); INSERT INTO t (step) VALUES (33)`,
	}
	first := newPool(t, dsn)
	defer first.Close()
	if from, err := migrate(ctx, first.pool, steps[:1]); err != nil || from != 0 {
		t.Fatalf("first migrate: from %d, %v", from, err)
	}

	const nodes = 4
	froms := make([]int, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		s := newPool(t, dsn)
		defer s.Close()
		wg.Go(func() { froms[i], errs[i] = migrate(ctx, s.pool, steps) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// Each node reports the version it found first; the lock is per step,
	// so a node may find 2 and apply step 3 after another applied step 2.
	// Only one can have found the starting version.
	if n := strings.Count(fmt.Sprint(froms), "1"); n != 1 {
		t.Fatalf("versions found %v: %d nodes found version 1, want 1", froms, n)
	}
	c := rawConn(t, dsn)
	rows, _ := c.Query(ctx, `SELECT step FROM t ORDER BY at`)
	got, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int32{2, 3, 33}) {
		t.Fatalf("rows %v, want [2 3 33] (steps 2 and 3 once each)", got)
	}
	if v := schemaVersion(t, c); v != 3 {
		t.Fatalf("version %d, want 3", v)
	}
}

// TestMigrateFailedStepRollsBack checks that a failing step leaves the
// schema at the previous version with none of the step's effects
// (PostgreSQL's DDL is transactional).
func TestMigrateFailedStepRollsBack(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	s := newPool(t, dsn)
	defer s.Close()
	steps := []string{
		`CREATE TABLE a (x INTEGER)`,
		`CREATE TABLE b (x INTEGER); INSERT INTO a VALUES (1); THIS IS NOT SQL`,
	}
	if _, err := migrate(ctx, s.pool, steps); err == nil || !strings.Contains(err.Error(), "step 2") {
		t.Fatalf("migrate with a bad step: %v", err)
	}
	c := rawConn(t, dsn)
	if v := schemaVersion(t, c); v != 1 {
		t.Fatalf("version %d after a failed step 2, want 1", v)
	}
	var b *string
	c.QueryRow(ctx, `SELECT to_regclass('b')::text`).Scan(&b)
	if b != nil {
		t.Fatal("table b of the failed step exists")
	}
	var n int
	c.QueryRow(ctx, `SELECT count(*) FROM a`).Scan(&n)
	if n != 0 {
		t.Fatal("row of the failed step exists")
	}
	steps[1] = `CREATE TABLE b (x INTEGER)`
	if _, err := migrate(ctx, s.pool, steps); err != nil {
		t.Fatal(err)
	}
	if v := schemaVersion(t, c); v != 2 {
		t.Fatalf("version %d, want 2", v)
	}
}

// TestMigrateOfflineCount upgrades a schema at version 1, holding
// messages, to the current one: step 2 must count them into offline_count.
func TestMigrateOfflineCount(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	old := newPool(t, dsn)
	defer old.Close()
	if _, err := migrate(ctx, old.pool, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := old.pool.Exec(ctx, `
INSERT INTO users (name) VALUES ('alice'), ('bob'), ('carol');
INSERT INTO offline (username, stanza_id, sender, stored, data)
SELECT u, '', '', now(), '' FROM unnest('{alice,alice,alice,bob}'::text[]) AS u`); err != nil {
		t.Fatal(err)
	}
	s := openSchemaDSN(t, dsn)
	if s.migratedFrom != 1 {
		t.Fatalf("migrated from %d, want 1", s.migratedFrom)
	}
	checkCounts(t, dsn)
	// The quota sees the messages stored before the upgrade.
	if _, err := s.StoreOffline(ctx, "alice", store.OfflineMessage{Stored: time.Now()}, 3); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("StoreOffline at quota after the upgrade: %v", err)
	}
}

// TestOpenRefusesNewerSchema: an old binary must not write to a schema a
// newer one has migrated.
func TestOpenRefusesNewerSchema(t *testing.T) {
	dsn := pgtest.Schema(t, pgtest.Start(t))
	s, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := rawConn(t, dsn).Exec(t.Context(), `UPDATE schema_version SET version = $1`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	if s, err := Open(t.Context(), dsn, Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a schema newer than it knows")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("unexpected error: %v", err)
	}
}

// TestReopenKeepsData: reopening (which would fail if step 1 ran again)
// finds the data of the previous run.
func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	s, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.CreateUser(ctx, "alice", nil)
	ver, err := s.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "bob@example.org", Subscription: store.SubBoth, InRoster: true})
	if err != nil {
		t.Fatal(err)
	}
	seq, err := s.StoreOffline(ctx, "alice", store.OfflineMessage{StanzaID: "x", Stored: time.Now(), Data: []byte("\x00<message/>")}, 10)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close() // a second Close is a no-op

	s, err = Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if s.migratedFrom != len(migrations) {
		t.Fatalf("reopen found version %d", s.migratedFrom)
	}
	msgs, err := s.OfflineMessages(ctx, "alice", 0)
	if err != nil || len(msgs) != 1 || msgs[0].Seq != seq || string(msgs[0].Data) != "\x00<message/>" {
		t.Fatalf("after reopen: %+v, %v", msgs, err)
	}
	if _, v, err := s.Roster(ctx, "alice"); err != nil || v != ver {
		t.Fatalf("roster version after reopen %d, %v; want %d", v, err, ver)
	}
}

// TestQuotaTwoNodes races two Stores, each with its own pool, as two nodes
// of a cluster would: no in-process lock spans them, so only the row lock
// keeps the quota. A lost race shows only now and then, so the race is run
// for several rounds, emptying the queue between them.
func TestQuotaTwoNodes(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	a := openSchemaDSN(t, dsn)
	b := openSchemaDSN(t, dsn)
	if err := a.CreateUser(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	const rounds, quota, workers, each = 10, 7, 8, 3
	for r := range rounds {
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok, refused := 0, 0
		start := make(chan struct{})
		for i := range workers {
			st := []*Store{a, b}[i%2]
			wg.Go(func() {
				<-start
				for j := range each {
					_, err := st.StoreOffline(ctx, "alice", store.OfflineMessage{StanzaID: fmt.Sprint(r, i, j), Stored: time.Now(), Data: []byte("m")}, quota)
					mu.Lock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, store.ErrQuota):
						refused++
					default:
						t.Error(err)
					}
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		if ok != quota || refused != workers*each-quota {
			t.Fatalf("round %d: %d stored, %d refused; want %d, %d", r, ok, refused, quota, workers*each-quota)
		}
		msgs, err := b.OfflineMessages(ctx, "alice", 0)
		if err != nil || len(msgs) != quota {
			t.Fatalf("round %d: %d messages held, %v; want %d", r, len(msgs), err, quota)
		}
		seqs := make([]int64, len(msgs))
		for i, m := range msgs {
			seqs[i] = m.Seq
		}
		if err := a.DeleteOffline(ctx, "alice", seqs); err != nil {
			t.Fatal(err)
		}
	}
	checkCounts(t, dsn)
}

// TestDrainTwoNodes stores for one user from two nodes while a third
// drains: every message must be delivered exactly once and in Seq order,
// which needs Seqs to increase in commit order across nodes.
func TestDrainTwoNodes(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	nodes := []*Store{openSchemaDSN(t, dsn), openSchemaDSN(t, dsn), openSchemaDSN(t, dsn)}
	if err := nodes[0].CreateUser(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	const producers, each = 6, 50
	var wg sync.WaitGroup
	errc := make(chan error, producers)
	for p := range producers {
		st := nodes[p%2]
		wg.Go(func() {
			for i := range each {
				if _, err := st.StoreOffline(ctx, "alice", store.OfflineMessage{StanzaID: fmt.Sprint(p, "-", i), Stored: time.Now(), Data: []byte("m")}, 0); err != nil {
					errc <- err
					return
				}
			}
		})
	}
	drain := nodes[2]
	seen := map[string]bool{}
	var last int64
	deadline := time.Now().Add(time.Minute)
	for len(seen) < producers*each {
		if time.Now().After(deadline) {
			t.Fatalf("drained %d of %d before the deadline", len(seen), producers*each)
		}
		select {
		case err := <-errc:
			t.Fatal(err)
		default:
		}
		batch, err := drain.OfflineMessages(ctx, "alice", 5)
		if err != nil {
			t.Fatal(err)
		}
		seqs := make([]int64, len(batch))
		for i, m := range batch {
			if m.Seq <= last {
				t.Fatalf("Seq %d delivered after %d", m.Seq, last)
			}
			last = m.Seq
			if seen[m.StanzaID] {
				t.Fatalf("%s delivered twice", m.StanzaID)
			}
			seen[m.StanzaID] = true
			seqs[i] = m.Seq
		}
		if err := drain.DeleteOffline(ctx, "alice", seqs); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	checkCounts(t, dsn)
}

func mustPool(t testing.TB, cfg *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// openSchemaDSN opens a Store on an existing schema (dsn from
// pgtest.Schema) and closes it when the test ends.
func openSchemaDSN(t testing.TB, dsn string) *Store {
	t.Helper()
	s, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestByteOrderUnderICU creates a database whose default collation is
// ICU's en-US, which ignores punctuation, folds accents and case at the
// first level and so orders the test names differently from Go. The
// store's columns are COLLATE "C", so ListUsers must still be in byte order
// and names must still match exactly.
func TestByteOrderUnderICU(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Start(t)
	c := rawConn(t, dsn)
	name := fmt.Sprintf("icu_%d", time.Now().UnixNano())
	_, err := c.Exec(ctx, `CREATE DATABASE `+name+` TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C' LOCALE_PROVIDER icu ICU_LOCALE 'en-US'`)
	if err != nil {
		t.Skipf("cannot create an ICU database here: %v", err)
	}
	t.Cleanup(func() { c.Exec(context.Background(), `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`) })
	s := openSchema(t, pgtest.WithParam(dsn, "dbname", name))
	defer s.Close()
	names := []string{"zoë", "bob", "émile", "alice", "a-z", "az", "10", "9", "carol", "Bob", "a_b", "ab"}
	for _, n := range names {
		if err := s.CreateUser(ctx, n, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Check the database really collates differently, or the test proves
	// nothing.
	var icuOrder []string
	rows, _ := rawConn(t, pgtest.WithParam(dsn, "dbname", name)).Query(ctx, `SELECT unnest($1::text[]) AS n ORDER BY n`, names)
	icuOrder, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(names)
	sort.Strings(want)
	if slices.Equal(icuOrder, want) {
		t.Fatal("the ICU database sorts in byte order too; the test would prove nothing")
	}
	got, err := s.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListUsers = %q\nwant (byte order) %q", got, want)
	}
	if ok, _ := s.UserExists(ctx, "BOB"); ok {
		t.Fatal("UserExists(BOB) under ICU: names must match exactly")
	}
}

// TestSynchronousCommit: the store's sessions commit synchronously even if
// the role's default says otherwise, unless the DSN itself says.
func TestSynchronousCommit(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	c := rawConn(t, dsn)
	var db string
	c.QueryRow(ctx, `SELECT current_database()`).Scan(&db)
	if _, err := c.Exec(ctx, `ALTER DATABASE `+pgx.Identifier{db}.Sanitize()+` SET synchronous_commit = off`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dsn, want string }{
		{dsn, "on"},
		{pgtest.WithParam(dsn, "synchronous_commit", "local"), "local"},
	} {
		s, err := Open(ctx, tc.dsn, Options{})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		err = s.pool.QueryRow(ctx, `SHOW synchronous_commit`).Scan(&got)
		s.Close()
		if err != nil || got != tc.want {
			t.Fatalf("synchronous_commit = %q, %v; want %q", got, err, tc.want)
		}
	}
}

// TestRosterVersionTwoNodes bumps one user's roster from two nodes at once:
// the versions each call returns must all differ, and the final version
// must be the largest (a smaller number committed last would move the
// version backwards).
func TestRosterVersionTwoNodes(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	a, b := openSchemaDSN(t, dsn), openSchemaDSN(t, dsn)
	a.CreateUser(ctx, "alice", nil)
	var mu sync.Mutex
	var vers []int64
	var wg sync.WaitGroup
	for w := range 8 {
		st := []*Store{a, b}[w%2]
		wg.Go(func() {
			for i := range 20 {
				v, err := st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: fmt.Sprint(i % 3), Name: fmt.Sprint(w), Subscription: store.SubNone, InRoster: true})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				vers = append(vers, v)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(vers)
	if len(slices.Compact(slices.Clone(vers))) != len(vers) {
		t.Fatal("a version was returned twice")
	}
	_, cur, err := b.Roster(ctx, "alice")
	if err != nil || cur != vers[len(vers)-1] {
		t.Fatalf("final version %d, %v; want the largest returned, %d", cur, err, vers[len(vers)-1])
	}
}

// TestErrorMapping covers the paths the contract cannot reach on purpose:
// database errors that carry a store meaning.
func TestErrorMapping(t *testing.T) {
	ctx := t.Context()
	s := openSchema(t, pgtest.Start(t))
	defer s.Close()
	// A foreign-key violation (a user deleted under a write) is ErrNotFound.
	_, err := s.pool.Exec(ctx, `INSERT INTO last_activity (username, at, status) VALUES ('ghost', now(), '')`)
	if err = wrap(err, "x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("foreign-key violation maps to %v", err)
	}
	s.CreateUser(ctx, "alice", nil)
	_, err = s.pool.Exec(ctx, `INSERT INTO users (name) VALUES ('alice')`)
	if err = wrap(err, "x"); !errors.Is(err, store.ErrExists) {
		t.Fatalf("unique violation maps to %v", err)
	}
	// Other errors are neither.
	_, err = s.pool.Exec(ctx, `SELECT 1/0`)
	if err = wrap(err, "x"); err == nil || errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("division by zero maps to %v", err)
	}
}

func TestOptions(t *testing.T) {
	const dsn = "postgres://u:p@127.0.0.1:1/db"
	cfg, err := poolConfig(dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MaxConns < 4 || cfg.MinConns != 0 || cfg.MaxConnLifetime != time.Hour {
		t.Fatalf("defaults: %d %d %v", cfg.MaxConns, cfg.MinConns, cfg.MaxConnLifetime)
	}
	cfg, err = poolConfig(dsn+"?pool_max_conns=3&pool_max_conn_lifetime=5m", Options{})
	if err != nil || cfg.MaxConns != 3 || cfg.MaxConnLifetime != 5*time.Minute {
		t.Fatalf("DSN settings: %d %v, %v", cfg.MaxConns, cfg.MaxConnLifetime, err)
	}
	cfg, err = poolConfig(dsn+"?pool_max_conns=3", Options{MaxConns: 9, MinConns: 2, MaxConnLifetime: time.Minute})
	if err != nil || cfg.MaxConns != 9 || cfg.MinConns != 2 || cfg.MaxConnLifetime != time.Minute {
		t.Fatalf("options: %+v, %v", cfg, err)
	}
	if _, err := poolConfig(dsn, Options{MaxConns: 2, MinConns: 3}); err == nil {
		t.Fatal("MinConns above MaxConns accepted")
	}
	if _, err := poolConfig("postgres://u:secret@[bad", Options{}); err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("bad DSN: %v", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	// Port 1 on loopback: nothing listens there.
	if s, err := Open(ctx, "postgres://u:p@127.0.0.1:1/db?connect_timeout=2", Options{}); err == nil {
		s.Close()
		t.Fatal("Open succeeded with no server")
	}
}

// BenchmarkStoreOffline measures durable appends. msgs/s is the figure
// that matters: it bounds how many messages per second a node can queue for
// offline users. Run it with BLUETICK_PGTEST_FSYNC=on for commit costs
// comparable to the SQLite store's (whose benchmark fsyncs every commit).
func BenchmarkStoreOffline(b *testing.B) {
	data := []byte(`<message xmlns='jabber:client' from='bob@example.org/phone' to='alice@example.org' type='chat' id='3f2a'><body>Are we still on for tonight?</body><stanza-id xmlns='urn:xmpp:sid:0' id='Yb9tTQ' by='alice@example.org'/><delay xmlns='urn:xmpp:delay' from='example.org' stamp='2026-01-02T03:04:05.678Z'>Offline Storage</delay></message>`)
	dsn := pgtest.Start(b)
	b.Run("serial", func(b *testing.B) {
		s := openSchema(b, dsn)
		defer s.Close()
		ctx := context.Background()
		s.CreateUser(ctx, "alice", nil)
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := s.StoreOffline(ctx, "alice", store.OfflineMessage{StanzaID: "Yb9tTQ", From: "bob@example.org/phone", Stored: time.Now(), Data: data}, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	// With the default quota (10,000) and half of it queued: the quota
	// check must not cost more as the queue grows.
	b.Run("quota", func(b *testing.B) {
		s := openSchema(b, dsn)
		defer s.Close()
		ctx := context.Background()
		s.CreateUser(ctx, "alice", nil)
		m := store.OfflineMessage{StanzaID: "Yb9tTQ", Stored: time.Now(), Data: data}
		for range 5000 {
			if _, err := s.StoreOffline(ctx, "alice", m, 0); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		var seqs []int64
		for b.Loop() {
			seq, err := s.StoreOffline(ctx, "alice", m, 10000)
			if err != nil {
				b.Fatal(err)
			}
			// Drain what this loop added now and then, as a client
			// would, to stay at half the quota.
			if seqs = append(seqs, seq); len(seqs) == 1000 {
				if err := s.DeleteOffline(ctx, "alice", seqs); err != nil {
					b.Fatal(err)
				}
				seqs = seqs[:0]
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
	b.Run("parallel", func(b *testing.B) {
		s := openSchema(b, dsn)
		defer s.Close()
		ctx := context.Background()
		for i := range 64 {
			s.CreateUser(ctx, fmt.Sprint("u", i), nil)
		}
		var mu sync.Mutex
		next := 0
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			mu.Lock()
			u := fmt.Sprint("u", next%64)
			next++
			mu.Unlock()
			for pb.Next() {
				if _, err := s.StoreOffline(ctx, u, store.OfflineMessage{StanzaID: "Yb9tTQ", Stored: time.Now(), Data: data}, 0); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkOfflineDrain measures a user coming online: batch messages are
// stored, then listed and deleted in one DeleteOffline.
func BenchmarkOfflineDrain(b *testing.B) {
	data := []byte(`<message xmlns='jabber:client' from='bob@example.org/phone' to='alice@example.org' type='chat'><body>hello</body></message>`)
	dsn := pgtest.Start(b)
	for _, batch := range []int{1, 20} {
		b.Run(fmt.Sprint("batch=", batch), func(b *testing.B) {
			s := openSchema(b, dsn)
			defer s.Close()
			ctx := context.Background()
			s.CreateUser(ctx, "alice", nil)
			b.ReportAllocs()
			for b.Loop() {
				for range batch {
					if _, err := s.StoreOffline(ctx, "alice", store.OfflineMessage{Stored: time.Now(), Data: data}, 0); err != nil {
						b.Fatal(err)
					}
				}
				msgs, err := s.OfflineMessages(ctx, "alice", 0)
				if err != nil || len(msgs) != batch {
					b.Fatalf("%d messages, %v", len(msgs), err)
				}
				seqs := make([]int64, len(msgs))
				for i, m := range msgs {
					seqs[i] = m.Seq
				}
				if err := s.DeleteOffline(ctx, "alice", seqs); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// TestExpireManyUsers expires across more users than one batch holds, and
// repairs an offline_count that was changed by hand.
func TestExpireManyUsers(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	s := openSchemaDSN(t, dsn)
	const users = expireBatch*2 + 50
	now := time.Now()
	for i := range users {
		u := fmt.Sprintf("u%03d", i)
		if err := s.CreateUser(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
		for _, age := range []time.Duration{48 * time.Hour, 25 * time.Hour, time.Hour} {
			if _, err := s.StoreOffline(ctx, u, store.OfflineMessage{Stored: now.Add(-age), Data: []byte("m")}, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.pool.Exec(ctx, `UPDATE users SET offline_count = 99 WHERE name = 'u007'`); err != nil {
		t.Fatal(err)
	}
	n, err := s.ExpireOffline(ctx, now.Add(-24*time.Hour))
	if err != nil || n != 2*users {
		t.Fatalf("ExpireOffline = %d, %v; want %d", n, err, 2*users)
	}
	checkCounts(t, dsn)
	if c, err := s.CountOffline(ctx, "u007"); err != nil || c != 1 {
		t.Fatalf("CountOffline(u007) = %d, %v", c, err)
	}
}

// TestConcurrentExpire runs expiry on two nodes while messages are stored,
// drained and accounts deleted and re-created on them: every writer locks
// the user's row before touching messages, so nothing may deadlock (which
// PostgreSQL would report as an error after deadlock_timeout) and the
// counts must still be right.
func TestConcurrentExpire(t *testing.T) {
	ctx := t.Context()
	dsn := pgtest.Schema(t, pgtest.Start(t))
	nodes := []*Store{openSchemaDSN(t, dsn), openSchemaDSN(t, dsn)}
	const users = 12
	name := func(i int) string { return fmt.Sprintf("u%02d", i%users) }
	for i := range users {
		nodes[0].CreateUser(ctx, name(i), nil)
	}
	old := time.Now().Add(-time.Hour)
	deadline := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	errc := make(chan error, 100)
	report := func(err error) {
		if err != nil && !errors.Is(err, store.ErrNotFound) && !errors.Is(err, store.ErrExists) && !errors.Is(err, store.ErrQuota) {
			select {
			case errc <- err:
			default:
			}
		}
	}
	for n := range 2 {
		st := nodes[n]
		wg.Go(func() { // expirer
			for time.Now().Before(deadline) {
				_, err := st.ExpireOffline(ctx, time.Now().Add(-time.Minute))
				report(err)
			}
		})
		for w := range 3 {
			wg.Go(func() { // storer: old and new messages, over all users
				for i := 0; time.Now().Before(deadline); i++ {
					at := time.Now()
					if i%2 == 0 {
						at = old
					}
					_, err := st.StoreOffline(ctx, name(i*7+w), store.OfflineMessage{Stored: at, Data: []byte("m")}, 50)
					report(err)
				}
			})
		}
		wg.Go(func() { // drainer
			for i := 0; time.Now().Before(deadline); i++ {
				msgs, err := st.OfflineMessages(ctx, name(i), 10)
				report(err)
				seqs := make([]int64, len(msgs))
				for j, m := range msgs {
					seqs[j] = m.Seq
				}
				report(st.DeleteOffline(ctx, name(i), seqs))
			}
		})
		wg.Go(func() { // account churn
			for i := n; time.Now().Before(deadline); i += 2 {
				report(st.DeleteUser(ctx, name(i)))
				report(st.CreateUser(ctx, name(i), nil))
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Error(err)
	}
	checkCounts(t, dsn)
}
