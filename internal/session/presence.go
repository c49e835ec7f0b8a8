package session

import (
	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

func streamError(condition, text string) *stanza.StreamError {
	return &stanza.StreamError{Condition: condition, Text: text}
}

// Available reports whether the client sent available presence (RFC 6121
// §4.2): only available sessions get messages addressed to the bare JID.
func (s *Session) Available() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.available
}

// Priority is the priority of the last available presence.
func (s *Session) Priority() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.priority
}

// SetPresence records the client's latest broadcast presence. It returns
// whether this was the initial presence (the session was not available).
func (s *Session) SetPresence(p *xmlstream.Element, available bool, priority int) (initial bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	initial = available && !s.available
	s.available = available
	s.priority = priority
	if available {
		s.presence = keptPresence(p)
	} else {
		s.presence = nil
	}
	return initial
}

// keptPresence is the form of a presence a session keeps for its life:
// without 'from' and 'to' (every reader addresses the copy it sends), and
// shared read-only with every session whose presence is the same
// (xmlstream.Canonical), so an idle session pays nothing for the usual
// presence and never pins the decoder's block.
func keptPresence(p *xmlstream.Element) *xmlstream.Element {
	if p.Attr("from") != "" || p.Attr("to") != "" {
		p = p.Copy()
		p.SetAttr("from", "")
		p.SetAttr("to", "")
	}
	return xmlstream.Canonical(p)
}

// Presence returns the last available presence broadcast, or nil. It is
// shared with other sessions: Copy it before changing it.
func (s *Session) Presence() *xmlstream.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.presence
}

// SetInterested marks that the client requested the roster, so it gets
// roster pushes (RFC 6121 §2.1.6).
func (s *Session) SetInterested() {
	s.mu.Lock()
	s.interested = true
	s.mu.Unlock()
}

// Interested reports whether the client requested the roster.
func (s *Session) Interested() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.interested
}

// AddDirected remembers a directed presence target, so it gets unavailable
// presence when the session ends (RFC 6121 §4.6.3); unavailable directed
// presence forgets it.
func (s *Session) AddDirected(to jid.JID, available bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if available {
		if s.directed == nil {
			s.directed = make(map[jid.JID]struct{})
		}
		s.directed[to] = struct{}{}
	} else {
		delete(s.directed, to)
	}
}

// Directed returns the directed presence targets.
func (s *Session) Directed() []jid.JID {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]jid.JID, 0, len(s.directed))
	for j := range s.directed {
		out = append(out, j)
	}
	return out
}

// OfflineOutstanding counts queued messages that came from the offline
// store and are not yet acknowledged.
func (s *Session) OfflineOutstanding() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, e := range s.queue {
		if e.offlineSeq != 0 {
			n++
		}
	}
	for _, e := range s.sent {
		if e.offlineSeq != 0 {
			n++
		}
	}
	return n
}

// LastStatus is the <status/> of the client's last unavailable presence,
// kept for XEP-0012 answers after logout.
func (s *Session) LastStatus() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastStatus
}

// SetLastStatus records the status text of an unavailable presence.
func (s *Session) SetLastStatus(st string) {
	s.mu.Lock()
	s.lastStatus = st
	s.mu.Unlock()
}

// SetCarbons turns XEP-0280 carbon copies on or off for this resource.
func (s *Session) SetCarbons(on bool) {
	s.mu.Lock()
	s.carbons = on
	s.mu.Unlock()
}

// Carbons reports whether the resource wants carbon copies (XEP-0280).
func (s *Session) Carbons() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.carbons
}
