package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"bluetick/internal/store"
)

// A snapshot taken while another connection pool writes holds a prefix of
// the committed writes: every message committed before it began, none
// torn, and it opens as a database of its own.
func TestSnapshotWhileWriting(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	src := filepath.Join(dir, "bluetick.db")
	s, err := Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.CreateUser(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	var committed atomic.Int64
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		defer close(done)
		for i := 0; i < 20000; i++ {
			select {
			case <-stop:
				return
			default:
			}
			m := store.OfflineMessage{StanzaID: fmt.Sprint(i), From: "bob@localhost", Stored: time.Now(), Data: []byte("<message/>")}
			if _, err := s.StoreOffline(ctx, "alice", m, 0); err != nil {
				done <- err
				return
			}
			committed.Add(1)
		}
	}()
	for committed.Load() < 200 {
		time.Sleep(time.Millisecond)
	}
	before := committed.Load()
	dst := filepath.Join(dir, "copy.db")
	if err := Snapshot(ctx, src, dst); err != nil {
		t.Fatal(err)
	}
	after := committed.Load()
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sum, err := Seal(ctx, dst)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Users != 1 || sum.Offline < before || sum.Offline > after+1 {
		t.Fatalf("copy holds %+v; committed before the snapshot %d, after %d", sum, before, after)
	}
	c, err := Open(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msgs, err := c.OfflineMessages(ctx, "alice", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range msgs { // a prefix, in order
		if m.StanzaID != fmt.Sprint(i) {
			t.Fatalf("message %d of the copy is %q", i, m.StanzaID)
		}
	}
	t.Logf("snapshot of %d messages (%d bytes) while %d more were committed", sum.Offline, sum.Bytes, after-before)

	if err := Snapshot(ctx, filepath.Join(dir, "absent.db"), filepath.Join(dir, "x.db")); err == nil {
		t.Error("a snapshot of an absent database succeeded")
	}
	if err := Snapshot(ctx, src, dst); err == nil {
		t.Error("a snapshot over an existing file succeeded")
	}
}
