package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
)

// countingStore counts the transactions ApplyOffline runs and can hold
// one open, to see what queues up behind it.
type countingStore struct {
	*sqlite.Store
	mu      sync.Mutex
	batches []int
	hold    chan struct{} // if set, ApplyOffline waits for it
}

func (c *countingStore) ApplyOffline(ctx context.Context, ws []*store.OfflineWrite) error {
	c.mu.Lock()
	c.batches = append(c.batches, len(ws))
	hold := c.hold
	c.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return c.Store.ApplyOffline(ctx, ws)
}

// release lets a held batch commit, and the next ones run freely.
func (c *countingStore) release(hold chan struct{}) {
	c.mu.Lock()
	c.hold = nil
	c.mu.Unlock()
	close(hold)
}

func (c *countingStore) nBatches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.batches)
}

func openStore(t *testing.T, users ...string) *countingStore {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "j.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	creds, err := auth.NewCredentials("pw", 4096)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		if err := st.CreateUser(context.Background(), u, creds); err != nil {
			t.Fatal(err)
		}
	}
	return &countingStore{Store: st}
}

func journal(t *testing.T, st store.Offline) *Journal {
	j := NewJournal(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(j.Close)
	return j
}

func message(i int) store.OfflineMessage {
	return store.OfflineMessage{StanzaID: fmt.Sprint("s", i), From: "alice@localhost/pc", Stored: time.Now(), Data: fmt.Appendf(nil, "<message id='m%d'/>", i)}
}

func stored(t *testing.T, st store.Offline, user string) []string {
	t.Helper()
	ms, err := st.OfflineMessages(context.Background(), user, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.StanzaID)
	}
	return ids
}

// Writes queued while a transaction commits share the next one, and land
// in the order they were queued.
func TestJournalBatchesInOrder(t *testing.T) {
	st := openStore(t, "bob")
	hold := make(chan struct{})
	st.hold = hold
	j := journal(t, st)
	first := j.Insert("bob", message(0), 0)
	for st.nBatches() == 0 {
		time.Sleep(time.Millisecond) // the writer holds the first batch open
	}
	var recs []*Record
	for i := 1; i <= 500; i++ {
		recs = append(recs, j.Insert("bob", message(i), 0))
	}
	st.release(hold)
	ctx := context.Background()
	if err := first.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	prev := int64(0)
	for _, r := range recs {
		seq, err := r.Seq(ctx)
		if err != nil || seq <= prev {
			t.Fatalf("seq %d after %d (err %v): not in queue order", seq, prev, err)
		}
		prev = seq
	}
	if n := st.nBatches(); n != 2 {
		t.Fatalf("%d transactions for 501 writes queued behind one, want 2", n)
	}
	if got := stored(t, st, "bob"); len(got) != 501 || got[0] != "s0" || got[500] != "s500" {
		t.Fatalf("stored %d messages, first %v", len(got), got[:1])
	}
}

// A message its recipient acks before the writer gets to it is never
// written, and its sender's ✓ does not wait for the store.
func TestJournalDeliveredFirstIsNeverWritten(t *testing.T) {
	st := openStore(t, "bob")
	hold := make(chan struct{})
	st.hold = hold
	j := journal(t, st)
	j.Insert("bob", message(0), 0) // holds the writer
	for st.nBatches() == 0 {
		time.Sleep(time.Millisecond)
	}
	r := j.Insert("bob", message(1), 0)
	r.Delivered()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := r.Wait(ctx); err != nil {
		t.Fatalf("Wait after Delivered: %v (the sender's ✓ waited for the store)", err)
	}
	st.release(hold)
	if err := j.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, st, "bob"); len(got) != 1 || got[0] != "s0" {
		t.Fatalf("stored %v, want only s0", got)
	}
	if seq, err := r.Seq(context.Background()); seq != 0 || err != nil {
		t.Fatalf("Seq of a message never written = %d, %v", seq, err)
	}
}

// Delivered after the commit deletes the row; during the commit too.
func TestJournalDeliveredAfterCommitDeletes(t *testing.T) {
	st := openStore(t, "bob")
	j := journal(t, st)
	ctx := context.Background()
	r := j.Insert("bob", message(1), 0)
	if _, err := r.Seq(ctx); err != nil {
		t.Fatal(err)
	}
	r.Delivered()

	hold := make(chan struct{})
	st.mu.Lock()
	st.hold = hold
	st.mu.Unlock()
	r2 := j.Insert("bob", message(2), 0)
	for st.nBatches() < 2 {
		time.Sleep(time.Millisecond)
	}
	r2.Delivered() // while its transaction is open
	st.release(hold)
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := j.Sync(ctx); err != nil { // the delete queued by the commit
		t.Fatal(err)
	}
	if got := stored(t, st, "bob"); len(got) != 0 {
		t.Fatalf("stored %v after both were delivered, want none", got)
	}
}

// Refusals are the record's answer; Close writes what is queued; later
// writes fail with ErrClosed.
func TestJournalRefusalsAndClose(t *testing.T) {
	st := openStore(t, "bob")
	j := NewJournal(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx := context.Background()
	if err := j.Insert("nobody", message(1), 0).Wait(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("insert for a missing user: %v", err)
	}
	j.Insert("bob", message(2), 1)
	if err := j.Insert("bob", message(3), 1).Wait(ctx); !errors.Is(err, store.ErrQuota) {
		t.Fatalf("insert beyond the quota: %v", err)
	}
	var recs []*Record
	for i := 10; i < 110; i++ {
		recs = append(recs, j.Insert("bob", message(i), 0))
	}
	j.Close()
	for _, r := range recs {
		if err := r.Wait(ctx); err != nil {
			t.Fatalf("a write queued before Close: %v", err)
		}
	}
	if got := stored(t, st, "bob"); len(got) != 101 {
		t.Fatalf("stored %d after Close, want 101", len(got))
	}
	if err := j.Insert("bob", message(200), 0).Wait(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("insert after Close: %v, want ErrClosed", err)
	}
}
