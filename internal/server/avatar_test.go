package server

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"bluetick/internal/pep"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// XEP-0398 through the server: the account disco advertises the
// conversions, and available presence (broadcast and directed) carries the
// vCard photo hash the server computed.
func TestAvatarHashInPresence(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	for _, pair := range [][2]string{{"alice", "bob@localhost"}, {"bob", "alice@localhost"}} {
		if _, err := srv.store.PutRosterItem(ctx, pair[0], store.RosterItem{Contact: pair[1], Subscription: store.SubBoth, InRoster: true}); err != nil {
			t.Fatal(err)
		}
	}
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/phone")
	carol := connect(t, srv, "carol@localhost/x")
	bob.send(t, srv, presence())
	carol.send(t, srv, presence())
	bob.wait()
	carol.wait()

	alice.send(t, srv, parseEl(t, `<iq xmlns='jabber:client' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`))
	d := alice.wait()
	for _, f := range []string{pep.NSVCardConversion, pep.NSBookmarksCompat} {
		if len(d) != 1 || !strings.Contains(d[0].String(), "var='"+f+"'") {
			t.Fatalf("account disco#info lacks %s: %v", f, d)
		}
	}

	img := []byte("\x89PNG\r\n\x1a\nnot really an image, but bytes")
	sum := sha1.Sum(img)
	hash := hex.EncodeToString(sum[:])
	alice.send(t, srv, parseEl(t, `<iq xmlns='jabber:client' type='set' id='v1'><vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>`+
		base64.StdEncoding.EncodeToString(img)+`</BINVAL></PHOTO></vCard></iq>`))
	if r := alice.wait(); len(r) != 1 || r[0].Attr("type") != "result" {
		t.Fatalf("vCard set: %v", r)
	}
	photoIn := func(els []*xmlstream.Element, from string) string {
		for _, el := range els {
			if el.Name == "presence" && el.Attr("from") == from {
				if x := el.Child(pep.NSVCardUpdate, "x"); x != nil && x.Child(pep.NSVCardUpdate, "photo") != nil {
					return x.ChildText(pep.NSVCardUpdate, "photo")
				}
				return "<none>"
			}
		}
		return "<no presence>"
	}
	alice.send(t, srv, presence())
	if got := photoIn(bob.wait(), "alice@localhost/pc"); got != hash {
		t.Fatalf("bob got photo hash %q, want %s", got, hash)
	}
	// Directed presence (a MUC join) too.
	alice.send(t, srv, presence("to", "carol@localhost/x"))
	if got := photoIn(carol.wait(), "alice@localhost/pc"); got != hash {
		t.Fatalf("directed presence photo hash %q, want %s", got, hash)
	}
}
