package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// memOffline is an in-memory Offline for routing tests.
type memOffline struct {
	mu    sync.Mutex
	seq   int64
	msgs  map[jid.JID][]Stored
	quota int
}

func newMem() *memOffline { return &memOffline{msgs: map[jid.JID][]Stored{}} }

func (m *memOffline) Storable(el *xmlstream.Element) bool {
	return el.Child("", "body") != nil
}

// Write stores at once: the record is settled when it is returned.
func (m *memOffline) Write(u jid.JID, el *xmlstream.Element, quota bool) Write {
	m.mu.Lock()
	defer m.mu.Unlock()
	if quota && m.quota > 0 && len(m.msgs[u]) >= m.quota {
		return &memWrite{err: store.ErrQuota}
	}
	m.seq++
	m.msgs[u] = append(m.msgs[u], Stored{Seq: m.seq, El: el})
	return &memWrite{m: m, u: u, seq: m.seq}
}

// Hold stores at once, as Write without a quota.
func (m *memOffline) Hold(u jid.JID, el *xmlstream.Element) Write { return m.Write(u, el, false) }

// memWrite is a settled memOffline write; Delivered deletes it.
type memWrite struct {
	m   *memOffline
	u   jid.JID
	seq int64
	err error
}

func (w *memWrite) Wait(context.Context) error         { return w.err }
func (w *memWrite) Seq(context.Context) (int64, error) { return w.seq, w.err }
func (w *memWrite) Delivered() {
	if w.m == nil {
		return
	}
	w.m.mu.Lock()
	defer w.m.mu.Unlock()
	ms := w.m.msgs[w.u]
	for i, s := range ms {
		if s.Seq == w.seq {
			w.m.msgs[w.u] = append(ms[:i:i], ms[i+1:]...)
			return
		}
	}
}

func (m *memOffline) Load(ctx context.Context, u jid.JID, limit int) ([]Stored, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.msgs[u]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return append([]Stored(nil), out...), nil
}

func (m *memOffline) ids(u jid.JID) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for _, s := range m.msgs[u] {
		out = append(out, s.El.Attr("id"))
	}
	return out
}

func exists(ctx context.Context, user string) (bool, error) { return user != "nobody", nil }

func chat(id string) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "message", "type", "chat", "id", id).
		Append(xmlstream.New(xmlstream.NSClient, "body").AppendText("hi"))
}

func bind(t *testing.T, r *Router, full string, prio int, available bool) *session.Session {
	t.Helper()
	s := session.New(full, jid.MustParse(full), 100, session.Hooks{})
	r.Bind(s)
	if available {
		s.SetPresence(xmlstream.New(xmlstream.NSClient, "presence"), true, prio)
	}
	return s
}

func pendingIDs(s *session.Session) []string {
	var out []string
	for _, p := range s.TakePending() {
		out = append(out, p.El.Attr("id"))
	}
	return out
}

func eq(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

var bob = jid.MustParse("bob@localhost")

func TestBareJIDGoesToHighestPriority(t *testing.T) {
	r := New(newMem(), exists)
	hi := bind(t, r, "bob@localhost/hi", 5, true)
	lo := bind(t, r, "bob@localhost/lo", 1, true)
	neg := bind(t, r, "bob@localhost/neg", -1, true)
	if err := r.DeliverMessage(context.Background(), bob, chat("m1")); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(hi); !eq(got, []string{"m1"}) {
		t.Errorf("hi got %v", got)
	}
	if got := pendingIDs(lo); len(got) != 0 {
		t.Errorf("lo got %v, want nothing", got)
	}
	if got := pendingIDs(neg); len(got) != 0 {
		t.Errorf("negative priority got %v, want nothing", got)
	}
}

func TestFullJIDReachesNegativePriority(t *testing.T) {
	r := New(newMem(), exists)
	neg := bind(t, r, "bob@localhost/neg", -1, true)
	if err := r.DeliverMessage(context.Background(), jid.MustParse("bob@localhost/neg"), chat("m1")); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(neg); !eq(got, []string{"m1"}) {
		t.Errorf("got %v", got)
	}
}

func TestOfflineAndErrors(t *testing.T) {
	off := newMem()
	off.quota = 2
	r := New(off, exists)
	ctx := context.Background()
	// Only a negative-priority resource: chat goes offline.
	bind(t, r, "bob@localhost/neg", -1, true)
	for _, id := range []string{"1", "2"} {
		if err := r.DeliverMessage(ctx, bob, chat(id)); err != nil {
			t.Fatal(err)
		}
	}
	var se *stanza.Error
	if err := r.DeliverMessage(ctx, bob, chat("3")); !errors.As(err, &se) || se.Condition != "resource-constraint" {
		t.Fatalf("over quota: %v, want resource-constraint", err)
	}
	if err := r.DeliverMessage(ctx, jid.MustParse("nobody@localhost"), chat("x")); !errors.As(err, &se) || se.Condition != "service-unavailable" {
		t.Fatalf("unknown user: %v, want service-unavailable", err)
	}
	typing := xmlstream.New(xmlstream.NSClient, "message", "type", "chat")
	if err := r.DeliverMessage(ctx, jid.MustParse("carol@localhost"), typing); !errors.Is(err, ErrDropped) {
		t.Fatalf("unstorable to offline user: %v, want ErrDropped", err)
	}
	gc := chat("g")
	gc.SetAttr("type", "groupchat")
	if err := r.DeliverMessage(ctx, bob, gc); !errors.As(err, &se) || se.Condition != "service-unavailable" {
		t.Fatalf("groupchat to user: %v", err)
	}
	if got := off.ids(bob); !eq(got, []string{"1", "2"}) {
		t.Fatalf("stored %v", got)
	}
}

// A drain that has queued the store's last page (shorter than DrainPage)
// is over: a live message goes to the session at once, behind the page,
// without waiting for the page's acknowledgement (a client whose acks
// fall short would otherwise hold every later message in the store).
func TestDrainEndsWithTheLastPage(t *testing.T) {
	off := newMem()
	r := New(off, exists)
	ctx := context.Background()
	for _, id := range []string{"1", "2"} {
		r.DeliverMessage(ctx, bob, chat(id))
	}
	s := bind(t, r, "bob@localhost/phone", 0, true)
	if err := r.Drain(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := r.DeliverMessage(ctx, bob, chat("3")); err != nil {
		t.Fatal(err)
	}
	if got := off.ids(bob); !eq(got, []string{"1", "2"}) {
		t.Fatalf("store = %v, want only the drained 1,2 (unacknowledged)", got)
	}
	if got := pendingIDs(s); !eq(got, []string{"1", "2", "3"}) {
		t.Fatalf("session got %v, want 1,2 then the live 3", got)
	}
}

// While a full page is unacknowledged, the store may hold more: a live
// message waits in the store behind them.
func TestDrainKeepsOrderWithLiveMessages(t *testing.T) {
	off := newMem()
	r := New(off, exists)
	ctx := context.Background()
	for i := range DrainPage + 2 {
		r.DeliverMessage(ctx, bob, chat(fmt.Sprint(i)))
	}
	s := session.New("phone", jid.MustParse("bob@localhost/phone"), 10*DrainPage, session.Hooks{})
	r.Bind(s)
	s.SetPresence(xmlstream.New(xmlstream.NSClient, "presence"), true, 0)
	if err := r.Drain(ctx, s); err != nil {
		t.Fatal(err)
	}
	if err := r.DeliverMessage(ctx, bob, chat("live")); err != nil {
		t.Fatal(err)
	}
	if got := off.ids(bob); len(got) != DrainPage+3 || got[DrainPage+2] != "live" {
		t.Fatalf("store = %v, want the %d stored then live", got, DrainPage+2)
	}
	if got := pendingIDs(s); len(got) != DrainPage || got[DrainPage-1] != fmt.Sprint(DrainPage-1) {
		t.Fatalf("session got %v, want the first page", got)
	}
}

func TestUnbindStoresUndelivered(t *testing.T) {
	off := newMem()
	r := New(off, exists)
	ctx := context.Background()
	s := bind(t, r, "bob@localhost/phone", 0, true)
	r.DeliverMessage(ctx, bob, chat("1"))
	r.DeliverMessage(ctx, bob, chat("2"))
	last, err := r.Unbind(ctx, s)
	if err != nil || !last {
		t.Fatalf("Unbind = %v, %v", last, err)
	}
	if got := off.ids(bob); !eq(got, []string{"1", "2"}) {
		t.Fatalf("offline after unbind = %v", got)
	}
	if r.Online(bob) {
		t.Fatal("still online")
	}
}

func TestBindSameResourceReplaces(t *testing.T) {
	r := New(newMem(), exists)
	a := bind(t, r, "bob@localhost/phone", 0, true)
	b := session.New("other", jid.MustParse("bob@localhost/phone"), 10, session.Hooks{})
	if old := r.Bind(b); old != a {
		t.Fatalf("Bind returned %v, want the old session", old)
	}
	if got := r.Session(jid.MustParse("bob@localhost/phone")); got != b {
		t.Fatal("new session not bound")
	}
}

func TestDurableDeliveryKeepsUntilAck(t *testing.T) {
	off := newMem()
	r := New(off, exists)
	r.SetDurable(true)
	ctx := context.Background()
	s := bind(t, r, "bob@localhost/phone", 0, true)
	if err := r.DeliverMessage(ctx, bob, chat("d1")); err != nil {
		t.Fatal(err)
	}
	if got := off.ids(bob); !eq(got, []string{"d1"}) {
		t.Fatalf("store = %v: a durable message is stored before it is acked", got)
	}
	// The session holds it tagged with its store seq: ending the session
	// does not store it twice.
	if _, err := r.Unbind(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := off.ids(bob); !eq(got, []string{"d1"}) {
		t.Fatalf("store after unbind = %v, want d1 once", got)
	}
	// A drain meeting the same stored message in the queue does not
	// queue it twice.
	s2 := bind(t, r, "bob@localhost/laptop", 0, true)
	r.Drain(ctx, s2)
	if err := s2.SendOffline(chat("d1"), 1); err != nil {
		t.Fatal(err)
	}
	if p := s2.TakePending(); len(p) != 1 {
		t.Fatalf("queued %d copies, want 1", len(p))
	}
}

func TestDurableDeliveryToFullJID(t *testing.T) {
	off := newMem()
	r := New(off, exists)
	r.SetDurable(true)
	s := bind(t, r, "bob@localhost/phone", 0, true)
	if err := r.DeliverMessage(context.Background(), jid.MustParse("bob@localhost/phone"), chat("f1")); err != nil {
		t.Fatal(err)
	}
	if got := off.ids(bob); !eq(got, []string{"f1"}) {
		t.Fatalf("store = %v: a durable message to a full JID is stored too", got)
	}
	if p := s.TakePending(); len(p) != 1 || p[0].Rec == nil {
		t.Fatalf("pending = %+v, want the message with its store record", p)
	}
}

// A message another node stored and sends (durable delivery) while the
// store is drained to the session waits for the drain, so it cannot
// overtake older stored ones — even when it arrives between the session
// becoming available and the first drain. Once the drain has found the
// store empty, such messages are queued at once.
func TestSendStoredWaitsForTheDrain(t *testing.T) {
	off := newMem()
	r := New(off, exists)
	ctx := context.Background()
	for _, id := range []string{"1", "2"} {
		r.DeliverMessage(ctx, bob, chat(id))
	}
	s := bind(t, r, "bob@localhost/phone", 0, true)
	r.PrepareDrain(s) // announced available; the drain has not run yet
	seq, _ := off.Write(bob, chat("3"), true).Seq(ctx)
	if err := r.SendStored(s, chat("3"), seq); err != nil {
		t.Fatal(err)
	}
	if n := s.OfflineOutstanding(); n != 0 {
		t.Fatalf("a stored message overtook the drain (%d queued)", n)
	}
	if err := r.Drain(ctx, s); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(s); !eq(got, []string{"1", "2", "3"}) {
		t.Fatalf("drained %v, want 1,2,3 in order", got)
	}

	// With nothing stored the drain ends at once, and stored messages go
	// straight to the session.
	off2 := newMem()
	r2 := New(off2, exists)
	s2 := bind(t, r2, "bob@localhost/phone", 0, true)
	r2.PrepareDrain(s2)
	if err := r2.Drain(ctx, s2); err != nil {
		t.Fatal(err)
	}
	seq, _ = off2.Write(bob, chat("4"), true).Seq(ctx)
	if err := r2.SendStored(s2, chat("4"), seq); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(s2); !eq(got, []string{"4"}) {
		t.Fatalf("after the drain: %v, want 4", got)
	}
}

// Cluster race: another node stored 59 for bob before it saw his new
// session (so it did not send it), and his drain had already found the
// store empty; then 60 arrives from that node. The store decides the
// order: bob gets 59 before 60, and 59 is not left stuck in the store.
func TestSendStoredJustAfterTheDrainKeepsOrder(t *testing.T) {
	off := newMem()
	r := New(off, exists)
	ctx := context.Background()
	s := bind(t, r, "bob@localhost/phone", 0, true)
	r.PrepareDrain(s)
	if err := r.Drain(ctx, s); err != nil {
		t.Fatal(err)
	}
	off.Write(bob, chat("59"), true) // stored by the other node, not sent
	seq, _ := off.Write(bob, chat("60"), true).Seq(ctx)
	if err := r.SendStored(s, chat("60"), seq); err != nil {
		t.Fatal(err)
	}
	if got := pendingIDs(s); !eq(got, []string{"59", "60"}) {
		t.Fatalf("queued %v, want 59 then 60", got)
	}
}
