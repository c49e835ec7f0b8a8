package c2s

import "sync"

// maxInFlight bounds the stanzas of one stream whose handling is not
// complete (their ✓ waits for the store): past it the stream stops
// reading until some complete, so a fast sender cannot queue without end.
const maxInFlight = 1024

// finisher completes a stream's stanzas in the order they arrived, on a
// goroutine of its own that runs only while there is work. A message's ✓
// may wait a few milliseconds for the store's commit; the stream meanwhile
// goes on reading — its client's acks, its next stanzas — and the XEP-0198
// count advances here, in order, as each completes. Without it every
// sender would wait one commit per stanza, and a client whose own
// messages wait could not ack what it receives, so the commits would also
// carry what its ack would have spared.
type finisher struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when the queue shrinks or empties
	queue   []func()
	running bool
}

func newFinisher() *finisher {
	f := &finisher{}
	f.cond.L = &f.mu
	return f
}

// busy reports whether anything is queued or running: a stanza whose own
// handling is complete must still be counted after those before it.
func (f *finisher) busy() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.running
}

// add queues fn after everything queued before; it blocks while
// maxInFlight are queued.
func (f *finisher) add(fn func()) {
	f.mu.Lock()
	for len(f.queue) >= maxInFlight {
		f.cond.Wait()
	}
	f.queue = append(f.queue, fn)
	start := !f.running
	f.running = true
	f.mu.Unlock()
	if start {
		go f.run()
	}
}

func (f *finisher) run() {
	for {
		f.mu.Lock()
		if len(f.queue) == 0 {
			f.queue = nil
			f.running = false
			f.cond.Broadcast()
			f.mu.Unlock()
			return
		}
		fn := f.queue[0]
		f.queue[0] = nil
		f.queue = f.queue[1:]
		f.cond.Broadcast()
		f.mu.Unlock()
		fn()
	}
}

// wait returns once everything queued has run.
func (f *finisher) wait() {
	f.mu.Lock()
	for f.running {
		f.cond.Wait()
	}
	f.mu.Unlock()
}
