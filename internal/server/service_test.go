package server

import (
	"context"
	"sync"
	"testing"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/xmlstream"
)

type fakeService struct {
	mu  sync.Mutex
	got []string
}

func (f *fakeService) Handle(ctx context.Context, from jid.JID, el *xmlstream.Element) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, el.Name+" "+el.Attr("type")+" "+from.String()+" -> "+el.Attr("to"))
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 200; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// TestServiceSeam: stanzas to a registered service domain reach it instead
// of remote-server-not-found, the session's end leaves its rooms, and
// disco#items on the server lists the service.
func TestServiceSeam(t *testing.T) {
	srv := newServer(t)
	f := &fakeService{}
	srv.RegisterService("groups.localhost", "Groups", f)
	a := connect(t, srv, "alice@localhost/phone")
	a.send(t, srv, xmlstream.New(xmlstream.NSClient, "presence", "to", "room@groups.localhost/Alice"))
	a.send(t, srv, xmlstream.New(xmlstream.NSClient, "message", "to", "room@groups.localhost", "type", "groupchat"))
	a.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "to", "groups.localhost", "type", "get", "id", "1").
		Append(xmlstream.New(NSDiscoInfo, "query")))
	a.send(t, srv, xmlstream.New(xmlstream.NSClient, "message", "to", "x@elsewhere.example", "id", "r"))
	srv.End(context.Background(), a.s)
	want := []string{
		"presence  alice@localhost/phone -> room@groups.localhost/Alice",
		"message groupchat alice@localhost/phone -> room@groups.localhost",
		"iq get alice@localhost/phone -> groups.localhost",
		"presence unavailable alice@localhost/phone -> room@groups.localhost/Alice",
	}
	f.mu.Lock()
	if len(f.got) != len(want) {
		t.Fatalf("service got %q, want %q", f.got, want)
	}
	for i := range want {
		if f.got[i] != want[i] {
			t.Fatalf("service got %q, want %q", f.got, want)
		}
	}
	f.mu.Unlock()

	b := connect(t, srv, "bob@localhost/pc")
	b.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "to", "localhost", "type", "get", "id", "i").
		Append(xmlstream.New(NSDiscoItems, "query")))
	waitFor(t, "disco#items", func() bool { return b.sink.count() > 0 })
	res := b.sink.take()[0]
	item := res.FirstChild().FirstChild()
	if res.Attr("type") != "result" || item == nil || item.Attr("jid") != "groups.localhost" || item.Attr("name") != "Groups" {
		t.Fatalf("disco#items: %s", res)
	}
	if err := srv.Deliver(context.Background(), jid.MustParse("bob@localhost/gone"), xmlstream.New(xmlstream.NSClient, "presence")); err != ErrNoSession {
		t.Fatalf("Deliver to an unbound full JID: %v", err)
	}
}
