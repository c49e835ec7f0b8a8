package offline

import (
	"context"
	"errors"
	"log/slog"
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

	mu     sync.Mutex
	queue  []*op
	closed bool
	wake   chan struct{} // cap 1: the writer has work
	done   chan struct{} // closed when the writer has exited

	stats JournalStats // updated by the writer only, read atomically
}

// JournalStats counts what the journal did since it started.
type JournalStats struct {
	Batches  atomic.Int64 // transactions committed
	Inserted atomic.Int64 // messages written
	Skipped  atomic.Int64 // messages acked by their recipient before they were written: never written
	Deleted  atomic.Int64 // delete operations (one per message acked after it was written, or per drained page)
	Failed   atomic.Int64 // transactions that failed
	Busy     atomic.Int64 // nanoseconds spent committing
}

// Stats returns the journal's counters.
func (j *Journal) Stats() *JournalStats { return &j.stats }

// op is a queued write, or a barrier (Sync) when w is nil.
type op struct {
	at      time.Time // queued
	w       store.OfflineWrite
	rec     *Record       // for an insert
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
	recStored         // committed with seq
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
}

func (r *Record) ack() {
	select {
	case <-r.acked:
	default:
		close(r.acked)
	}
}

// Insert queues m for user and returns at once; quota as StoreOffline.
func (j *Journal) Insert(user string, m store.OfflineMessage, quota int) *Record {
	r := &Record{j: j, user: user, acked: make(chan struct{}), written: make(chan struct{})}
	o := &op{at: time.Now(), w: store.OfflineWrite{User: user, Msg: &m, Quota: quota}, rec: r}
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

// Close writes everything queued and stops the writer. Writes queued
// afterwards fail with ErrClosed.
func (j *Journal) Close() {
	j.mu.Lock()
	j.closed = true
	j.mu.Unlock()
	j.signal()
	<-j.done
}

func (j *Journal) push(o *op) bool {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return false
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

// write commits one batch and settles its records and barriers.
func (j *Journal) write(batch []*op) {
	ws := make([]*store.OfflineWrite, 0, len(batch))
	for _, o := range batch {
		switch {
		case o.barrier != nil:
		case o.rec != nil:
			r := o.rec
			r.mu.Lock()
			if r.delivered {
				r.state = recSkipped // the client has it: nothing to keep
				j.stats.Skipped.Add(1)
			} else {
				r.state = recWriting
				ws = append(ws, &o.w)
			}
			r.mu.Unlock()
		default:
			ws = append(ws, &o.w)
		}
	}
	var err error
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
	var deletes []*op
	for _, o := range batch {
		if o.barrier != nil {
			close(o.barrier)
			continue
		}
		r := o.rec
		if r == nil {
			continue
		}
		r.mu.Lock()
		if r.state == recWriting {
			switch {
			case err != nil:
				r.state, r.err = recFailed, err
			case o.w.Err != nil:
				r.state, r.err = recFailed, o.w.Err
			default:
				r.state, r.seq = recStored, o.w.Seq
				if r.delivered {
					// Acked by the client during the commit.
					deletes = append(deletes, &op{w: store.OfflineWrite{User: r.user, Seqs: []int64{r.seq}}})
				}
			}
		}
		r.ack()
		close(r.written)
		r.mu.Unlock()
	}
	if len(deletes) > 0 {
		j.mu.Lock()
		j.queue = append(deletes, j.queue...) // before anything queued later
		j.mu.Unlock()
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
	stored := r.state == recStored
	r.ack()
	r.mu.Unlock()
	if stored {
		r.j.Delete(r.user, []int64{r.seq})
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
