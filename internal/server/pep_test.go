package server

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

func parseEl(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.Parse([]byte(s), xmlstream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return el
}

// The caps exchange through the real server: available presence with caps
// makes the server ask the client for its disco#info (an IQ from the
// domain), the client's answer is routed back to the waiting query, and a
// publish then reaches the client because it advertised +notify.
func TestPEPCapsQueryAndNotification(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	for _, pair := range [][2]string{{"alice", "bob@localhost"}, {"bob", "alice@localhost"}} {
		if _, err := srv.store.PutRosterItem(ctx, pair[0], store.RosterItem{Contact: pair[1], Subscription: store.SubBoth, InRoster: true}); err != nil {
			t.Fatal(err)
		}
	}
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/phone")
	alice.send(t, srv, presence())

	// A client wanting nick notifications; ver per XEP-0115 §5.1.
	info := `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' name='t' type='pc'/><feature var='http://jabber.org/protocol/nick+notify'/></query>`
	sum := sha1.Sum([]byte("client/pc//t<http://jabber.org/protocol/nick+notify<"))
	ver := base64.StdEncoding.EncodeToString(sum[:])
	p := parseEl(t, `<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://example.org' ver='`+ver+`'/></presence>`)
	bob.send(t, srv, p)
	var query *xmlstream.Element
	deadline := time.Now().Add(2 * time.Second)
	for query == nil && time.Now().Before(deadline) {
		for _, el := range bob.wait() {
			if el.Name == "iq" && el.Attr("type") == "get" && el.Child("http://jabber.org/protocol/disco#info", "query") != nil {
				query = el
			}
		}
	}
	if query == nil {
		t.Fatal("the server did not ask bob for his disco#info")
	}
	if query.Attr("from") != "localhost" || query.Child("http://jabber.org/protocol/disco#info", "query").Attr("node") != "http://example.org#"+ver {
		t.Fatalf("caps query %s", query)
	}
	// A forged answer from alice does not count.
	forged := parseEl(t, `<iq xmlns='jabber:client' type='result' to='localhost' id='`+query.Attr("id")+`'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`)
	alice.send(t, srv, forged)
	res := parseEl(t, `<iq xmlns='jabber:client' type='result' to='localhost' id='`+query.Attr("id")+`'>`+info+`</iq>`)
	bob.send(t, srv, res)
	time.Sleep(100 * time.Millisecond)
	bob.wait()

	pub := parseEl(t, `<iq xmlns='jabber:client' type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Alice</nick></item></publish></pubsub></iq>`)
	alice.send(t, srv, pub)
	var gotResult bool
	for _, el := range alice.wait() {
		if el.Name == "iq" && el.Attr("id") == "p1" {
			gotResult = el.Attr("type") == "result"
		}
	}
	if !gotResult {
		t.Fatal("publish not answered with a result")
	}
	var note *xmlstream.Element
	for _, el := range bob.wait() {
		if el.Name == "message" {
			note = el
		}
	}
	if note == nil || note.Attr("from") != "alice@localhost" || !strings.Contains(note.String(), "<nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>") {
		t.Fatalf("bob's notification: %v", note)
	}
}

func TestPEPDisco(t *testing.T) {
	srv := newServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	alice.send(t, srv, parseEl(t, `<iq xmlns='jabber:client' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`))
	got := alice.wait()
	if len(got) != 1 {
		t.Fatalf("disco#info: %v", got)
	}
	s := got[0].String()
	for _, want := range []string{"category='pubsub' type='pep'", "http://jabber.org/protocol/pubsub#publish-options", "http://jabber.org/protocol/pubsub#access-whitelist", "vcard-temp"} {
		if !strings.Contains(s, want) {
			t.Errorf("account disco#info lacks %s: %s", want, s)
		}
	}
	alice.send(t, srv, parseEl(t, `<iq xmlns='jabber:client' type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='open'><item><x xmlns='y'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field><field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub></iq>`))
	alice.send(t, srv, parseEl(t, `<iq xmlns='jabber:client' type='set' id='p'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='closed'><item><x xmlns='y'/></item></publish></pubsub></iq>`))
	alice.wait()
	carol := connect(t, srv, "carol@localhost/x")
	carol.send(t, srv, parseEl(t, `<iq xmlns='jabber:client' type='get' id='i' to='alice@localhost'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`))
	got = carol.wait()
	if len(got) != 1 || !strings.Contains(got[0].String(), "node='open'") || strings.Contains(got[0].String(), "node='closed'") {
		t.Fatalf("stranger's disco#items of alice: %v", got)
	}
	// A retrieval refused is a proper error stanza.
	carol.send(t, srv, parseEl(t, `<iq xmlns='jabber:client' type='get' id='r' to='alice@localhost'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='closed'/></pubsub></iq>`))
	got = carol.wait()
	if len(got) != 1 || got[0].Attr("type") != "error" || !strings.Contains(got[0].String(), "<presence-subscription-required xmlns='http://jabber.org/protocol/pubsub#errors'/>") {
		t.Fatalf("refused retrieval: %v", got)
	}
}
