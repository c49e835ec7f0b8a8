package session

import (
	"errors"
	"sync"
	"testing"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// fakeWriter records what the session writes; fail makes writes fail.
type fakeWriter struct {
	mu     sync.Mutex
	got    []*xmlstream.Element
	fail   bool
	closed *stanza.StreamError
	n      chan struct{}
}

func newFakeWriter() *fakeWriter { return &fakeWriter{n: make(chan struct{}, 100)} }

func (w *fakeWriter) Write(els []*xmlstream.Element) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail {
		return errors.New("broken pipe")
	}
	w.got = append(w.got, els...)
	w.n <- struct{}{}
	return nil
}

func (w *fakeWriter) Close(se *stanza.StreamError) {
	w.mu.Lock()
	w.closed = se
	w.mu.Unlock()
}

// waitFor waits until the writer has n elements named name.
func (w *fakeWriter) waitFor(t *testing.T, name string, n int) []*xmlstream.Element {
	t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		w.mu.Lock()
		var out []*xmlstream.Element
		for _, e := range w.got {
			if e.Name == name {
				out = append(out, e)
			}
		}
		w.mu.Unlock()
		if len(out) >= n {
			return out
		}
		select {
		case <-w.n:
		case <-deadline:
			t.Fatalf("waited for %d <%s/>, have %d", n, name, len(out))
		}
	}
}

func msg(id string) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "message", "id", id)
}

func newTest(max int, h Hooks) *Session {
	return New("s1", jid.MustParse("bob@localhost/phone"), max, h)
}

func TestWriteWithoutSMDeliversAndReportsOffline(t *testing.T) {
	var mu sync.Mutex
	var delivered []int64
	s := newTest(10, Hooks{Delivered: func(_ *Session, seqs []int64) {
		mu.Lock()
		delivered = append(delivered, seqs...)
		mu.Unlock()
	}})
	w := newFakeWriter()
	s.Attach(w)
	defer s.Detach()
	if err := s.SendOffline(msg("a"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Send(msg("b")); err != nil {
		t.Fatal(err)
	}
	got := w.waitFor(t, "message", 2)
	if got[0].Attr("id") != "a" || got[1].Attr("id") != "b" {
		t.Fatalf("order: %v %v", got[0], got[1])
	}
	// Without SM writing is delivery: nothing stays pending.
	deadline := time.Now().Add(time.Second)
	for len(s.TakePending()) != 0 || func() bool { mu.Lock(); defer mu.Unlock(); return len(delivered) == 0 }() {
		if time.Now().After(deadline) {
			t.Fatalf("offline seq not reported delivered: %v", delivered)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if delivered[0] != 7 {
		t.Fatalf("delivered = %v, want [7]", delivered)
	}
}

func TestSMKeepsUntilAck(t *testing.T) {
	s := newTest(10, Hooks{})
	w := newFakeWriter()
	s.Attach(w)
	defer s.Detach()
	s.EnableSM(true)
	for _, id := range []string{"1", "2", "3"} {
		if err := s.Send(msg(id)); err != nil {
			t.Fatal(err)
		}
	}
	w.waitFor(t, "message", 3)
	w.waitFor(t, "r", 1)
	seqs, err := s.Ack(2)
	if err != nil || len(seqs) != 0 {
		t.Fatalf("Ack(2) = %v, %v", seqs, err)
	}
	if _, err := s.Ack(5); !errors.Is(err, ErrHandledTooHigh) {
		t.Fatalf("Ack(5) err = %v, want ErrHandledTooHigh", err)
	}
	p := s.TakePending()
	if len(p) != 1 || p[0].El.Attr("id") != "3" {
		t.Fatalf("pending = %v, want message 3 only", p)
	}
	if err := s.Send(msg("4")); !errors.Is(err, ErrClosed) {
		t.Fatalf("send after TakePending: %v, want ErrClosed", err)
	}
}

func TestResumeRewritesUnacked(t *testing.T) {
	s := newTest(10, Hooks{})
	w1 := newFakeWriter()
	s.Attach(w1)
	s.EnableSM(true)
	s.Send(msg("1"))
	s.Send(msg("2"))
	w1.waitFor(t, "message", 2)
	s.Detach()
	s.Send(msg("3")) // queued while hibernated
	if _, err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
	w2 := newFakeWriter()
	s.Attach(w2)
	defer s.Detach()
	got := w2.waitFor(t, "message", 2)
	if got[0].Attr("id") != "2" || got[1].Attr("id") != "3" {
		t.Fatalf("resumed stream got %s,%s; want 2,3", got[0].Attr("id"), got[1].Attr("id"))
	}
}

func TestQueueBoundCutsSlowClient(t *testing.T) {
	overflowed := make(chan struct{}, 1)
	s := newTest(3, Hooks{Overflow: func(*Session) { overflowed <- struct{}{} }})
	w := newFakeWriter()
	s.Attach(w)
	defer s.Detach()
	s.EnableSM(true) // nothing is acked, so the queue only grows
	for i := 0; i < 3; i++ {
		if err := s.Send(msg("x")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Send(msg("y")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("4th send: %v, want ErrQueueFull", err)
	}
	select {
	case <-overflowed:
	case <-time.After(time.Second):
		t.Fatal("overflow hook not called")
	}
	if p := s.TakePending(); len(p) != 3 {
		t.Fatalf("pending after overflow = %d, want 3 (nothing dropped)", len(p))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed == nil || w.closed.Condition != "policy-violation" {
		t.Fatalf("connection closed with %v, want policy-violation", w.closed)
	}
}

func TestFailedWriteLosesNothing(t *testing.T) {
	s := newTest(10, Hooks{})
	w := newFakeWriter()
	w.fail = true
	s.Attach(w)
	s.Send(msg("1"))
	time.Sleep(50 * time.Millisecond)
	s.Detach()
	if p := s.TakePending(); len(p) != 1 {
		t.Fatalf("pending after failed write = %d, want 1", len(p))
	}
}

func TestEnableSMRenumbersQueued(t *testing.T) {
	s := newTest(10, Hooks{})
	s.Send(msg("early")) // queued before SM, not yet written (no writer)
	s.EnableSM(false)
	s.Send(msg("late"))
	if _, err := s.Ack(2); err != nil {
		t.Fatalf("client counts both stanzas after <enabled/>: %v", err)
	}
	if p := s.TakePending(); len(p) != 0 {
		t.Fatalf("pending = %d after acking everything", len(p))
	}
}

func TestInactiveHoldsNoiseUntilRealMessage(t *testing.T) {
	s := newTest(100, Hooks{})
	w := newFakeWriter()
	s.Attach(w)
	defer s.Detach()
	s.SetInactive(true)
	pres := func(from, show string) *xmlstream.Element {
		p := xmlstream.New(xmlstream.NSClient, "presence", "from", from)
		if show != "" {
			p.Append(xmlstream.New(xmlstream.NSClient, "show").AppendText(show))
		}
		return p
	}
	typing := xmlstream.New(xmlstream.NSClient, "message", "from", "carol@x/y", "type", "chat").
		Append(xmlstream.New(nsChatStates, "composing"))
	s.Send(pres("bob@x/a", "away"))
	s.Send(pres("carol@x/y", ""))
	s.Send(typing)
	s.Send(pres("bob@x/a", "dnd")) // replaces bob's first presence
	time.Sleep(50 * time.Millisecond)
	w.mu.Lock()
	n := len(w.got)
	w.mu.Unlock()
	if n != 0 {
		t.Fatalf("inactive client got %d stanzas of noise", n)
	}
	// A real message flushes the held noise first, coalesced.
	s.Send(msg("real"))
	got := w.waitFor(t, "message", 2)
	all := w.waitFor(t, "presence", 2)
	if all[0].ChildText(xmlstream.NSClient, "show") != "dnd" {
		t.Fatalf("bob's held presence = %v, want the latest (dnd)", all[0])
	}
	if got[len(got)-1].Attr("id") != "real" {
		t.Fatalf("the real message must come after the held noise: %v", got)
	}
	w.mu.Lock()
	total := len(w.got)
	w.mu.Unlock()
	if total != 4 { // 2 presences, typing, real
		t.Fatalf("wrote %d stanzas, want 4 (coalesced)", total)
	}
}

func TestActiveFlushesHeld(t *testing.T) {
	s := newTest(100, Hooks{})
	w := newFakeWriter()
	s.Attach(w)
	defer s.Detach()
	s.SetInactive(true)
	s.Send(xmlstream.New(xmlstream.NSClient, "presence", "from", "bob@x/a"))
	time.Sleep(20 * time.Millisecond)
	s.SetInactive(false)
	w.waitFor(t, "presence", 1)
}

// recordCounter is a Record that counts its Delivered calls.
type recordCounter struct{ n int }

func (r *recordCounter) Delivered() { r.n++ }

// A client answers <r/> in stream order: its <a/> covers only what came
// before that <r/>. What was written after it must be asked for again,
// or an offline page stays unacknowledged forever and the drain stalls.
func TestAckAsksAgainForWhatFollowedTheRequest(t *testing.T) {
	s := newTest(1000, Hooks{})
	w := newFakeWriter()
	s.EnableSM(true)
	s.Attach(w)
	s.Send(msg("1"))
	w.waitFor(t, "r", 1) // 1, <r/>
	// More stanzas while the first <r/> is outstanding: written without
	// one of their own.
	s.Send(msg("2"))
	s.Send(msg("3"))
	w.waitFor(t, "message", 3)
	if _, err := s.Ack(1); err != nil { // the answer to the first <r/>
		t.Fatal(err)
	}
	w.waitFor(t, "r", 2)
	if _, err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	// Nothing unacknowledged, and an ack that makes no progress: no
	// further request (a client sending unsolicited acks gets no ping-pong).
	if _, err := s.Ack(3); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	if rs := w.waitFor(t, "r", 2); len(rs) != 2 {
		t.Fatalf("%d <r/> written, want 2", len(rs))
	}
}

// A record queued with a message is told once, when the client acks it,
// and a message with a record is never held back by CSI.
func TestDurableRecordToldOnAck(t *testing.T) {
	s := newTest(10, Hooks{})
	w := newFakeWriter()
	s.EnableSM(true)
	s.Attach(w)
	rec := &recordCounter{}
	if err := s.SendDurable(msg("1"), rec); err != nil {
		t.Fatal(err)
	}
	w.waitFor(t, "message", 1)
	if rec.n != 0 {
		t.Fatal("told before the ack")
	}
	s.Ack(1)
	if rec.n != 1 {
		t.Fatalf("told %d times after the ack, want 1", rec.n)
	}
	// Ending the session hands out records with their messages, so the
	// caller knows they are stored already.
	rec2 := &recordCounter{}
	s.SendDurable(msg("2"), rec2)
	if p := s.TakePending(); len(p) != 1 || p[0].Rec != rec2 {
		t.Fatalf("pending = %+v, want message 2 with its record", p)
	}
}
