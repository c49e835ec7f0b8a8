package server

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// sink is a session.Writer that keeps what it is given.
type sink struct {
	mu      sync.Mutex
	els     []*xmlstream.Element
	n       int
	discard bool // count only (benchmarks)
}

func (s *sink) Write(els []*xmlstream.Element) error {
	s.mu.Lock()
	if !s.discard {
		s.els = append(s.els, els...)
	}
	s.n += len(els)
	s.mu.Unlock()
	return nil
}
func (s *sink) Close(*stanza.StreamError) {}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

func (s *sink) take() []*xmlstream.Element {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.els
	s.els = nil
	return out
}

func newServer(t testing.TB) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob", "carol"} {
		if err := st.CreateUser(context.Background(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	return New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

type conn struct {
	s    *session.Session
	sink *sink
}

func connect(t testing.TB, srv *Server, full string) *conn {
	t.Helper()
	s := session.New(NewID(), jid.MustParse(full), 10000, srv.Hooks())
	w := &sink{}
	s.Attach(w)
	t.Cleanup(s.Detach)
	srv.Bound(context.Background(), s)
	return &conn{s: s, sink: w}
}

func (c *conn) send(t testing.TB, srv *Server, el *xmlstream.Element) {
	srv.Handle(context.Background(), c.s, el)
}

// wait returns what the connection received once it stops changing.
func (c *conn) wait() []*xmlstream.Element {
	time.Sleep(30 * time.Millisecond)
	return c.sink.take()
}

func presence(attrs ...string) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "presence", attrs...)
}

func rosterItem(t *testing.T, srv *Server, user, contact string) store.RosterItem {
	t.Helper()
	it, err := srv.store.RosterItem(context.Background(), user, contact)
	if err != nil {
		t.Fatalf("roster item %s/%s: %v", user, contact, err)
	}
	return it
}

func TestSubscriptionLifecycle(t *testing.T) {
	srv := newServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/phone")
	alice.send(t, srv, presence())
	bob.send(t, srv, presence())
	alice.wait()
	bob.wait()

	alice.send(t, srv, presence("to", "bob@localhost", "type", "subscribe"))
	if it := rosterItem(t, srv, "alice", "bob@localhost"); it.Subscription != store.SubNone || !it.PendingOut {
		t.Fatalf("alice's item after subscribe: %+v", it)
	}
	got := bob.wait()
	if len(got) != 1 || got[0].Attr("type") != "subscribe" || got[0].Attr("from") != "alice@localhost" {
		t.Fatalf("bob got %v, want the subscribe request", got)
	}
	bob.send(t, srv, presence("to", "alice@localhost", "type", "subscribed"))
	if it := rosterItem(t, srv, "alice", "bob@localhost"); it.Subscription != store.SubTo || it.PendingOut {
		t.Fatalf("alice's item after approval: %+v", it)
	}
	if it := rosterItem(t, srv, "bob", "alice@localhost"); it.Subscription != store.SubFrom {
		t.Fatalf("bob's item after approval: %+v", it)
	}
	// Alice learns bob is subscribed-to and sees his presence.
	var sawSubscribed, sawPresence bool
	for _, el := range alice.wait() {
		if el.Name == "presence" && el.Attr("type") == "subscribed" {
			sawSubscribed = true
		}
		if el.Name == "presence" && el.Attr("type") == "" && el.Attr("from") == "bob@localhost/phone" {
			sawPresence = true
		}
	}
	if !sawSubscribed || !sawPresence {
		t.Fatalf("alice: subscribed=%v presence=%v", sawSubscribed, sawPresence)
	}
	// Bob goes offline: alice sees unavailable, and may ask last activity.
	bob.send(t, srv, presence("type", "unavailable"))
	var sawUnavail bool
	for _, el := range alice.wait() {
		if el.Attr("type") == "unavailable" && el.Attr("from") == "bob@localhost/phone" {
			sawUnavail = true
		}
	}
	if !sawUnavail {
		t.Fatal("alice did not see bob go unavailable")
	}
	// Unsubscribe: both sides drop the subscription.
	alice.send(t, srv, presence("to", "bob@localhost", "type", "unsubscribe"))
	if it := rosterItem(t, srv, "alice", "bob@localhost"); it.Subscription != store.SubNone {
		t.Fatalf("alice after unsubscribe: %+v", it)
	}
	if _, err := srv.store.RosterItem(context.Background(), "bob", "alice@localhost"); err == nil {
		if it := rosterItem(t, srv, "bob", "alice@localhost"); it.Subscription != store.SubNone {
			t.Fatalf("bob after alice's unsubscribe: %+v", it)
		}
	}
}

func TestPendingSubscriptionRedeliveredAtLogin(t *testing.T) {
	srv := newServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	alice.send(t, srv, presence("to", "carol@localhost", "type", "subscribe"))
	carol := connect(t, srv, "carol@localhost/x")
	carol.send(t, srv, presence())
	var got bool
	for _, el := range carol.wait() {
		if el.Attr("type") == "subscribe" && el.Attr("from") == "alice@localhost" {
			got = true
		}
	}
	if !got {
		t.Fatal("pending subscription request not delivered at login")
	}
}

func TestLastActivityOnlyForSubscribers(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	srv.store.PutRosterItem(ctx, "bob", store.RosterItem{Contact: "alice@localhost", Subscription: store.SubFrom, InRoster: true})
	srv.store.SetLastActivity(ctx, "bob", time.Now().Add(-90*time.Second), "gone fishing")
	alice := connect(t, srv, "alice@localhost/pc")
	carol := connect(t, srv, "carol@localhost/pc")
	q := func() *xmlstream.Element {
		return xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "l1", "to", "bob@localhost").
			Append(xmlstream.New(NSLast, "query"))
	}
	alice.send(t, srv, q())
	r := alice.wait()
	if len(r) != 1 || r[0].Attr("type") != "result" {
		t.Fatalf("alice got %v", r)
	}
	res := r[0].Child(NSLast, "query")
	if secs, err := strconv.Atoi(res.Attr("seconds")); err != nil || secs < 89 || secs > 200 || res.Text() != "gone fishing" {
		t.Fatalf("last activity = %v", res)
	}
	carol.send(t, srv, q())
	r = carol.wait()
	if len(r) != 1 || r[0].Attr("type") != "error" || r[0].Child("", "error").Child(stanza.NSStanzas, "forbidden") == nil {
		t.Fatalf("carol got %v, want forbidden", r)
	}
}

func TestRosterSetGetRemove(t *testing.T) {
	srv := newServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	set := xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "s1").Append(
		xmlstream.New(NSRoster, "query").Append(
			xmlstream.New(NSRoster, "item", "jid", "bob@localhost", "name", "Bob").Append(
				xmlstream.New(NSRoster, "group").AppendText("Friends"))))
	get := xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "g1").Append(xmlstream.New(NSRoster, "query"))
	alice.send(t, srv, get) // makes the session interested in pushes
	alice.wait()
	alice.send(t, srv, set)
	var push, result bool
	for _, el := range alice.wait() {
		if el.Attr("type") == "set" && el.Child(NSRoster, "query").Child(NSRoster, "item").Attr("name") == "Bob" {
			push = true
		}
		if el.Attr("type") == "result" && el.Attr("id") == "s1" {
			result = true
		}
	}
	if !push || !result {
		t.Fatalf("push=%v result=%v", push, result)
	}
	alice.send(t, srv, get)
	r := alice.wait()
	items := r[0].Child(NSRoster, "query").Elements()
	if len(items) != 1 || items[0].ChildText(NSRoster, "group") != "Friends" || items[0].Attr("subscription") != "none" {
		t.Fatalf("roster = %v", r[0])
	}
	rm := xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "s2").Append(
		xmlstream.New(NSRoster, "query").Append(xmlstream.New(NSRoster, "item", "jid", "bob@localhost", "subscription", "remove")))
	alice.send(t, srv, rm)
	alice.wait()
	if _, err := srv.store.RosterItem(context.Background(), "alice", "bob@localhost"); err == nil {
		t.Fatal("item still there after remove")
	}
}

// BenchmarkRouteMessage measures the routing path: one chat message from a
// bound session through Handle (from stamping, stanza-id, the delivery
// decision) into the recipient's queue and out through its writer.
func BenchmarkRouteMessage(b *testing.B) {
	srv := newServer(b)
	alice := connect(b, srv, "alice@localhost/pc")
	bob := connect(b, srv, "bob@localhost/phone")
	bob.sink.discard = true
	srv.Handle(context.Background(), bob.s, presence())
	to := "bob@localhost"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m := xmlstream.New(xmlstream.NSClient, "message", "to", to, "type", "chat", "id", "x").
			Append(xmlstream.New(xmlstream.NSClient, "body").AppendText("hello, this is a typical short message"))
		srv.Handle(context.Background(), alice.s, m)
		if i%1000 == 999 {
			// Stay within bob's queue bound: a real sender is paced by
			// its network; here the writer must keep up or bob is cut.
			for bob.sink.count() < i-2000 {
				runtime.Gosched()
			}
		}
	}
	b.StopTimer()
	deadline := time.Now().Add(5 * time.Second)
	for {
		bob.sink.mu.Lock()
		n := bob.sink.n
		bob.sink.mu.Unlock()
		if n >= b.N || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
	if n, _ := srv.store.CountOffline(context.Background(), "bob"); n > 0 {
		b.Fatalf("%d messages went offline: bob's writer fell behind", n)
	}
}

func carbonsOn(t *testing.T, srv *Server, c *conn) {
	c.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "cc").Append(xmlstream.New(NSCarbons, "enable")))
	if r := c.wait(); len(r) != 1 || r[0].Attr("type") != "result" {
		t.Fatalf("enable carbons: %v", r)
	}
}

func TestCarbons(t *testing.T) {
	srv := newServer(t)
	pc := connect(t, srv, "alice@localhost/pc")
	phone := connect(t, srv, "alice@localhost/phone")
	bob := connect(t, srv, "bob@localhost/x")
	for _, c := range []*conn{pc, phone, bob} {
		c.send(t, srv, presence())
	}
	pc.wait()
	phone.wait()
	bob.wait()
	carbonsOn(t, srv, phone)

	// Received: bob writes to alice's pc; the phone gets a copy.
	bob.send(t, srv, xmlstream.New(xmlstream.NSClient, "message", "to", "alice@localhost/pc", "type", "chat", "id", "r1").
		Append(xmlstream.New(xmlstream.NSClient, "body").AppendText("hi pc")))
	got := phone.wait()
	if len(got) != 1 {
		t.Fatalf("phone got %v, want one received carbon", got)
	}
	fwd := got[0].Child(NSCarbons, "received").Child(nsForward, "forwarded").Child(xmlstream.NSClient, "message")
	if got[0].Attr("from") != "alice@localhost" || fwd.Attr("id") != "r1" || fwd.Attr("from") != "bob@localhost/x" {
		t.Fatalf("received carbon = %v", got[0])
	}
	// Sent: the pc writes to bob; the phone gets a copy, the pc none.
	pc.wait()
	pc.send(t, srv, xmlstream.New(xmlstream.NSClient, "message", "to", "bob@localhost", "type", "chat", "id", "s1").
		Append(xmlstream.New(xmlstream.NSClient, "body").AppendText("hi bob")))
	got = phone.wait()
	if len(got) != 1 || got[0].Child(NSCarbons, "sent").Child(nsForward, "forwarded").Child(xmlstream.NSClient, "message").Attr("id") != "s1" {
		t.Fatalf("phone got %v, want one sent carbon", got)
	}
	if got := pc.wait(); len(got) != 0 {
		t.Fatalf("the sender got %v", got)
	}
	// Private messages are not copied.
	pc.send(t, srv, xmlstream.New(xmlstream.NSClient, "message", "to", "bob@localhost", "type", "chat", "id", "p1").
		Append(xmlstream.New(xmlstream.NSClient, "body").AppendText("secret"), xmlstream.New(NSCarbons, "private")))
	if got := phone.wait(); len(got) != 0 {
		t.Fatalf("private message copied: %v", got)
	}
	// Disco advertises the feature.
	pc.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "d", "to", "localhost").Append(xmlstream.New(NSDiscoInfo, "query")))
	found := false
	for _, f := range pc.wait()[0].Child(NSDiscoInfo, "query").Elements() {
		if f.Attr("var") == NSCarbons {
			found = true
		}
	}
	if !found {
		t.Fatal("disco lacks urn:xmpp:carbons:2")
	}
}
