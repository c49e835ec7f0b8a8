package server

import (
	"context"
	"testing"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

type echoComponent struct{ got []*IQ }

func (c *echoComponent) HandleIQ(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	c.got = append(c.got, iq)
	if iq.Payload.Name == "fail" {
		return nil, stanza.NewError("item-not-found", "")
	}
	return xmlstream.New("urn:test", "ok"), nil
}

// TestComponent: IQs to a component's domain reach it and its answer
// goes back from that domain; its full JIDs and other subdomains are not
// served; the server's disco#items lists it.
func TestComponent(t *testing.T) {
	srv := newServer(t)
	comp := &echoComponent{}
	srv.AddComponent("svc.localhost", "Test", comp)
	alice := connect(t, srv, "alice@localhost/pc")
	iq := func(to, name string) *xmlstream.Element {
		return xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "i-"+name, "to", to).Append(xmlstream.New("urn:test", name))
	}
	alice.send(t, srv, iq("svc.localhost", "hello"))
	alice.send(t, srv, iq("svc.localhost", "fail"))
	alice.send(t, srv, iq("svc.localhost/res", "hello"))
	alice.send(t, srv, iq("other.localhost", "hello"))
	got := alice.wait()
	if len(got) != 4 || len(comp.got) != 2 {
		t.Fatalf("got %d answers, component saw %d IQs: %v", len(got), len(comp.got), got)
	}
	if comp.got[0].From.String() != "alice@localhost/pc" {
		t.Errorf("component saw from %s", comp.got[0].From)
	}
	if got[0].Attr("type") != "result" || got[0].Attr("from") != "svc.localhost" || got[0].Child("urn:test", "ok") == nil {
		t.Errorf("result %s", got[0])
	}
	for i, want := range []string{"", "item-not-found", "service-unavailable", "remote-server-not-found"} {
		if want == "" {
			continue
		}
		e := got[i].Child(xmlstream.NSClient, "error")
		if got[i].Attr("type") != "error" || e == nil || e.Child(stanza.NSStanzas, want) == nil {
			t.Errorf("answer %d: %s, want %s", i, got[i], want)
		}
	}
	alice.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "d", "to", "localhost").Append(xmlstream.New(NSDiscoItems, "query")))
	items := alice.wait()
	if len(items) != 1 || items[0].Child(NSDiscoItems, "query").Child(NSDiscoItems, "item").Attr("jid") != "svc.localhost" {
		t.Fatalf("disco#items %v", items)
	}
}
