package offline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
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

// logJournal is a journal with its log in dir.
func logJournal(t *testing.T, st store.Offline, dir string) *Journal {
	t.Helper()
	j := NewJournal(st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := j.UseLog(context.Background(), dir); err != nil {
		t.Fatal(err)
	}
	return j
}

func segmentFiles(t *testing.T, dir string) int {
	t.Helper()
	nums, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(nums)
}

// Held messages go to the log, not the store: acked, they never reach the
// store and the log is deleted at a clean stop; unacked at a stop (a crash
// is the same for the log), the next start moves them to the store, in
// order, with their seqs above the store's, and nothing acked comes back.
func TestJournalLogRecovery(t *testing.T) {
	st := openStore(t, "bob")
	dir := filepath.Join(t.TempDir(), "journal")
	ctx := context.Background()
	stored0 := j0Store(t, st) // one message in the store before the log starts

	j := logJournal(t, st, dir)
	var recs []*Record
	for i := 0; i < 10; i++ {
		r := j.Hold("bob", message(i))
		if err := r.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if n := st.nBatches(); n != 0 {
		t.Fatalf("%d store transactions for held messages, want 0", n)
	}
	for _, r := range recs[:4] {
		r.Delivered()
	}
	j.Close() // 6 unacked: the segment stays
	if segmentFiles(t, dir) != 1 {
		t.Fatal("the log with unacked messages is gone")
	}

	j2 := logJournal(t, st, dir)
	defer j2.Close()
	got := stored(t, st, "bob")
	want := []string{"s-first", "s4", "s5", "s6", "s7", "s8", "s9"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after recovery the store holds %v, want %v", got, want)
	}
	if segmentFiles(t, dir) != 1 { // the recovered segment removed, a new one started
		t.Fatalf("%d segments after recovery, want the new one only", segmentFiles(t, dir))
	}
	ms, _ := st.OfflineMessages(ctx, "bob", 0)
	if ms[1].Seq <= stored0 {
		t.Fatalf("recovered seq %d not above the store's %d", ms[1].Seq, stored0)
	}
	// New seqs continue above the recovered ones.
	r := j2.Hold("bob", message(100))
	if seq, _ := r.Seq(ctx); seq <= ms[len(ms)-1].Seq {
		t.Fatalf("new seq %d not above recovered %d", seq, ms[len(ms)-1].Seq)
	}
	r.Delivered()
}

// j0Store puts one message in the store directly and returns its seq.
func j0Store(t *testing.T, st *countingStore) int64 {
	m := message(0)
	m.StanzaID = "s-first"
	seq, err := st.Store.StoreOffline(context.Background(), "bob", m, 0)
	if err != nil {
		t.Fatal(err)
	}
	return seq
}

// A held message whose session ends unacked moves to the store (spill);
// acked there later, it is deleted. A clean stop with everything acked
// leaves no log behind.
func TestJournalSpill(t *testing.T) {
	st := openStore(t, "bob")
	dir := filepath.Join(t.TempDir(), "journal")
	ctx := context.Background()
	j := logJournal(t, st, dir)
	a, b := j.Hold("bob", message(1)), j.Hold("bob", message(2))
	wa, wb := a.Spill(), b.Spill() // queued together, one commit
	if err := wa(ctx); err != nil {
		t.Fatal(err)
	}
	if err := wb(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, st, "bob"); fmt.Sprint(got) != "[s1 s2]" {
		t.Fatalf("after the spill the store holds %v", got)
	}
	a.Delivered()
	b.Delivered()
	if err := j.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := stored(t, st, "bob"); len(got) != 0 {
		t.Fatalf("acked after the spill, the store still holds %v", got)
	}
	// Spilling a delivered message does nothing.
	c := j.Hold("bob", message(3))
	c.Delivered()
	if err := c.Spill()(ctx); err != nil {
		t.Fatal(err)
	}
	j.Close()
	if n := segmentFiles(t, dir); n != 0 {
		t.Fatalf("%d segments left after a clean stop with everything acked", n)
	}
	if got := stored(t, st, "bob"); len(got) != 0 {
		t.Fatalf("store holds %v, want nothing", got)
	}
}

// A torn record at the end of a segment (a crash in the middle of a
// write) is ignored: it was never synced, so never acknowledged.
func TestSegmentTornTail(t *testing.T) {
	dir := t.TempDir()
	m := message(1)
	b := appendRecord(nil, kindInsert, 7, "bob", &m)
	b = appendRecord(b, kindInsert, 8, "bob", &m)
	if err := os.WriteFile(filepath.Join(dir, segName(1)), b[:len(b)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	pending, maxSeq, nums, err := recoverSegments(dir)
	if err != nil || len(pending) != 1 || pending[0].Seq != 7 || maxSeq != 7 || len(nums) != 1 {
		t.Fatalf("recovered %d (max seq %d, %d files, err %v), want seq 7 only", len(pending), maxSeq, len(nums), err)
	}
}
