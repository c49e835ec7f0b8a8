package session

import (
	"testing"
	"time"
	"unsafe"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// blockingWriter blocks every write until release is closed.
type blockingWriter struct {
	started chan struct{}
	release chan struct{}
}

func (w *blockingWriter) Write([]*xmlstream.Element) error {
	select {
	case w.started <- struct{}{}:
	default:
	}
	<-w.release
	return nil
}

func (w *blockingWriter) Close(*stanza.StreamError) {}

// Hooks.Congested fires for a write blocked CongestedAfter, not for a
// quick one; between writes the session holds no timer (issue 19).
func TestCongestedTimerPerWrite(t *testing.T) {
	congested := make(chan struct{}, 4)
	s := New("id", jid.MustParse("a@example.com/r"), 100, Hooks{Congested: func(*Session) { congested <- struct{}{} }})
	fw := newFakeWriter()
	s.Attach(fw)
	if err := s.Send(xmlstream.New(xmlstream.NSClient, "message")); err != nil {
		t.Fatal(err)
	}
	fw.waitFor(t, "message", 1)
	waitIdle(t, s)
	if s.congT != nil {
		t.Fatal("the session keeps a timer after its write")
	}
	select {
	case <-congested:
		t.Fatal("a quick write was reported congested")
	default:
	}

	bw := &blockingWriter{started: make(chan struct{}, 1), release: make(chan struct{})}
	s.Attach(bw)
	if err := s.Send(xmlstream.New(xmlstream.NSClient, "message")); err != nil {
		t.Fatal(err)
	}
	<-bw.started
	select {
	case <-congested:
	case <-time.After(CongestedAfter + 10*time.Second):
		t.Fatal("a write blocked past CongestedAfter was not reported")
	}
	close(bw.release)
	waitIdle(t, s)
	if s.congT != nil {
		t.Fatal("the session keeps a timer after its write")
	}
}

// waitIdle waits until the session's writer goroutine has exited.
func waitIdle(t *testing.T, s *Session) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		w := s.writing
		s.mu.Unlock()
		if !w {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the writer did not finish")
		}
		time.Sleep(time.Millisecond)
	}
}

// Every idle connection keeps one Session: it must stay within Go's
// 448-byte size class (it was 488 bytes, in the 512 class, before issue
// 19). A field added here costs every idle session; put rare state behind
// a pointer instead.
func TestSessionSize(t *testing.T) {
	if n := unsafe.Sizeof(Session{}); n > 448 {
		t.Fatalf("Session is %d bytes, more than the 448-byte size class", n)
	}
}
