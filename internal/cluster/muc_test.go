package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/muc"
	"bluetick/internal/natstest"
	"bluetick/internal/xmlstream"
)

// withGroups runs the group chat service on every node, homed as in
// cmd/bluetick: each room on one node, the others forwarding to it.
func withGroups(t *testing.T, nodes []*node) {
	t.Helper()
	cfg := config.Default()
	for _, n := range nodes {
		g, err := muc.New(context.Background(), cfg.MUCDomain(), cfg.MUC, n.srv.Store(), n.srv, logger())
		if err != nil {
			t.Fatal(err)
		}
		if err := n.cl.ServeRooms(g.HandleLocal); err != nil {
			t.Fatal(err)
		}
		g.Home, g.Forward = n.cl.IsRoomHome, n.cl.ForwardRoom
		n.srv.RegisterService(cfg.MUCDomain(), "Groups", g)
	}
}

// A group whose members are on three nodes: every member gets every
// message exactly once and in the order sent, whichever node the room
// lives on and whichever node each sender is on.
func TestGroupAcrossNodes(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	if err := st.CreateUser(context.Background(), "carol", nil); err != nil {
		t.Fatal(err)
	}
	nodes := startNodes(t, ns.URL, st, "a", "b", "c")
	withGroups(t, nodes)
	const room = "team@groups.localhost"
	eventually(t, "every node to see all three", func() bool {
		for _, n := range nodes {
			if len(n.cl.liveNodes()) != 3 {
				return false
			}
		}
		return true
	})
	home := nodes[0].cl.RoomHome(jid.MustParse(room))
	for _, n := range nodes[1:] {
		if h := n.cl.RoomHome(jid.MustParse(room)); h != home {
			t.Fatalf("nodes disagree on the room's home: %s vs %s", home, h)
		}
	}

	isSelf := func(nick string) func(*xmlstream.Element) bool {
		return func(el *xmlstream.Element) bool {
			return el.Name == "presence" && el.Attr("from") == room+"/"+nick && el.Attr("type") != "error"
		}
	}
	isIQ := func(id string) func(*xmlstream.Element) bool {
		return func(el *xmlstream.Element) bool { return el.Name == "iq" && el.Attr("id") == id }
	}
	join := func(c *client, nick string) {
		c.send(presence())
		c.send(parseEl(t, fmt.Sprintf(`<presence xmlns='jabber:client' to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'/></presence>`, room, nick)))
		c.sink.WaitFor(t, nick+"'s self-presence", isSelf(nick))
	}
	alice := nodes[0].connect(t, "alice@localhost/pc")
	join(alice, "Alice")
	alice.send(parseEl(t, `<iq xmlns='jabber:client' type='set' id='cfg' to='`+room+`'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>`))
	if r := alice.sink.WaitFor(t, "room configured", isIQ("cfg")); r.Attr("type") != "result" {
		t.Fatalf("configure: %s", r)
	}
	for _, m := range []string{"bob@localhost", "carol@localhost"} {
		alice.send(parseEl(t, `<iq xmlns='jabber:client' type='set' id='add-`+m+`' to='`+room+`'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='`+m+`'/></query></iq>`))
		if r := alice.sink.WaitFor(t, "member added", isIQ("add-"+m)); r.Attr("type") != "result" {
			t.Fatalf("add %s: %s", m, r)
		}
	}
	bob := nodes[1].connect(t, "bob@localhost/phone")
	join(bob, "Bob")
	carol := nodes[2].connect(t, "carol@localhost/web")
	join(carol, "Carol")

	const n = 30
	senders := []*client{alice, bob, carol}
	for i := 0; i < n; i++ {
		senders[i%3].send(parseEl(t, fmt.Sprintf(`<message xmlns='jabber:client' to='%s' type='groupchat' id='g%d'><body>%d</body></message>`, room, i, i)))
	}
	groupchat := func(c *client) []string {
		var ids []string
		for _, el := range c.sink.Elements() {
			if el.Name == "message" && el.Attr("type") == "groupchat" && el.Child(xmlstream.NSClient, "body") != nil {
				ids = append(ids, el.Attr("id"))
			}
		}
		return ids
	}
	for _, c := range senders {
		eventually(t, c.s.JID().String()+" to get all messages", func() bool { return len(groupchat(c)) >= n })
	}
	time.Sleep(200 * time.Millisecond) // anything duplicated would arrive by now
	for _, c := range senders {
		ids := groupchat(c)
		if len(ids) != n {
			t.Fatalf("%s received %d group messages, want exactly %d", c.s.JID(), len(ids), n)
		}
		for i, id := range ids {
			if id != fmt.Sprintf("g%d", i) {
				t.Fatalf("%s: message %d is %s (order broken: %v)", c.s.JID(), i, id, ids)
			}
		}
	}
}
