package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/store"
	"bluetick/internal/store/storetest"
)

func openTemp(t testing.TB) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "bluetick.db"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestContract runs the store contract on a fresh database file per subtest.
func TestContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
}

// TestContractMemory runs it on ":memory:", whose pool has one connection:
// any method that used a second connection while holding the first would
// deadlock here.
func TestContractMemory(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := Open(":memory:")
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func schemaVersion(t *testing.T, db *sql.DB) int {
	t.Helper()
	var v int
	if err := db.QueryRow(`SELECT version FROM schema_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMigrateAppliesOnlyLaterSteps opens a database at version 1 of a
// three-step history. Step 1 cannot run twice (CREATE TABLE without IF NOT
// EXISTS), and steps 2 and 3 each insert a row, so the row count shows
// exactly which steps ran.
func TestMigrateAppliesOnlyLaterSteps(t *testing.T) {
	ctx := t.Context()
	steps := []string{
		`CREATE TABLE t (step INTEGER NOT NULL)`,
		`INSERT INTO t VALUES (2)`,
		`INSERT INTO t VALUES (3); INSERT INTO t VALUES (33)`, // several statements in one step
	}
	db := rawDB(t, filepath.Join(t.TempDir(), "m.db"))

	from, err := migrate(ctx, db, steps[:1])
	if err != nil || from != 0 {
		t.Fatalf("first migrate: from %d, %v", from, err)
	}
	if v := schemaVersion(t, db); v != 1 {
		t.Fatalf("version %d after one step, want 1", v)
	}
	from, err = migrate(ctx, db, steps)
	if err != nil || from != 1 {
		t.Fatalf("migrate from version 1: from %d, %v", from, err)
	}
	rows := func() string {
		r, err := db.Query(`SELECT step FROM t ORDER BY rowid`)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		var got []string
		for r.Next() {
			var n int
			r.Scan(&n)
			got = append(got, fmt.Sprint(n))
		}
		return strings.Join(got, ",")
	}
	if got := rows(); got != "2,3,33" {
		t.Fatalf("rows %s, want 2,3,33 (steps 2 and 3 once each)", got)
	}
	if v := schemaVersion(t, db); v != 3 {
		t.Fatalf("version %d, want 3", v)
	}
	// Idempotent: nothing left to do.
	from, err = migrate(ctx, db, steps)
	if err != nil || from != 3 {
		t.Fatalf("third migrate: from %d, %v", from, err)
	}
	if got := rows(); got != "2,3,33" {
		t.Fatalf("rows %s after a no-op migrate", got)
	}
}

// TestMigrateFailedStepRollsBack checks that a failing step leaves the
// database at the previous version with none of the step's effects.
func TestMigrateFailedStepRollsBack(t *testing.T) {
	ctx := t.Context()
	db := rawDB(t, filepath.Join(t.TempDir(), "m.db"))
	steps := []string{
		`CREATE TABLE a (x)`,
		`CREATE TABLE b (x); INSERT INTO a VALUES (1); THIS IS NOT SQL`,
	}
	if _, err := migrate(ctx, db, steps); err == nil || !strings.Contains(err.Error(), "step 2") {
		t.Fatalf("migrate with a bad step: %v", err)
	}
	if v := schemaVersion(t, db); v != 1 {
		t.Fatalf("version %d after a failed step 2, want 1", v)
	}
	var n int
	db.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'b'`).Scan(&n)
	if n != 0 {
		t.Fatal("table b of the failed step exists")
	}
	db.QueryRow(`SELECT count(*) FROM a`).Scan(&n)
	if n != 0 {
		t.Fatal("row of the failed step exists")
	}
	// Fixed step 2 applies on the next run.
	steps[1] = `CREATE TABLE b (x)`
	if _, err := migrate(ctx, db, steps); err != nil {
		t.Fatal(err)
	}
	if v := schemaVersion(t, db); v != 2 {
		t.Fatalf("version %d, want 2", v)
	}
}

// TestOpenMigratesAndReopens uses the real history: a new file ends at the
// latest version, and reopening (which would fail if step 1 ran again)
// keeps the data.
func TestOpenMigratesAndReopens(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bluetick.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if v := schemaVersion(t, s.db); v != len(migrations) {
		t.Fatalf("new database at version %d, want %d", v, len(migrations))
	}
	if err := s.CreateUser(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	ver, err := s.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "bob@example.org", Subscription: store.SubBoth, InRoster: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now()
	seq, err := s.StoreOffline(ctx, "alice", store.OfflineMessage{StanzaID: "x", Stored: at, Data: []byte("\x00<message/>")}, 10)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	for range 2 {
		s, err = Open(path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		if v := schemaVersion(t, s.db); v != len(migrations) {
			t.Fatalf("reopened database at version %d", v)
		}
		msgs, err := s.OfflineMessages(ctx, "alice", 0)
		if err != nil || len(msgs) != 1 || msgs[0].Seq != seq || string(msgs[0].Data) != "\x00<message/>" {
			t.Fatalf("after reopen: %+v, %v", msgs, err)
		}
		_, v, err := s.Roster(ctx, "alice")
		if err != nil || v != ver {
			t.Fatalf("roster version after reopen %d, %v; want %d", v, err, ver)
		}
		s.Close()
	}
}

// TestOpenRefusesNewerSchema: an old binary must not write to a database
// a newer one has migrated.
func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bluetick.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.Exec(`UPDATE schema_version SET version = ?`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if s, err := Open(path); err == nil {
		s.Close()
		t.Fatal("Open accepted a schema newer than it knows")
	} else if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("unexpected error: %v", err)
	}
}

// TestPragmas checks every pool connection, not just the first, has the
// durability and integrity settings: they are per connection.
func TestPragmas(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	ctx := t.Context()
	var conns []*sql.Conn
	for range 4 {
		c, err := s.db.Conn(ctx) // held, so each is a distinct connection
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for i, c := range conns {
		for pragma, want := range map[string]string{
			"journal_mode": "wal",
			"synchronous":  "2", // FULL
			"foreign_keys": "1",
			"busy_timeout": fmt.Sprint(busyTimeout.Milliseconds()),
		} {
			var got string
			if err := c.QueryRowContext(ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("connection %d: %s = %s, want %s", i, pragma, got, want)
			}
		}
	}
	for _, c := range conns {
		c.Close()
	}
}

// TestOpenBulk: a bulk store does not sync each commit, and what it wrote
// is in the database file itself after Close (the WAL checkpointed and
// emptied), where a normal Open finds it.
func TestOpenBulk(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bulk.db")
	s, err := OpenBulk(path)
	if err != nil {
		t.Fatal(err)
	}
	var sync string
	if err := s.db.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&sync); err != nil || sync != "1" {
		t.Fatalf("synchronous = %s (%v), want 1 (NORMAL)", sync, err)
	}
	if err := s.CreateUser(t.Context(), "alice", nil); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() != 0 {
		t.Errorf("the WAL holds %d bytes after Close; want it checkpointed into the database", fi.Size())
	}
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if ok, err := s2.UserExists(t.Context(), "alice"); err != nil || !ok {
		t.Fatalf("after reopening: alice exists = %v, %v", ok, err)
	}
}

func TestOpenAwkwardPath(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a dir with ?query#frag%20 and ünïcode")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "db?x=1#y")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(t.Context(), "alice", nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not created at %q", path)
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := Open(""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

// TestQuotaTwoHandles races two Stores on one file, as the server and a
// second process would be: the in-process write semaphore does not span
// them, so this relies on BEGIN IMMEDIATE, busy_timeout and the single
// INSERT ... SELECT.
func TestQuotaTwoHandles(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "bluetick.db")
	a, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.CreateUser(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	const quota = 7
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for i := range 8 {
		st := []*Store{a, b}[i%2]
		wg.Go(func() {
			for j := range 5 {
				_, err := st.StoreOffline(ctx, "alice", store.OfflineMessage{StanzaID: fmt.Sprint(i, j), Stored: time.Now(), Data: []byte("m")}, quota)
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
	wg.Wait()
	if ok != quota || refused != 40-quota {
		t.Fatalf("%d stored, %d refused; want %d, %d", ok, refused, quota, 40-quota)
	}
}

// TestWriteWaitsHonourContext: a write queued behind another gives up
// when its context ends.
func TestWriteWaitsHonourContext(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	s.wsem <- struct{}{} // a write in progress
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	err := s.CreateUser(ctx, "alice", nil)
	<-s.wsem
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("CreateUser behind a busy writer: %v", err)
	}
}

// BenchmarkStoreOffline measures durable appends (one fsync each with
// synchronous=FULL). msgs/s is the figure that matters: it bounds how many
// messages per second can be queued for offline users.
func BenchmarkStoreOffline(b *testing.B) {
	data := []byte(`<message xmlns='jabber:client' from='bob@example.org/phone' to='alice@example.org' type='chat' id='3f2a'><body>Are we still on for tonight?</body><stanza-id xmlns='urn:xmpp:sid:0' id='Yb9tTQ' by='alice@example.org'/><delay xmlns='urn:xmpp:delay' from='example.org' stamp='2026-01-02T03:04:05.678Z'>Offline Storage</delay></message>`)
	b.Run("serial", func(b *testing.B) {
		s := openTemp(b)
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
	b.Run("parallel", func(b *testing.B) {
		s := openTemp(b)
		defer s.Close()
		ctx := context.Background()
		user := benchUsers(b, s)
		b.ReportAllocs()
		b.SetBytes(int64(len(data)))
		b.RunParallel(func(pb *testing.PB) {
			u := user()
			for pb.Next() {
				if _, err := s.StoreOffline(ctx, u, store.OfflineMessage{StanzaID: "Yb9tTQ", Stored: time.Now(), Data: data}, 1000000); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	})
}

// BenchmarkOfflineDrain measures a user coming online: batch messages are
// stored, then listed and deleted in one DeleteOffline. msgs/s counts
// messages through the whole store-list-delete cycle.
func BenchmarkOfflineDrain(b *testing.B) {
	data := []byte(`<message xmlns='jabber:client' from='bob@example.org/phone' to='alice@example.org' type='chat'><body>hello</body></message>`)
	for _, batch := range []int{1, 20} {
		b.Run(fmt.Sprint("batch=", batch), func(b *testing.B) {
			s := openTemp(b)
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

// BenchmarkSetLastActivity: many sessions ending at once (a mass
// disconnect, a shutdown) each record their last activity; they share
// commits.
func BenchmarkSetLastActivity(b *testing.B) {
	s := openTemp(b)
	defer s.Close()
	ctx := context.Background()
	user := benchUsers(b, s)
	b.SetParallelism(16) // 32 goroutines on 2 cores: sessions end concurrently
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		u := user()
		for pb.Next() {
			if err := s.SetLastActivity(ctx, u, time.Now(), "gone"); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ends/s")
}

// benchUsers creates 64 accounts for a parallel benchmark and returns a
// function that gives each goroutine the next one.
func benchUsers(b *testing.B, s *Store) func() string {
	for i := range 64 {
		if err := s.CreateUser(context.Background(), fmt.Sprint("u", i), nil); err != nil {
			b.Fatal(err)
		}
	}
	var mu sync.Mutex
	next := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		next++
		return fmt.Sprint("u", (next-1)%64)
	}
}
