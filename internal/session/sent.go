package session

import "time"

// Without stream management a client acknowledges nothing, and a message
// written to its socket used to count as delivered. But a written message
// may sit for minutes in the kernel's send queue of a client that stopped
// reading, and is lost when that client is cut. On a Progress connection
// (TCP on Linux) a written message is kept in sent until the peer's TCP
// has acknowledged its last byte: only then is it delivered (its stored
// copy deleted, its drain page done). What the peer never acknowledged
// goes back to the offline store with the rest of the session, so a cut
// loses nothing the server held; a drain to another device of the user
// takes it along too (Held).

// sentEntry is an entry written to a Progress connection: end is the
// connection's byte count after it.
type sentEntry struct {
	entry
	end int64
}

// Checks of a send queue that does not empty after the last write, backing
// off: a client on a slow link acknowledges within a few round trips; one
// that does not read is cut by the write timeout.
const (
	pruneFirst = 50 * time.Millisecond
	pruneMax   = 5 * time.Second
)

// trackSentLocked keeps the just-written entries that matter if lost
// (messages, and anything stored or about to be) until the peer has
// acknowledged them, and returns those it has already acknowledged plus
// the others. Called with mu held.
func (s *Session) trackSentLocked(p Progress, written []entry, end, acked int64) (done []entry) {
	if s.sentW != p {
		s.sent = nil
		s.sentW = p
	}
	for _, e := range written {
		if e.rec != nil || e.offlineSeq != 0 || e.el.Name == "message" {
			s.sent = append(s.sent, sentEntry{entry: e, end: end})
		} else {
			done = append(done, e)
		}
	}
	done = append(done, s.pruneSentLocked(acked)...)
	if len(s.sent) > 0 {
		s.armPruneLocked(pruneFirst)
	}
	return done
}

// pruneSentLocked removes and returns the sent entries whose last byte
// the peer has acknowledged.
func (s *Session) pruneSentLocked(acked int64) []entry {
	i := 0
	for i < len(s.sent) && s.sent[i].end <= acked {
		i++
	}
	if i == 0 {
		return nil
	}
	done := make([]entry, i)
	for k := range done {
		done[k] = s.sent[k].entry
	}
	clear(s.sent[:i])
	s.sent = s.sent[i:]
	if len(s.sent) == 0 {
		s.sent = nil
	}
	return done
}

// armPruneLocked schedules a check of the send queue after d (unless one
// is scheduled).
func (s *Session) armPruneLocked(d time.Duration) {
	if s.pruneD != 0 {
		return
	}
	s.pruneD = d
	if s.pruneT == nil {
		s.pruneT = time.AfterFunc(d, s.prune)
	} else {
		s.pruneT.Reset(d)
	}
}

// prune is the timer's check: what the peer acknowledged since is
// delivered; while something is left, it checks again, less often.
func (s *Session) prune() {
	s.mu.Lock()
	d := s.pruneD
	s.pruneD = 0
	if len(s.sent) == 0 || s.closed {
		s.mu.Unlock()
		return
	}
	acked, ok := s.sentW.Acked()
	var done []entry
	if ok {
		done = s.pruneSentLocked(acked)
	}
	if len(s.sent) > 0 {
		s.armPruneLocked(min(2*d, pruneMax))
	}
	s.mu.Unlock()
	s.deliveredSent(done)
}

// takeSentLocked empties sent for the session's end: done were
// acknowledged by the peer, unsent were not (the connection answers with
// the figure it took as it closed).
func (s *Session) takeSentLocked() (done, unsent []entry) {
	if len(s.sent) == 0 {
		return nil, nil
	}
	if acked, ok := s.sentW.Acked(); ok {
		done = s.pruneSentLocked(acked)
	}
	for _, e := range s.sent {
		unsent = append(unsent, e.entry)
	}
	s.sent, s.sentW = nil, nil
	return done, unsent
}

// sentEntries returns the entries of sent (mu held).
func (s *Session) sentEntries() []entry {
	out := make([]entry, len(s.sent))
	for i := range s.sent {
		out[i] = s.sent[i].entry
	}
	return out
}

// deliveredSent tells the records and the Delivered hook about entries
// the peer acknowledged. Called without mu.
func (s *Session) deliveredSent(done []entry) {
	if len(done) == 0 {
		return
	}
	delivered(done)
	if seqs := offlineSeqs(done); len(seqs) > 0 && s.hook.Delivered != nil {
		s.hook.Delivered(s, seqs)
	}
}
