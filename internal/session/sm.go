package session

import (
	"errors"
	"time"

	"bluetick/internal/xmlstream"
)

// ErrHandledTooHigh: the client acked more stanzas than were sent
// (XEP-0198 §3, <handled-count-too-high/>).
var ErrHandledTooHigh = errors.New("session: handled count too high")

// SentCount is the number of stanzas sent since stream management was
// enabled (the 'send-count' of <handled-count-too-high/>).
func (s *Session) SentCount() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.outSeq
}

// EnableSM turns on XEP-0198 counting from now on (both counters start at
// zero) and, with resume, makes the session survive its connection.
func (s *Session) EnableSM(resume bool) {
	s.mu.Lock()
	s.sm = true
	s.resume = resume
	// Stanzas already written were delivered under the no-SM rule; the
	// rest are numbered from 1, as the client will count them after
	// <enabled/> (which, as a control element, is written before them).
	var done []entry
	if s.written > 0 {
		done = append(done, s.queue[:s.written]...)
		for i := 0; i < s.written; i++ {
			s.queue[i] = entry{}
		}
		s.queue = s.queue[s.written:]
		s.written = 0
	}
	for i := range s.queue {
		s.queue[i].seq = uint32(i + 1)
	}
	s.outSeq = uint32(len(s.queue))
	s.acked = 0
	s.mu.Unlock()
	delivered(done)
}

// SM reports whether stream management is on, and resumption with it.
func (s *Session) SM() (enabled, resumable bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sm, s.resume
}

// Handled counts one stanza received from the client and fully processed
// (routed to a session or durably stored); its new value is what the next
// <a h=.../> tells the client.
func (s *Session) Handled() {
	s.mu.Lock()
	s.inH++
	s.mu.Unlock()
}

// InboundH is the number of client stanzas handled.
func (s *Session) InboundH() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inH
}

// Ack applies the client's h: every stanza up to it is delivered and leaves
// the queue; the offline sequence numbers among them are returned so the
// caller deletes them from the store, and the records of durable live
// deliveries among them are told directly.
//
// If stanzas the client was sent remain unacknowledged, another <r/> goes
// out at once: a client answers an <r/> in stream order, so its <a/> covers
// only what came before that <r/>, and without a new request whatever
// followed (the rest of an offline page, say) would wait forever.
func (s *Session) Ack(h uint32) ([]int64, error) {
	s.mu.Lock()
	s.reqOut = false
	n := h - s.acked // uint32 arithmetic handles the 2^32 wrap
	if n > uint32(len(s.queue)) || n > uint32(s.written) && s.w != nil {
		s.mu.Unlock()
		return nil, ErrHandledTooHigh
	}
	var seqs []int64
	done := s.queue[:n:n]
	for i := uint32(0); i < n; i++ {
		if q := s.queue[i].offlineSeq; q != 0 {
			seqs = append(seqs, q)
		}
	}
	if n > 0 {
		done = append([]entry(nil), done...)
		clear(s.queue[:n])
		s.queue = s.queue[n:]
		if len(s.queue) == 0 {
			s.queue = nil
		}
		s.written -= int(n)
		if s.written < 0 {
			s.written = 0
		}
		s.acked = h
	}
	var start bool
	var gen uint64
	var w Writer
	if n > 0 && s.sm && s.w != nil && s.written > 0 && s.written == len(s.queue) {
		// The ack made progress, everything queued was written and part of
		// it is unacknowledged: ask again (once per progress, so a client
		// sending unsolicited acks cannot start a ping-pong). If more is
		// waiting, the writer asks after it.
		s.reqOut = true
		s.ctrl = append(s.ctrl, xmlstream.New(nsSM, "r"))
		start, gen = s.kickLocked()
		w = s.w
	}
	s.mu.Unlock()
	if start {
		go s.writeLoop(w, gen)
	}
	delivered(done)
	return seqs, nil
}

// Hibernate waits up to timeout for a resumption; if none comes, expire
// runs (it ends the session). Attach cancels the wait. A session that was
// kicked is not waited for: expire runs at once.
func (s *Session) Hibernate(timeout time.Duration, expire func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.detachT != nil {
		s.detachT.Stop()
	}
	if s.kickedOut {
		timeout = 0
	}
	s.expire = expire
	s.detachT = time.AfterFunc(timeout, expire)
}

// Kick closes the attached connection (if any) with a stream error; used
// when a new session replaces this one, an administrator ends it, or its
// account is disabled or removed. The server ended it on purpose, so it
// is over: Kicked reports true and the session is not kept for a XEP-0198
// resumption (a hibernated one ends now), else the client would resume
// straight back into it.
func (s *Session) Kick(condition, text string) {
	s.mu.Lock()
	s.kickedOut = true
	w := s.w
	var expire func()
	if w == nil {
		// Not attached yet (bound before its client heard of it) or
		// hibernated: the connection that attaches gets it.
		s.kicked = streamError(condition, text)
		if s.detachT != nil && s.detachT.Stop() {
			s.detachT, expire = nil, s.expire
		}
	}
	s.mu.Unlock()
	if w != nil {
		w.Close(streamError(condition, text))
	}
	if expire != nil {
		go expire()
	}
}

// Kicked reports whether Kick was called: the session must end rather
// than wait for a resumption.
func (s *Session) Kicked() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.kickedOut
}
