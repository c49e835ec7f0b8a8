// Package session is one bound resource (RFC 6120 §7): its bounded outbound
// queue, the writer that drains it to whichever connection is attached, and
// the XEP-0198 stream management counters that make "✓" mean "delivered or
// durably stored".
//
// A session outlives its connection when stream management resumption is
// on: the connection drops, the session is detached (hibernated) and keeps
// queueing; a new connection resumes it, or the resume timeout ends it and
// everything unacknowledged goes to the offline store.
package session

import (
	"errors"
	"sync"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// Errors returned by Send.
var (
	ErrClosed    = errors.New("session: closed")
	ErrQueueFull = errors.New("session: outbound queue full")
)

// Pending is a stanza the session holds but the client has not acknowledged.
// OfflineSeq is non-zero for a message that came from the offline store and
// is still there until acknowledged: on session end it must not be stored a
// second time.
type Pending struct {
	El         *xmlstream.Element
	OfflineSeq int64
	// Rec is the stored copy of a message queued live under durable
	// delivery: it is in the store (or on its way there) already.
	Rec Record
}

// Record is the stored copy of a message handed to the session live while
// it is being written to the offline store (durable delivery). The session
// tells it when the client has the message: the copy is then deleted, or
// never written if the store has not got to it yet, and the sender's ✓ no
// longer waits for the store.
type Record interface {
	Delivered()
}

// delivered tells each record of entries that the client has it. Called
// without s.mu: a record may take the store's locks.
func delivered(es []entry) {
	for _, e := range es {
		if e.rec != nil {
			e.rec.Delivered()
		}
	}
}

// Writer is the attached connection's output. Write gets top-level elements
// in order (stanzas and nonzas alike); it serializes them for its transport
// and writes them out in as few syscalls as it can.
type Writer interface {
	Write(els []*xmlstream.Element) error
	// Close ends the connection, after writing a stream error if se is not
	// nil.
	Close(se *stanza.StreamError)
}

// Progress is implemented by a connection that knows how much of what was
// written to it the peer has received (on Linux, SIOCOUTQ: the bytes still
// in the socket's send queue). Without stream management it is the only
// receipt there is: a message is dropped from the session only once the
// peer's TCP has acknowledged its last byte, and what a cut connection
// never sent goes to the offline store instead of being lost with the
// socket.
type Progress interface {
	// Written is the number of bytes written so far.
	Written() int64
	// Acked is the number of those bytes the peer has acknowledged; ok is
	// false if it cannot tell. After the connection is closed it is the
	// figure taken as it closed.
	Acked() (n int64, ok bool)
}

// Hooks are the session's calls back into the server. They run without the
// session lock held.
type Hooks struct {
	// Delivered is told the offline sequence numbers of stored messages
	// the client now has (acked, or written when SM is off), so they can be
	// deleted from the store.
	Delivered func(s *Session, seqs []int64)
	// Overflow is told the session was cut for falling too far behind.
	Overflow func(s *Session)
	// Congested is told a write to the client has been blocked for
	// CongestedAfter (it does not read): what the session holds may go
	// to the user's other devices meanwhile.
	Congested func(s *Session)
}

// CongestedAfter: a write blocked this long means the client is not
// reading. Far above a slow mobile link's round trip, far below the write
// timeout that cuts the client.
const CongestedAfter = 2 * time.Second

type entry struct {
	el         *xmlstream.Element
	seq        uint32 // SM sequence number (1-based, wraps)
	offlineSeq int64
	rec        Record
	queued     time.Duration // when it was queued, since epoch (0: not timed)
}

// epoch is the origin of entry.queued: a monotonic reading, so the
// delivery latency cannot go negative when the wall clock steps.
var epoch = time.Now()

// Session state guarded by mu.
type Session struct {
	id   string  // XEP-0198 resumption id (also used in logs)
	jid  jid.JID // full JID
	max  int     // queue bound
	hook Hooks
	// agentID is the client's XEP-0388 <user-agent id/> ("" if unknown).
	agentID string

	mu sync.Mutex
	// queue holds unacknowledged stanzas in order: queue[:written] were
	// written to the current connection, queue[written:] wait for the
	// writer. Without SM, written entries are dropped at once.
	queue   []entry
	written int
	ctrl    []*xmlstream.Element
	acks    []heldAck // <a/> answers waiting for the stanzas queued before them
	enq     uint64    // stanzas ever queued
	took    uint64    // stanzas ever taken by the writer (counts re-sends again)
	outSeq  uint32    // SM: number of stanzas enqueued (seq of the newest)
	acked   uint32    // SM: client's last h
	inH     uint32    // SM: stanzas handled from the client
	sm      bool      // SM enabled on this session
	resume  bool      // SM resumption enabled
	closed  bool      // no more sends: ended, or pending taken
	w       Writer    // attached connection, nil while hibernated
	wgen    uint64    // bumped by Attach and Detach: a writer of an older generation exits
	writing bool      // a writer goroutine of generation wgen is running
	reqOut  bool      // an <r/> is outstanding
	// kickedOut: Kick was called (see Kicked). greeted: FirstLogin was
	// called (the message of the day was sent). Beside the other bools,
	// so that Session stays in its size class (TestSessionSize).
	kickedOut bool
	greeted   bool
	detachT   *time.Timer
	kicked    *stanza.StreamError // Kick while no connection was attached
	// expire is what the hibernation timer detachT runs, so a Kick can
	// run it early.
	expire func()
	// writeStart is when the write in progress began, as time since
	// epoch (zero: none; 8 bytes where a time.Time takes 24): a write
	// that takes long means the client is not reading.
	writeStart time.Duration
	congT      *time.Timer // fires Hooks.Congested during a long write; nil between writes
	// sent: without SM, messages written to sentW (a Progress
	// connection) that its peer has not acknowledged, oldest first (see
	// sent.go).
	sent   []sentEntry
	sentW  Progress
	pruneT *time.Timer
	pruneD time.Duration

	// Presence state (RFC 6121 §4), guarded by mu.
	available  bool
	priority   int
	presence   *xmlstream.Element
	interested bool                 // requested the roster (§2.1.6)
	directed   map[jid.JID]struct{} // directed presence targets (§4.6)
	lastStatus string
	carbons    bool // XEP-0280 enabled

	// XEP-0352: while inactive, noise is held here (see csi.go).
	inactive bool
	held     []heldEntry // one slice, not two: 24 bytes less per session
}

// New returns a session for the bound full JID with the given queue bound.
func New(id string, j jid.JID, max int, h Hooks) *Session {
	return &Session{id: id, jid: j, max: max, hook: h}
}

// SetUserAgentID records the XEP-0388 <user-agent id/> of the client
// that bound the session (call it before the session is shared).
func (s *Session) SetUserAgentID(id string) { s.agentID = id }

// UserAgentID is the client's XEP-0388 <user-agent id/>, "" if unknown:
// revoking a device's tokens logs its sessions out by it.
func (s *Session) UserAgentID() string { return s.agentID }

// ID is the resumption id.
func (s *Session) ID() string { return s.id }

// JID is the bound full JID.
func (s *Session) JID() jid.JID { return s.jid }

// Send enqueues a stanza for the client. ErrQueueFull means the client fell
// too far behind: the session is closed for sends and its connection is being
// cut; the caller takes the pending stanzas (TakePending) and stores them.
func (s *Session) Send(el *xmlstream.Element) error { return s.enqueue(el, 0, nil) }

// SendOffline enqueues a message that still sits in the offline store with
// sequence number seq.
func (s *Session) SendOffline(el *xmlstream.Element, seq int64) error { return s.enqueue(el, seq, nil) }

// SendDurable enqueues a message whose stored copy rec is being written
// (durable delivery); rec is told when the client has it.
func (s *Session) SendDurable(el *xmlstream.Element, rec Record) error { return s.enqueue(el, 0, rec) }

func (s *Session) enqueue(el *xmlstream.Element, offlineSeq int64, rec Record) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if offlineSeq != 0 && s.holdsOffline(offlineSeq) {
		// Already queued: a drain and a durable live delivery of the same
		// stored message met here.
		s.mu.Unlock()
		return nil
	}
	if offlineSeq == 0 && rec == nil && s.holdLocked(el) {
		s.mu.Unlock()
		return nil
	}
	if len(s.held) > 0 {
		s.flushHeldLocked() // a real stanza: what was held goes first
	}
	if len(s.queue) >= s.max {
		s.closed = true
		w := s.w
		s.mu.Unlock()
		if w != nil {
			w.Close(&stanza.StreamError{Condition: "policy-violation", Text: "too many unacknowledged stanzas"})
		}
		if s.hook.Overflow != nil {
			s.hook.Overflow(s)
		}
		return ErrQueueFull
	}
	s.outSeq++
	s.enq++
	s.queue = append(s.queue, entry{el: el, seq: s.outSeq, offlineSeq: offlineSeq, rec: rec, queued: time.Since(epoch)})
	start, gen := s.kickLocked()
	w := s.w
	s.mu.Unlock()
	if start {
		go s.writeLoop(w, gen)
	}
	return nil
}

// HoldsOffline reports whether the stored message seq is queued.
func (s *Session) HoldsOffline(seq int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.holdsOffline(seq)
}

// holdsOffline reports whether the stored message seq is queued. Called
// with mu held; the scan is short because queues are bounded and offline
// entries are delivered a page at a time.
func (s *Session) holdsOffline(seq int64) bool {
	for i := range s.queue {
		if s.queue[i].offlineSeq == seq {
			return true
		}
	}
	for i := range s.sent {
		if s.sent[i].offlineSeq == seq {
			return true
		}
	}
	return false
}

// SendControl queues a nonza (SM <a/>, <r/>, <enabled/>); it is written
// before pending stanzas, except an <a/>, written after the stanzas queued
// before it (see heldAck), and never retained.
func (s *Session) SendControl(el *xmlstream.Element) {
	s.mu.Lock()
	if s.w == nil {
		s.mu.Unlock()
		return
	}
	if el.Space == nsSM && el.Name == "a" {
		s.acks = append(s.acks, heldAck{el: el, need: s.enq})
	} else {
		s.ctrl = append(s.ctrl, el)
	}
	start, gen := s.kickLocked()
	w := s.w
	s.mu.Unlock()
	if start {
		go s.writeLoop(w, gen)
	}
}

// TakePending closes the session for sends and returns every stanza it
// holds that the client has not acknowledged, oldest first. Later calls
// return nil, so exactly one caller moves them to the offline store.
func (s *Session) TakePending() []Pending {
	s.mu.Lock()
	s.closed = true
	done, unsent := s.takeSentLocked()
	var out []Pending
	for _, e := range append(unsent, s.queue...) {
		out = append(out, Pending{El: e.el, OfflineSeq: e.offlineSeq, Rec: e.rec})
	}
	s.queue = nil
	s.written = 0
	s.mu.Unlock()
	s.deliveredSent(done)
	return out
}

// Congested reports whether a write to the client has been blocked for
// longer than d: its socket buffers are full because it does not read.
// The server treats it like a session without a connection (its held
// messages may go to the account's other devices) until the write
// timeout cuts it.
func (s *Session) Congested(d time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.writeStart != 0 && time.Since(epoch)-s.writeStart > d
}

// Held returns the records of the durable live deliveries the session
// holds unacknowledged (it keeps them).
func (s *Session) Held() []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, e := range append(s.sentEntries(), s.queue...) {
		if e.rec != nil {
			out = append(out, e.rec)
		}
	}
	return out
}

// Closed reports whether the session takes no more stanzas.
func (s *Session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}
