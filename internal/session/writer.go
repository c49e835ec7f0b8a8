package session

import "bluetick/internal/xmlstream"

// nsSM is XEP-0198's namespace; the writer asks for acks itself.
const nsSM = "urn:xmpp:sm:3"

// maxBatch bounds how many stanzas one Write call gets, so one slow batch
// does not hold a huge slice.
const maxBatch = 256

// Attach makes w the session's output and starts a writer goroutine that
// drains the queue into it, flushing once per batch. Everything not yet
// acknowledged is written again from the start (the resumption case: the
// caller has already applied the client's h with Ack).
func (s *Session) Attach(w Writer) {
	s.mu.Lock()
	if s.detachT != nil {
		s.detachT.Stop()
		s.detachT = nil
	}
	s.w = w
	s.written = 0
	s.reqOut = false
	stop := make(chan struct{})
	s.stopW = stop
	s.mu.Unlock()
	go s.writeLoop(w, stop)
	s.signal()
}

// Detach stops the writer of the current connection. The session keeps its
// queue; the caller then either ends it or hibernates it for resumption.
func (s *Session) Detach() {
	s.mu.Lock()
	if s.stopW != nil {
		close(s.stopW)
		s.stopW = nil
	}
	s.w = nil
	s.ctrl = nil
	s.mu.Unlock()
}

// writeLoop is the only goroutine writing to w. It takes everything queued
// in one go and hands it to w as one batch: under load many stanzas leave in
// one syscall; idle, it sleeps on the wake channel holding no buffers.
func (s *Session) writeLoop(w Writer, stop chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-s.wake:
		}
		for {
			ctrl, batch, n, more := s.takeBatch(w)
			if len(ctrl) == 0 && len(batch) == 0 {
				break
			}
			if err := w.Write(append(ctrl, batch...)); err != nil {
				// The reader sees the broken connection too and detaches;
				// the batch is still queued, so nothing is lost.
				w.Close(nil)
				return
			}
			if delivered := s.commitWritten(w, n); len(delivered) > 0 && s.hook.Delivered != nil {
				s.hook.Delivered(s, delivered)
			}
			if !more {
				break
			}
		}
	}
}

// takeBatch takes the next batch for w under the lock. The entries stay
// queued: with SM until the client acks them, without SM until the write
// succeeded (committed by commitWritten), so a failed write loses nothing.
func (s *Session) takeBatch(w Writer) (ctrl, batch []*xmlstream.Element, n int, more bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.w != w {
		return nil, nil, 0, false
	}
	ctrl = s.ctrl
	s.ctrl = nil
	n = len(s.queue) - s.written
	if n > maxBatch {
		n = maxBatch
		more = true
	}
	if n > 0 {
		batch = make([]*xmlstream.Element, n, n+1)
		for i := 0; i < n; i++ {
			batch[i] = s.queue[s.written+i].el
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
	return ctrl, batch, n, more
}

// commitWritten drops the first n written entries when SM is off (there
// will be no ack, so writing is delivery) and returns their offline
// sequence numbers.
func (s *Session) commitWritten(w Writer, n int) []int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.sm || s.w != w || n == 0 || n > s.written || n > len(s.queue) {
		return nil
	}
	var delivered []int64
	for i := 0; i < n; i++ {
		if seq := s.queue[i].offlineSeq; seq != 0 {
			delivered = append(delivered, seq)
		}
		s.queue[i] = entry{}
	}
	s.queue = s.queue[n:]
	s.written -= n
	if len(s.queue) == 0 {
		s.queue = nil
	}
	return delivered
}
