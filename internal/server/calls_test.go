package server

import (
	"context"
	"testing"

	"bluetick/internal/xmlstream"
)

const (
	nsJMI    = "urn:xmpp:jingle-message:0"
	nsJingle = "urn:xmpp:jingle:1"
)

// TestCallSignalling checks what docs/calls.md promises about calls: a
// XEP-0353 <propose/> reaches the callee's devices and the caller's other
// carbons-enabled device, is kept offline for a callee with no session,
// and Jingle IQs between full JIDs reach the resource (or bounce).
func TestCallSignalling(t *testing.T) {
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

	propose := func(to string) *xmlstream.Element {
		return xmlstream.New(xmlstream.NSClient, "message", "to", to, "type", "chat", "id", "call1").
			Append(xmlstream.New(nsJMI, "propose", "id", "c1").
				Append(xmlstream.New("urn:xmpp:jingle:apps:rtp:1", "description", "media", "audio")),
				xmlstream.New("urn:xmpp:hints", "store"))
	}
	pc.send(t, srv, propose("bob@localhost"))
	if got := bob.wait(); len(got) != 1 || got[0].Child(nsJMI, "propose") == nil || got[0].Attr("from") != "alice@localhost/pc" {
		t.Fatalf("bob got %v, want the propose", got)
	}
	if got := phone.wait(); len(got) != 1 || got[0].Child(NSCarbons, "sent") == nil {
		t.Fatalf("caller's phone got %v, want a sent carbon of the propose", got)
	}

	// Jingle session-initiate to bob's full JID reaches that resource.
	pc.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "j1", "to", "bob@localhost/x").
		Append(xmlstream.New(nsJingle, "jingle", "action", "session-initiate", "sid", "c1")))
	if got := bob.wait(); len(got) != 1 || got[0].Child(nsJingle, "jingle") == nil || got[0].Attr("from") != "alice@localhost/pc" {
		t.Fatalf("bob got %v, want the jingle iq", got)
	}
	pc.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "j2", "to", "bob@localhost/gone").
		Append(xmlstream.New(nsJingle, "jingle", "action", "session-initiate", "sid", "c2")))
	if got := pc.wait(); len(got) != 1 || got[0].Attr("type") != "error" {
		t.Fatalf("jingle to a missing resource: %v, want an error", got)
	}

	// A callee with no session gets the propose from the offline store.
	pc.send(t, srv, propose("carol@localhost"))
	if got := pc.wait(); len(got) != 0 {
		t.Fatalf("propose to offline carol bounced: %v", got)
	}
	if n, err := srv.store.CountOffline(context.Background(), "carol"); err != nil || n != 1 {
		t.Fatalf("carol's offline store holds %d, %v; want the propose", n, err)
	}
}
