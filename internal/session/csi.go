package session

import "bluetick/internal/xmlstream"

// XEP-0352 Client State Indication: while a phone's app is in the
// background it says <inactive/>; the server then holds back traffic that
// only matters on screen — presence updates and chat states — instead of
// waking the radio for each. Held presence is coalesced (only the latest
// per contact is kept), held chat states likewise. A real stanza (a
// message with content, an IQ) flushes what is held first, so order is
// kept; <active/> flushes everything.

const (
	nsChatStates = "http://jabber.org/protocol/chatstates" // XEP-0085
	nsSID        = "urn:xmpp:sid:0"                        // XEP-0359
	nsHints      = "urn:xmpp:hints"                        // XEP-0334
)

// heldKey identifies what an entry replaces: the newest presence or chat
// state from one sender wins.
type heldKey struct {
	kind string // "presence" or "chatstate"
	from string
}

// heldEntry is a stanza held back while inactive, and what it replaces.
type heldEntry struct {
	el  *xmlstream.Element
	key heldKey
}

// SetInactive records the client's state; becoming active flushes what
// was held.
func (s *Session) SetInactive(inactive bool) {
	s.mu.Lock()
	s.inactive = inactive
	var start bool
	var gen uint64
	if !inactive {
		s.flushHeldLocked()
		start, gen = s.kickLocked()
	}
	w := s.w
	s.mu.Unlock()
	if start {
		go s.writeLoop(w, gen)
	}
}

// holdable reports whether el is noise a client in the background can do
// without until it comes back.
func holdable(el *xmlstream.Element) (heldKey, bool) {
	switch el.Name {
	case "presence":
		switch el.Attr("type") {
		case "", "unavailable":
			return heldKey{"presence", el.Attr("from")}, true
		}
	case "message":
		if el.Attr("type") == "error" {
			return heldKey{}, false
		}
		state := false
		for _, c := range el.Elements() {
			switch {
			case c.Space == nsChatStates:
				state = true
			case c.Name == "thread" && (c.Space == xmlstream.NSClient || c.Space == ""),
				c.Space == nsSID, c.Space == nsHints:
				// Envelope, not content: the <stanza-id/> the server
				// stamps on every routed message, the sender's
				// <origin-id/>, <no-store/> hints, the thread.
			default:
				return heldKey{}, false
			}
		}
		if state {
			return heldKey{"chatstate", el.Attr("from")}, true
		}
	}
	return heldKey{}, false
}

// holdLocked keeps el back if the session is inactive and el is noise;
// it reports whether it did. Called with mu held.
func (s *Session) holdLocked(el *xmlstream.Element) bool {
	if !s.inactive {
		return false
	}
	k, ok := holdable(el)
	if !ok {
		return false
	}
	for i := range s.held {
		if s.held[i].key == k {
			// Replace in place: the newest state, at the oldest position
			// (a contact's presence does not jump ahead of others').
			s.held[i].el = el
			return true
		}
	}
	s.held = append(s.held, heldEntry{el, k})
	return true
}

// flushHeldLocked moves held stanzas to the queue, in order. The bound is
// not enforced here: held entries were bounded by contacts, and dropping
// them would lose the latest presence.
func (s *Session) flushHeldLocked() {
	for _, h := range s.held {
		s.outSeq++
		s.queue = append(s.queue, entry{el: h.el, seq: s.outSeq})
	}
	s.held = nil
}

// Asleep reports whether a stanza queued now would not reach a client the
// user looks at: the connection is gone and the session waits for a
// XEP-0198 resumption (hibernated), or the client said it is in the
// background (XEP-0352 inactive). A XEP-0357 push wakes such a client.
func (s *Session) Asleep() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w == nil || s.inactive
}

// Inactive reports whether the client said it is in the background
// (XEP-0352).
func (s *Session) Inactive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inactive
}

// Detached reports whether no connection is attached (the session waits
// for a resumption).
func (s *Session) Detached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w == nil
}
