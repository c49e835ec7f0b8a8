package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bluetick/internal/offline"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
)

// A message the journal holds in its log when a backup starts is in the
// backup even if it moves to the database between the backup's read of
// the log and its copy of the database (a session ended meanwhile): the
// order of the two reads is what makes the copy consistent.
func TestBackupCatchesMessagesMovingToTheStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, u := range []string{"bob", "carol"} {
		if err := st.CreateUser(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "vapid.pem"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	j := offline.NewJournal(st, slog.New(slog.DiscardHandler))
	defer j.Close()
	if err := j.UseLog(ctx, filepath.Join(dir, "journal")); err != nil {
		t.Fatal(err)
	}
	// carol is offline: her messages go to the database. bob is online:
	// his are logged, and move to the database during the backup.
	var held []*offline.Record
	for i := range 50 {
		m := store.OfflineMessage{StanzaID: fmt.Sprint(i), From: "alice@localhost/pc", Stored: time.Now(), Data: []byte("<message/>")}
		held = append(held, j.Hold("bob", m))
		if err := j.Insert("carol", m, 0).Wait(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range held {
		if err := r.Wait(ctx); err != nil { // the ✓
			t.Fatal(err)
		}
	}
	betweenLogAndSnapshot = func() {
		var waits []func(context.Context) error
		for _, r := range held {
			waits = append(waits, r.Spill())
		}
		for _, w := range waits {
			if err := w(ctx); err != nil {
				t.Error(err)
			}
		}
	}
	defer func() { betweenLogAndSnapshot = nil }()
	file := filepath.Join(t.TempDir(), "b.tar.gz")
	res, err := Create(ctx, dir, filepath.Join(dir, DBName), file, "test", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	if res.Offline != 100 || res.Users != 2 || strings.Join(res.Files, ",") != "bluetick.db,vapid.pem" {
		t.Fatalf("backup: %+v", res)
	}
	if _, err := Create(ctx, dir, filepath.Join(dir, DBName), file, "test", "localhost"); err == nil {
		t.Error("a backup overwrote an existing file")
	}

	// Restore into a directory with a database of its own: it is kept aside.
	to := t.TempDir()
	if err := os.WriteFile(filepath.Join(to, DBName), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(to, "journal"), 0o700); err != nil {
		t.Fatal(err)
	}
	unlock, err := Lock(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(ctx, file, to); !errors.Is(err, ErrRunning) || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("restore while the directory is locked: %v", err)
	}
	unlock()
	rr, err := Restore(ctx, file, to)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(rr.Aside, DBName)); err != nil || string(b) != "old" {
		t.Fatalf("the previous database was not kept aside: %q %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(rr.Aside, "journal")); err != nil {
		t.Fatalf("the previous journal was not moved aside: %v", err)
	}
	got, err := sqlite.Open(filepath.Join(to, DBName))
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	for _, u := range []string{"bob", "carol"} {
		msgs, err := got.OfflineMessages(ctx, u, 0)
		if err != nil || len(msgs) != 50 {
			t.Fatalf("%s has %d messages after the restore (%v), want 50", u, len(msgs), err)
		}
	}
	if b, err := os.ReadFile(filepath.Join(to, "vapid.pem")); err != nil || string(b) != "key" {
		t.Fatalf("vapid.pem not restored: %q %v", b, err)
	}
}

// A file that is not a backup is refused before anything moves.
func TestRestoreRefusesOtherFiles(t *testing.T) {
	to := t.TempDir()
	os.WriteFile(filepath.Join(to, DBName), []byte("mine"), 0o600)
	bad := filepath.Join(t.TempDir(), "x.tar")
	os.WriteFile(bad, []byte("hello, not a tar archive at all"), 0o600)
	if _, err := Restore(context.Background(), bad, to); err == nil {
		t.Fatal("restored a file that is not a backup")
	}
	if b, _ := os.ReadFile(filepath.Join(to, DBName)); string(b) != "mine" {
		t.Fatal("a refused restore touched the database")
	}
}

// Restoring twice within a second keeps both previous states.
func TestRestoreTwice(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	file := filepath.Join(t.TempDir(), "b.tar")
	if _, err := Create(ctx, dir, filepath.Join(dir, DBName), file, "test", "localhost"); err != nil {
		t.Fatal(err)
	}
	to := t.TempDir()
	var asides []string
	for range 3 {
		rr, err := Restore(ctx, file, to)
		if err != nil {
			t.Fatal(err)
		}
		asides = append(asides, rr.Aside)
	}
	if asides[0] != "" || asides[1] == "" || asides[1] == asides[2] {
		t.Fatalf("previous states kept in %q", asides)
	}
}
