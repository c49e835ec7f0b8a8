package offline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"bluetick/internal/store"
)

// ErrClosed is the answer to a write queued after the journal was closed
// (the server is stopping): the sender gets no ✓ and its client resends.
var ErrClosed = errors.New("offline: journal closed")

// maxBatch bounds the writes of one transaction.
const maxBatch = 2048

// Window is how long the writer lets a message wait before writing it,
// unless a batch is already full: a recipient online acks within it on a
// good connection, and a message acked before it is written is never
// written (nor deleted). Its sender's ✓ comes with that ack, so the
// window delays only the ✓ of messages whose recipient is slow or away.
// PostgreSQL's commit_delay is the same idea.
var Window = 2 * time.Millisecond

// Journal writes the offline store behind the senders' backs, in batches:
// every write queued while a transaction commits goes into the next one,
// so a thousand messages share one commit (one fsync) and a sender waits
// for at most about two commits, not for a queue of them. It is what makes
// durable delivery the default: a message goes to the recipient's session
// at once and to the store in the same instant, and the sender's ✓ waits
// for whichever comes first, the commit or the recipient's own ack.
//
// One goroutine writes, in queue order, so for each user the store's
// sequence numbers follow the order in which writes were queued (the
// router queues under the user's lock, so in delivery order).
type Journal struct {
	st  store.Offline
	log *slog.Logger
	seg *segments // single node: live messages go to the log (segments.go)

	mu      sync.Mutex
	queue   []*op
	closed  bool
	nextSeq int64         // with seg: seqs are assigned when queued, in queue order
	wake    chan struct{} // cap 1: the writer has work
	done    chan struct{} // closed when the writer has exited

	stats JournalStats // updated by the writer only, read atomically
}

// JournalStats counts what the journal did since it started.
type JournalStats struct {
	Batches  atomic.Int64 // transactions committed
	Inserted atomic.Int64 // messages written
	Skipped  atomic.Int64 // messages acked by their recipient before they were written: never written
	Deleted  atomic.Int64 // delete operations (one per message acked after it was written, or per drained page)
	Logged   atomic.Int64 // messages appended to the log (single node)
	Spilled  atomic.Int64 // logged messages moved to the store (session ended, or old segment)
	Failed   atomic.Int64 // transactions that failed
	Busy     atomic.Int64 // nanoseconds spent committing
}

// Stats returns the journal's counters.
func (j *Journal) Stats() *JournalStats { return &j.stats }

// op is a queued write: an insert (rec set, w.Msg set), a delete (w.Seqs),
// a move of a logged record to the store (spill), a tombstone for a
// logged record its client acked (tomb), or a barrier (Sync).
type op struct {
	at      time.Time // queued
	w       store.OfflineWrite
	rec     *Record
	live    bool          // insert for a live session: to the log, if there is one
	spill   bool          // move rec from the log to the store
	tomb    bool          // rec was acked: tombstone it in the log
	barrier chan struct{} // closed once everything before it is written
}

// NewJournal starts the writer of a journal over st.
func NewJournal(st store.Offline, log *slog.Logger) *Journal {
	j := &Journal{st: st, log: log, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go j.run()
	return j
}

// Record states.
const (
	recQueued  = iota // waiting for the writer
	recWriting        // in the transaction being committed
	recStored         // committed to the store with seq
	recLogged         // synced to the log with seq (single node)
	recSkipped        // delivered before the writer got to it: never written
	recFailed         // not stored (err)
)

// Record is one message on its way to the store. It implements
// session.Record: the recipient's session tells it when the client has the
// message.
type Record struct {
	j    *Journal
	user string

	mu        sync.Mutex
	state     int
	seq       int64
	err       error
	delivered bool          // the client has it
	acked     chan struct{} // closed when the sender may get its ✓ (or its error)
	written   chan struct{} // closed when the writer is done with it

	// While logged: the segment and the message, to move it to the
	// store if its session ends before its client acks it.
	seg     int
	msg     *store.OfflineMessage
	spilled chan struct{} // set when a spill is queued; closed when done
}

func (r *Record) ack() {
	select {
	case <-r.acked:
	default:
		close(r.acked)
	}
}

// Insert queues m for user's store and returns at once; quota as
// StoreOffline.
func (j *Journal) Insert(user string, m store.OfflineMessage, quota int) *Record {
	return j.insert(user, m, quota, false)
}

// Hold queues m, which a live session of user is about to get, and
// returns at once. On a single node it goes to the log, not the store:
// the store gets it only if the session ends before its client acks it.
func (j *Journal) Hold(user string, m store.OfflineMessage) *Record {
	return j.insert(user, m, 0, true)
}

func (j *Journal) insert(user string, m store.OfflineMessage, quota int, live bool) *Record {
	r := &Record{j: j, user: user, acked: make(chan struct{}), written: make(chan struct{})}
	o := &op{at: time.Now(), w: store.OfflineWrite{User: user, Msg: &m, Quota: quota}, rec: r, live: live}
	if !j.push(o) {
		r.state, r.err = recFailed, ErrClosed
		close(r.acked)
		close(r.written)
	}
	return r
}

// Delete queues the deletion of stored messages the client has.
func (j *Journal) Delete(user string, seqs []int64) {
	if len(seqs) == 0 {
		return
	}
	if !j.push(&op{w: store.OfflineWrite{User: user, Seqs: seqs}}) {
		j.log.Warn("offline: delete after close, the messages will be delivered again", "user", user, "count", len(seqs))
	}
}

// Sync returns once everything queued before the call is written (or ctx
// ends). A reader of the store calls it first, so it sees what the router
// has already handed over.
func (j *Journal) Sync(ctx context.Context) error {
	o := &op{barrier: make(chan struct{})}
	if !j.push(o) {
		<-j.done
		return nil
	}
	select {
	case <-o.barrier:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// UseLog puts messages for live sessions in the log in dir instead of the
// store (single node; see segments). Call it before the first write: it
// first moves to the store what a crash left in the log.
func (j *Journal) UseLog(ctx context.Context, dir string) error {
	base, ok := j.st.(interface {
		OfflineSeqBase(ctx context.Context) (int64, error)
	})
	if !ok {
		return errors.New("offline: this store cannot share seqs with a log")
	}
	seg, err := openSegments(dir)
	if err != nil {
		return fmt.Errorf("offline: log %s: %w", dir, err)
	}
	pending, maxSeq, nums, err := recoverSegments(dir)
	if err != nil {
		return fmt.Errorf("offline: reading the log %s: %w", dir, err)
	}
	for i := 0; i < len(pending); i += maxBatch {
		chunk := pending[i:min(i+maxBatch, len(pending))]
		if err := j.st.ApplyOffline(ctx, chunk); err != nil {
			return fmt.Errorf("offline: moving %d messages from the log %s to the store: %w", len(pending), dir, err)
		}
	}
	if len(pending) > 0 {
		j.log.Info("offline: messages recovered from the log after an unclean stop", "count", len(pending))
	}
	for _, n := range nums {
		if err := os.Remove(filepath.Join(dir, segName(n))); err != nil {
			return fmt.Errorf("offline: %w", err)
		}
	}
	b, err := base.OfflineSeqBase(ctx)
	if err != nil {
		return err
	}
	next := 1
	if len(nums) > 0 {
		next = nums[len(nums)-1] + 1
	}
	if err := seg.start(next); err != nil {
		return fmt.Errorf("offline: log %s: %w", dir, err)
	}
	j.mu.Lock()
	j.seg, j.nextSeq = seg, max(b, maxSeq)+1
	j.mu.Unlock()
	return nil
}

// Close writes everything queued and stops the writer. Writes queued
// afterwards fail with ErrClosed.
func (j *Journal) Close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.signal()
	<-j.done
	if j.seg != nil {
		j.seg.close() // deleted if nothing in it is unacked
	}
}

func (j *Journal) push(o *op) bool {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return false
	}
	if j.seg != nil && o.rec != nil && o.w.Msg != nil && !o.spill {
		// One sequence for the log and the store, in queue order.
		o.w.Seq = j.nextSeq
		j.nextSeq++
	}
	j.queue = append(j.queue, o)
	j.mu.Unlock()
	j.signal()
	return true
}

func (j *Journal) signal() {
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

// run is the writer: it commits what is queued, a batch at a time, until
// the journal is closed and empty.
func (j *Journal) run() {
	defer close(j.done)
	for {
		j.mu.Lock()
		if len(j.queue) > 0 && len(j.queue) < maxBatch && !j.closed {
			// Let the oldest write age to the window: acks on their
			// way spare the work.
			if d := Window - time.Since(j.queue[0].at); d > 0 {
				j.mu.Unlock()
				time.Sleep(d)
				continue
			}
		}
		n := min(len(j.queue), maxBatch)
		batch := j.queue[:n:n]
		j.queue = j.queue[n:]
		if len(j.queue) == 0 {
			j.queue = nil
		}
		closed := j.closed
		j.mu.Unlock()
		if n == 0 {
			if closed {
				return
			}
			<-j.wake
			continue
		}
		j.write(batch)
	}
}

// write commits one batch and settles its records and barriers: the
// store's transaction first, then the log's append and sync, so a spilled
// record's tombstone is written only once the store has it.
func (j *Journal) write(batch []*op) {
	var ws []*store.OfflineWrite
	var spills []*op
	var buf []byte
	for _, o := range batch {
		switch {
		case o.barrier != nil:
		case o.spill:
			r := o.rec
			r.mu.Lock()
			if r.delivered || r.state != recLogged {
				close(r.spilled) // acked meanwhile: its tombstone is on its way
				r.mu.Unlock()
				continue
			}
			o.w = store.OfflineWrite{User: r.user, Msg: r.msg, Seq: r.seq}
			r.mu.Unlock()
			ws = append(ws, &o.w)
			spills = append(spills, o)
		case o.tomb:
			buf = appendRecord(buf, kindTombstone, o.rec.seq, "", nil)
		case o.rec != nil:
			r := o.rec
			r.mu.Lock()
			switch {
			case r.delivered:
				r.state = recSkipped // the client has it: nothing to keep
				j.stats.Skipped.Add(1)
			case o.live && j.seg != nil:
				r.state = recWriting
				buf = appendRecord(buf, kindInsert, o.w.Seq, o.w.User, o.w.Msg)
			default:
				r.state = recWriting
				ws = append(ws, &o.w)
			}
			r.mu.Unlock()
		default:
			ws = append(ws, &o.w)
		}
	}
	var err, lerr error
	if len(ws) > 0 {
		// No deadline: a batch must end in a commit or an error, and the
		// store's own timeouts bound it.
		t0 := time.Now()
		err = j.st.ApplyOffline(context.Background(), ws)
		j.stats.Busy.Add(int64(time.Since(t0)))
		if err != nil {
			j.stats.Failed.Add(1)
			j.log.Error("offline: writing a batch failed", "writes", len(ws), "err", err)
		} else {
			j.stats.Batches.Add(1)
			for _, w := range ws {
				if w.Msg != nil {
					j.stats.Inserted.Add(1)
				} else {
					j.stats.Deleted.Add(1)
				}
			}
		}
	}
	if err == nil {
		for _, o := range spills {
			buf = appendRecord(buf, kindTombstone, o.w.Seq, "", nil)
		}
	}
	if len(buf) > 0 {
		t0 := time.Now()
		lerr = j.seg.write(buf)
		j.stats.Busy.Add(int64(time.Since(t0)))
		if lerr != nil {
			j.log.Error("offline: writing the log failed", "err", lerr)
		}
	}
	var again []*op // to queue first: deletes and tombstones of records acked meanwhile, retries
	for _, o := range batch {
		if o.barrier != nil {
			close(o.barrier)
			continue
		}
		r := o.rec
		switch {
		case r == nil:
		case o.spill:
		case o.tomb:
			if lerr != nil {
				again = append(again, o)
			} else {
				j.seg.release(r)
			}
		default:
			again = j.settle(o, err, lerr, again)
		}
	}
	for _, o := range spills {
		r := o.rec
		r.mu.Lock()
		if err != nil || lerr != nil {
			r.mu.Unlock()
			again = append(again, o) // still safe in the log; try again
			continue
		}
		r.state, r.msg = recStored, nil
		j.stats.Spilled.Add(1)
		if r.delivered {
			again = append(again, &op{w: store.OfflineWrite{User: r.user, Seqs: []int64{r.seq}}})
		}
		close(r.spilled)
		r.mu.Unlock()
		j.seg.release(r)
	}
	if j.seg != nil {
		if j.seg.size >= segmentMax {
			if e := j.seg.start(j.seg.num + 1); e != nil {
				j.log.Error("offline: starting a new log segment failed", "err", e)
			}
		}
		for _, r := range j.seg.old() {
			if o := r.queueSpill(); o != nil {
				again = append(again, o)
			}
		}
	}
	if len(again) > 0 {
		j.mu.Lock()
		j.queue = append(again, j.queue...) // before anything queued later
		j.mu.Unlock()
		if err != nil || lerr != nil {
			time.Sleep(100 * time.Millisecond) // a failing store: do not spin
		}
	}
}

// settle records the outcome of an insert and lets its sender go on.
func (j *Journal) settle(o *op, err, lerr error, again []*op) []*op {
	r := o.rec
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state == recSkipped {
		r.ack()
		close(r.written)
		return again
	}
	logged := o.live && j.seg != nil
	switch {
	case logged && lerr != nil:
		r.state, r.err = recFailed, lerr
	case !logged && err != nil:
		r.state, r.err = recFailed, err
	case !logged && o.w.Err != nil:
		r.state, r.err = recFailed, o.w.Err
	case logged:
		r.state, r.seq, r.seg, r.msg = recLogged, o.w.Seq, j.seg.num, o.w.Msg
		j.seg.segs[r.seg].live[r] = struct{}{}
		j.stats.Logged.Add(1)
		if r.delivered { // acked by the client during the write
			again = append(again, &op{rec: r, tomb: true})
		}
	default:
		r.state, r.seq = recStored, o.w.Seq
		if r.delivered {
			again = append(again, &op{w: store.OfflineWrite{User: r.user, Seqs: []int64{r.seq}}})
		}
	}
	r.ack()
	close(r.written)
	return again
}

// queueSpill returns a spill op for a logged record not acked and not
// already being moved, or nil. Called by the writer.
func (r *Record) queueSpill() *op {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.delivered || r.state != recLogged || r.spilled != nil {
		return nil
	}
	r.spilled = make(chan struct{})
	return &op{rec: r, spill: true}
}

// Spill moves a logged message whose session ended unacked to the store,
// where the offline drain finds it; it returns a function that waits for
// that (and returns at once for a message already in the store, never
// written, or acked). Queue every spill of a session before waiting for
// any: they share a commit.
func (r *Record) Spill() (wait func(ctx context.Context) error) {
	<-r.written
	r.mu.Lock()
	ch := r.spilled
	queue := false
	if ch == nil && !r.delivered && r.state == recLogged {
		r.spilled = make(chan struct{})
		ch, queue = r.spilled, true
	}
	r.mu.Unlock()
	if ch == nil {
		return func(context.Context) error { return nil }
	}
	if queue && !r.j.push(&op{rec: r, spill: true}) {
		// Stopping: it stays in the log, and the next start moves it.
		return func(context.Context) error { return ErrClosed }
	}
	return func(ctx context.Context) error {
		select {
		case <-ch:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Delivered implements session.Record: the recipient's client has the
// message. The sender's ✓ need not wait for the store any more, and the
// stored copy is deleted (or never written).
func (r *Record) Delivered() {
	r.mu.Lock()
	if r.delivered {
		r.mu.Unlock()
		return
	}
	r.delivered = true
	state := r.state
	r.ack()
	r.mu.Unlock()
	switch state {
	case recStored:
		r.j.Delete(r.user, []int64{r.seq})
	case recLogged:
		r.j.push(&op{rec: r, tomb: true})
	}
}

// Wait returns once the message is stored or its recipient's client has
// it (nil: the sender may have its ✓), or why it is neither.
func (r *Record) Wait(ctx context.Context) error {
	select {
	case <-r.acked:
	case <-ctx.Done():
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.delivered {
		return nil // whatever the store said, the recipient has it
	}
	return r.err
}

// Seq waits until the writer is done with the message and returns its
// sequence number in the store, 0 if it was never written (delivered
// first), or why it could not be stored.
func (r *Record) Seq(ctx context.Context) (int64, error) {
	select {
	case <-r.written:
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq, r.err
}
