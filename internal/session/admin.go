package session

import "net/netip"

// Remote is the client's IP address on the connection the session is
// attached to, or the zero Addr while hibernated or when the transport
// does not know it.
func (s *Session) Remote() netip.Addr {
	s.mu.Lock()
	w := s.w
	s.mu.Unlock()
	if r, ok := w.(interface{ Remote() netip.Addr }); ok {
		return r.Remote()
	}
	return netip.Addr{}
}

// FirstLogin reports true the first time it is called on the session and
// false after: the message of the day goes out once per login, not at
// every return from unavailable.
func (s *Session) FirstLogin() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.greeted
	s.greeted = true
	return first
}
