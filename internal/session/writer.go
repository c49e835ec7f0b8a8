package session

import (
	"time"

	"bluetick/internal/metrics"
	"bluetick/internal/xmlstream"
)

// nsSM is XEP-0198's namespace; the writer asks for acks itself.
const nsSM = "urn:xmpp:sm:3"

// maxBatch bounds how many stanzas one Write call gets, so one slow batch
// does not hold a huge slice.
const maxBatch = 256

// Attach makes w the session's output. Everything not yet acknowledged is
// written again from the start (the resumption case: the caller has
// already applied the client's h with Ack).
//
// No goroutine waits on an idle session: a writer goroutine is started
// when there is something to write and exits when the queue is drained, so
// an idle connection costs its reader only (see kickLocked).
func (s *Session) Attach(w Writer) {
	s.mu.Lock()
	if s.detachT != nil {
		s.detachT.Stop()
		s.detachT = nil
	}
	s.w = w
	s.wgen++
	s.writing = false
	s.written = 0
	s.reqOut = false
	if se := s.kicked; se != nil {
		// Replaced before this connection attached: it ends at once.
		s.kicked = nil
		s.mu.Unlock()
		w.Close(se)
		return
	}
	start, gen := s.kickLocked()
	s.mu.Unlock()
	if start {
		go s.writeLoop(w, gen)
	}
}

// Detach stops writing to the current connection. The session keeps its
// queue; the caller then either ends it or hibernates it for resumption.
func (s *Session) Detach() {
	s.mu.Lock()
	s.w = nil
	s.wgen++ // a running writer sees the change and exits
	s.writing = false
	s.ctrl = nil
	s.acks = nil
	s.mu.Unlock()
}

// kickLocked decides, with mu held, whether a writer goroutine must be
// started: there is a connection, nothing is writing, and there is work.
// The caller starts writeLoop(s.w, gen) after unlocking.
func (s *Session) kickLocked() (start bool, gen uint64) {
	if s.w == nil || s.writing || len(s.ctrl) == 0 && s.written >= len(s.queue) && !s.ackReadyLocked() {
		return false, 0
	}
	s.writing = true
	return true, s.wgen
}

// writeLoop is the only goroutine writing to w while it runs. It takes
// everything queued in one go and hands it to w as one batch — under load
// many stanzas leave in one syscall — and exits when nothing is left.
func (s *Session) writeLoop(w Writer, gen uint64) {
	for {
		ctrl, batch, n, ok := s.takeBatch(w, gen)
		if !ok {
			return
		}
		for _, el := range batch[:n] {
			metrics.StanzasOut.Add(el.Name)
		}
		s.watchWrite(true)
		err := w.Write(append(ctrl, batch...))
		s.watchWrite(false)
		if err != nil {
			// The reader sees the broken connection too and detaches;
			// the batch is still queued, so nothing is lost.
			s.mu.Lock()
			if s.wgen == gen {
				s.writing = false
				s.writeStart = 0
			}
			s.mu.Unlock()
			w.Close(nil)
			return
		}
		if delivered := s.commitWritten(w, n); len(delivered) > 0 && s.hook.Delivered != nil {
			s.hook.Delivered(s, delivered)
		}
	}
}

// takeBatch takes the next batch for the writer of generation gen under
// the lock; ok is false when the writer must exit (nothing left, or the
// connection was detached or replaced). The entries stay queued: with SM
// until the client acks them, without SM until the write succeeded
// (committed by commitWritten), so a failed write loses nothing.
func (s *Session) takeBatch(w Writer, gen uint64) (ctrl, batch []*xmlstream.Element, n int, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wgen != gen || s.w != w {
		return nil, nil, 0, false
	}
	ctrl = s.ctrl
	s.ctrl = nil
	n = len(s.queue) - s.written
	if n > maxBatch {
		n = maxBatch
	}
	if n <= 0 && len(ctrl) == 0 && !s.ackReadyLocked() {
		s.writing = false
		s.writeStart = 0
		return nil, nil, 0, false
	}
	s.writeStart = max(time.Since(epoch), 1)
	if n > 0 {
		batch = make([]*xmlstream.Element, n, n+1)
		now := time.Since(epoch)
		for i := 0; i < n; i++ {
			e := &s.queue[s.written+i]
			batch[i] = e.el
			if e.queued != 0 && e.el.Name == "message" {
				metrics.DeliveryLatency.Observe((now - e.queued).Seconds())
				e.queued = 0 // once: a resumption writes it again
			}
		}
		s.written += n
		if s.sm && !s.reqOut {
			// Ask for an ack after the stanzas, once per round trip: the
			// client's <a/> is what lets the server forget them (and
			// delete them from the offline store).
			s.reqOut = true
			batch = append(batch, xmlstream.New(nsSM, "r"))
		}
	}
	s.took += uint64(n)
	for s.ackReadyLocked() {
		batch = append(batch, s.acks[0].el)
		s.acks[0] = heldAck{}
		s.acks = s.acks[1:]
	}
	return ctrl, batch, n, true
}

// heldAck is an <a/> answering the client's <r/>, written once the
// stanzas queued before it was made are (need: the count of stanzas ever
// queued then). Handling the stanzas it covers may have queued some to
// the client — an error bounce — and a client that read the ✓ before the
// bounce would show a ✓ for a message that will not arrive.
type heldAck struct {
	el   *xmlstream.Element
	need uint64
}

// ackReadyLocked reports whether the first held ack may be written.
func (s *Session) ackReadyLocked() bool { return len(s.acks) > 0 && s.acks[0].need <= s.took }

// commitWritten drops the first n written entries when SM is off (there
// will be no ack, so writing is delivery) and returns their offline
// sequence numbers. On a Progress connection they are kept (see sent.go)
// until the peer's TCP has acknowledged them.
func (s *Session) commitWritten(w Writer, n int) []int64 {
	p, _ := w.(Progress)
	var end, acked int64
	tracked := false
	if p != nil {
		end = p.Written()
		acked, tracked = p.Acked()
	}
	s.mu.Lock()
	s.writeStart = 0
	if s.sm || s.w != w || n == 0 || n > s.written || n > len(s.queue) {
		s.mu.Unlock()
		return nil
	}
	done := append([]entry(nil), s.queue[:n]...)
	clear(s.queue[:n])
	s.queue = s.queue[n:]
	s.written -= n
	if len(s.queue) == 0 {
		s.queue = nil
	}
	if tracked {
		done = s.trackSentLocked(p, done, end, acked)
	}
	s.mu.Unlock()
	delivered(done)
	return offlineSeqs(done)
}

// offlineSeqs returns the offline sequence numbers of es.
func offlineSeqs(es []entry) []int64 {
	var seqs []int64
	for _, e := range es {
		if e.offlineSeq != 0 {
			seqs = append(seqs, e.offlineSeq)
		}
	}
	return seqs
}

// watchWrite arms (or stops) the timer that tells Hooks.Congested about a
// write blocked for CongestedAfter. Only the session's writer goroutine
// calls it. The timer lives for one write and is dropped after it, not
// kept for reuse: arming a new one costs about what a Reset does, and an
// idle session then holds no timer (~0.15 KiB, issue 19).
func (s *Session) watchWrite(start bool) {
	if s.hook.Congested == nil {
		return
	}
	if s.congT != nil {
		s.congT.Stop()
		s.congT = nil
	}
	if start {
		s.congT = time.AfterFunc(CongestedAfter, func() { s.hook.Congested(s) })
	}
}
