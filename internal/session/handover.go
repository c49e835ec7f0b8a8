package session

import (
	"errors"

	"bluetick/internal/jid"
	"bluetick/internal/xmlstream"
)

// ErrNotResumable: the session cannot be handed over (no resumption, or
// already ended).
var ErrNotResumable = errors.New("session: not resumable")

// Snapshot is a session in transit to another node of a cluster, for a
// XEP-0198 resumption that lands on a node other than the one that held
// it: the counters, the unacknowledged stanzas and the presence state.
type Snapshot struct {
	ID         string
	JID        jid.JID
	InH        uint32 // stanzas handled from the client
	Acked      uint32 // the client's h: stanzas it has
	Pending    []Pending
	Available  bool
	Priority   int
	Presence   *xmlstream.Element
	Interested bool
	Carbons    bool
}

// HandOver ends this session in favour of a copy elsewhere: it applies the
// client's h (returning the offline sequence numbers now delivered), and
// returns everything else the copy needs. The session is closed: sends
// fail and the router falls back, so nothing is queued here afterwards.
func (s *Session) HandOver(h uint32) (Snapshot, []int64, error) {
	s.mu.Lock()
	if s.closed || !s.sm || !s.resume {
		s.mu.Unlock()
		return Snapshot{}, nil, ErrNotResumable
	}
	s.mu.Unlock()
	seqs, err := s.Ack(h)
	if err != nil {
		return Snapshot{}, nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	snap := Snapshot{
		ID: s.id, JID: s.jid, InH: s.inH, Acked: s.acked,
		Available: s.available, Priority: s.priority, Presence: s.presence, Interested: s.interested,
		Carbons: s.carbons,
	}
	for _, e := range s.queue {
		snap.Pending = append(snap.Pending, Pending{El: e.el, OfflineSeq: e.offlineSeq, Rec: e.rec})
	}
	s.queue = nil
	s.written = 0
	s.closed = true
	s.w = nil
	s.wgen++
	if s.detachT != nil {
		s.detachT.Stop()
		s.detachT = nil
	}
	return snap, seqs, nil
}

// Restore rebuilds a handed-over session: stream management on with
// resumption, the counters continuing where the client left them, and the
// unacknowledged stanzas queued to be written once a connection attaches.
func Restore(snap Snapshot, max int, h Hooks) *Session {
	s := New(snap.ID, snap.JID, max, h)
	s.sm, s.resume = true, true
	s.inH = snap.InH
	s.acked = snap.Acked
	s.outSeq = snap.Acked
	for _, p := range snap.Pending {
		s.outSeq++
		s.queue = append(s.queue, entry{el: p.El, seq: s.outSeq, offlineSeq: p.OfflineSeq, rec: p.Rec})
	}
	s.available, s.priority, s.presence, s.interested = snap.Available, snap.Priority, snap.Presence, snap.Interested
	s.carbons = snap.Carbons
	return s
}
