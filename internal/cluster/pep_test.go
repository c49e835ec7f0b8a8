package cluster

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"strings"
	"testing"

	"bluetick/internal/jid"
	"bluetick/internal/natstest"
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

// PEP across nodes: bob's caps are learnt by his node and shared through
// the store, so alice's node notifies him through the cluster; items are
// in the shared store, so his next session gets the last item.
func TestPEPAcrossNodes(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	nodes := startNodes(t, ns.URL, st, "a", "b")
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	for _, p := range [][2]string{{"alice", "bob@localhost"}, {"bob", "alice@localhost"}} {
		if _, err := st.PutRosterItem(ctx, p[0], store.RosterItem{Contact: p[1], Subscription: store.SubBoth, InRoster: true}); err != nil {
			t.Fatal(err)
		}
	}
	alice := a.connect(t, "alice@localhost/pc")
	alice.send(presence())

	sum := sha1.Sum([]byte("client/pc//t<http://jabber.org/protocol/nick+notify<"))
	ver := base64.StdEncoding.EncodeToString(sum[:])
	info := `<query xmlns='http://jabber.org/protocol/disco#info'><identity category='client' name='t' type='pc'/><feature var='http://jabber.org/protocol/nick+notify'/></query>`
	capsPresence := `<presence xmlns='jabber:client'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://example.org' ver='` + ver + `'/></presence>`
	bob := b.connect(t, "bob@localhost/phone")
	bob.send(parseEl(t, capsPresence))
	q := bob.sink.WaitFor(t, "the caps query from bob's node", func(el *xmlstream.Element) bool {
		return el.Name == "iq" && el.Attr("type") == "get" && el.Child("http://jabber.org/protocol/disco#info", "query") != nil
	})
	bob.send(parseEl(t, `<iq xmlns='jabber:client' type='result' to='localhost' id='`+q.Attr("id")+`'>`+info+`</iq>`))
	eventually(t, "bob's caps in the shared store", func() bool {
		_, err := st.CapsInfo(ctx, "sha-1 "+ver)
		return err == nil
	})
	bobJID := jid.MustParse("bob@localhost")
	eventually(t, "node a to see bob available", func() bool {
		for _, r := range a.srv.Router.Resources(bobJID) {
			if r.Available() && r.Presence() != nil && r.Presence().Child("http://jabber.org/protocol/caps", "c") != nil {
				return true
			}
		}
		return false
	})

	alice.send(parseEl(t, `<iq xmlns='jabber:client' type='set' id='p1'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns='http://jabber.org/protocol/nick'>Alice</nick></item></publish></pubsub></iq>`))
	isNick := func(el *xmlstream.Element) bool {
		return el.Name == "message" && el.Attr("from") == "alice@localhost" && strings.Contains(el.String(), ">Alice</nick>")
	}
	bob.sink.WaitFor(t, "the nick notification on node b", isNick)

	// A new session of bob on node a, with the same caps: node a never
	// asked a client for them, it has them from the shared store, and sends
	// the last item without a query (none is answered here).
	bob2 := a.connect(t, "bob@localhost/tablet")
	bob2.send(parseEl(t, capsPresence))
	bob2.sink.WaitFor(t, "the last nick for bob's new session", isNick)
}
