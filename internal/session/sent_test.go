package session

import (
	"sync/atomic"
	"testing"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/xmlstream"
)

// progressWriter is a fakeWriter that counts 100 bytes a stanza and whose
// peer has acknowledged acked of them.
type progressWriter struct {
	*fakeWriter
	written, acked atomic.Int64
}

func (w *progressWriter) Write(els []*xmlstream.Element) error {
	err := w.fakeWriter.Write(els)
	if err == nil {
		w.written.Add(int64(100 * len(els)))
	}
	return err
}
func (w *progressWriter) Written() int64       { return w.written.Load() }
func (w *progressWriter) Acked() (int64, bool) { return w.acked.Load(), true }

type countRec struct{ n *atomic.Int32 }

func (r countRec) Delivered() { r.n.Add(1) }

// Without SM, a message written but not acknowledged by the peer's TCP is
// still the session's: the session's end returns it for the offline store,
// and the timer delivers what the peer acknowledged meanwhile.
func TestUnackedBytesStayPending(t *testing.T) {
	var delivered atomic.Int32
	var seqs atomic.Int32
	s := New("id", jid.MustParse("bob@localhost/phone"), 100, Hooks{Delivered: func(_ *Session, q []int64) { seqs.Add(int32(len(q))) }})
	w := &progressWriter{fakeWriter: newFakeWriter()}
	s.Attach(w)
	for i := 0; i < 4; i++ {
		if err := s.SendDurable(msg("m"), countRec{&delivered}); err != nil {
			t.Fatal(err)
		}
		w.waitFor(t, "message", i+1)
	}
	s.SendOffline(msg("stored"), 7)
	w.waitFor(t, "message", 5)
	w.acked.Store(200) // the peer has the first two
	deadline := time.Now().Add(2 * time.Second)
	for delivered.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := delivered.Load(); got != 2 {
		t.Fatalf("delivered %d records once the peer acknowledged two, want 2", got)
	}
	if h := len(s.Held()); h != 2 {
		t.Fatalf("Held = %d records, want the 2 unacknowledged", h)
	}
	if !s.HoldsOffline(7) || s.OfflineOutstanding() != 1 {
		t.Fatal("the stored message written but unacknowledged no longer counts as held")
	}
	p := s.TakePending()
	if len(p) != 3 || p[0].Rec == nil || p[2].OfflineSeq != 7 {
		t.Fatalf("pending = %+v, want the 2 unacknowledged records then stored message 7", p)
	}
	if seqs.Load() != 0 {
		t.Fatal("an unacknowledged stored message was reported delivered")
	}
}
