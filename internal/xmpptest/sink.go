package xmpptest

import (
	"sync"
	"testing"
	"time"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// Sink is a session.Writer that keeps what it is given, for tests that
// drive sessions in process, without a connection.
type Sink struct {
	mu  sync.Mutex
	els []*xmlstream.Element
}

func (s *Sink) Write(els []*xmlstream.Element) error {
	s.mu.Lock()
	s.els = append(s.els, els...)
	s.mu.Unlock()
	return nil
}

func (s *Sink) Close(*stanza.StreamError) {}

// Elements returns what was received so far.
func (s *Sink) Elements() []*xmlstream.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*xmlstream.Element(nil), s.els...)
}

// Take returns what was received so far and forgets it.
func (s *Sink) Take() []*xmlstream.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.els
	s.els = nil
	return out
}

// TakeFirst removes and returns the first received element matching ok,
// or nil.
func (s *Sink) TakeFirst(ok func(*xmlstream.Element) bool) *xmlstream.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, el := range s.els {
		if ok(el) {
			s.els = append(s.els[:i], s.els[i+1:]...)
			return el
		}
	}
	return nil
}

// WaitFor returns the first received element matching ok, waiting up to
// 5 s for it; what names it in the failure.
func (s *Sink) WaitFor(t testing.TB, what string, ok func(*xmlstream.Element) bool) *xmlstream.Element {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, el := range s.Elements() {
			if ok(el) {
				return el
			}
		}
	}
	t.Fatalf("never received %s", what)
	return nil
}
