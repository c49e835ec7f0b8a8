package cluster_test

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// The admin socket in a cluster: each node has its own (in its data
// directory). status names the node and the live nodes; user kick ends a
// session held by another node; user list --online and announce cover
// the node asked, and say so; room list shows every room with its home
// node; room destroy run on a node that is not the room's home is done
// there, and the occupants get the XEP-0045 destroy presence.
func TestAdminSocketInCluster(t *testing.T) {
	c := startCluster(t, 3)
	cli := func(i int, args ...string) string {
		t.Helper()
		dir := filepath.Dir(c.nodes[i].log.Name())
		out, err := exec.Command(binary, append(args, "--data", dir)...).CombinedOutput()
		if err != nil {
			t.Fatalf("bluetick %s on %s: %v\n%s", strings.Join(args, " "), c.nodes[i].name, err, out)
		}
		return string(out)
	}
	until := func(cl *xmpptest.Client, what string, ok func(*xmlstream.Element) bool) *xmlstream.Element {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			el, err := cl.Read(time.Until(deadline))
			if err != nil {
				t.Fatalf("waiting for %s: %v", what, err)
			}
			if ok(el) {
				return el
			}
		}
		t.Fatalf("no %s", what)
		return nil
	}
	const room = "ops@groups.localhost"
	u1 := c.loginOn(0, "u1", "a")
	u2 := c.loginOn(1, "u2", "b")
	for _, cl := range []*xmpptest.Client{u1, u2} {
		cl.Send("<presence/>")
		cl.Expect("presence")
	}
	presenceFrom := func(from string) func(*xmlstream.Element) bool {
		return func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("from") == from }
	}
	result := func(id string) func(*xmlstream.Element) bool {
		return func(el *xmlstream.Element) bool {
			if el.Name == "iq" && el.Attr("id") == id && el.Attr("type") != "result" {
				t.Fatalf("%s: %v", id, el)
			}
			return el.Name == "iq" && el.Attr("id") == id
		}
	}
	u1.Send("<presence to='" + room + "/U1'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	until(u1, "u1 in the room", presenceFrom(room+"/U1"))
	u1.Send("<iq type='set' id='cfg' to='" + room + "'><query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query></iq>")
	until(u1, "the room configured", result("cfg"))
	u1.Send("<iq type='set' id='add' to='" + room + "'><query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='u2@localhost'/></query></iq>")
	until(u1, "u2 a member", result("add"))
	u2.Send("<presence to='" + room + "/U2'><x xmlns='http://jabber.org/protocol/muc'/></presence>")
	until(u2, "u2 in the room", presenceFrom(room+"/U2"))

	var st struct {
		Node     string
		Nodes    []string
		Sessions map[string]int
		Rooms    int
	}
	if err := json.Unmarshal([]byte(cli(0, "status", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.Node != "n1" || !slices.Equal(st.Nodes, []string{"n1", "n2", "n3"}) || st.Sessions["tls"] != 1 || st.Rooms != 1 {
		t.Errorf("status of n1: %+v", st)
	}
	if out := cli(0, "status"); !strings.Contains(out, "cluster:          node n1 of 3 live: n1, n2, n3") || !strings.Contains(out, "1 on this node (n1)") {
		t.Errorf("status of n1:\n%s", out)
	}
	if out := cli(0, "user", "list", "--online"); !strings.Contains(out, "this node (n1) only") || !strings.Contains(out, "u1@localhost/a") || strings.Contains(out, "u2@") {
		t.Errorf("online list of n1:\n%s", out)
	}
	var rooms struct {
		Node  string
		Rooms []struct {
			JID, Node string
			Here      bool
			Occupants int
			Members   int
		}
	}
	if err := json.Unmarshal([]byte(cli(0, "room", "list", "--json")), &rooms); err != nil {
		t.Fatal(err)
	}
	if len(rooms.Rooms) != 1 || rooms.Rooms[0].JID != room || rooms.Rooms[0].Members != 2 {
		t.Fatalf("rooms seen by n1: %+v", rooms)
	}
	home := rooms.Rooms[0].Node
	homeIdx, otherIdx := -1, -1
	for i, n := range c.nodes {
		if n.name == home {
			homeIdx = i
		} else if otherIdx < 0 {
			otherIdx = i
		}
	}
	if homeIdx < 0 {
		t.Fatalf("room home %q is no node", home)
	}
	if out := cli(homeIdx, "room", "list"); !strings.Contains(out, room+"  2 ") {
		t.Errorf("room list on the home node %s counts 2 occupants:\n%s", home, out)
	}
	if out := cli(otherIdx, "room", "list"); !strings.Contains(out, room+"  -  ") {
		t.Errorf("room list on %s, not the home: occupants should be \"-\":\n%s", c.nodes[otherIdx].name, out)
	}

	if out := cli(0, "announce", "node one only"); !strings.Contains(out, "sent to 1 session(s) on this node (n1); run it on each node") {
		t.Errorf("announce on n1: %s", out)
	}
	until(u1, "the announcement on u1", func(el *xmlstream.Element) bool {
		return el.Name == "message" && el.Attr("from") == "localhost" && el.ChildText(xmlstream.NSClient, "body") == "node one only"
	})

	out := cli(otherIdx, "room", "destroy", room, "--reason", "wrong group")
	if !strings.Contains(out, "on its node "+home) {
		t.Errorf("room destroy on %s (home %s): %s", c.nodes[otherIdx].name, home, out)
	}
	for _, cl := range []*xmpptest.Client{u1, u2} {
		p := until(cl, "the destroy presence", func(el *xmlstream.Element) bool {
			return el.Name == "presence" && el.Attr("type") == "unavailable" && strings.HasPrefix(el.Attr("from"), room+"/")
		})
		x := p.Child("http://jabber.org/protocol/muc#user", "x")
		d := x.Child("http://jabber.org/protocol/muc#user", "destroy")
		if d == nil || d.ChildText("http://jabber.org/protocol/muc#user", "reason") != "wrong group" {
			t.Errorf("destroy presence: %v", p)
		}
	}
	if out := cli(2, "room", "list"); !strings.Contains(out, "0 room(s)") {
		t.Errorf("rooms after destroy:\n%s", out)
	}

	// u2 is on n2; the kick is asked of n1.
	if out := cli(0, "user", "kick", "u2"); !strings.Contains(out, "ended 1 session(s) of u2@localhost on every node of the cluster") {
		t.Errorf("kick from n1: %s", out)
	}
	e := until(u2, "u2's stream error", func(el *xmlstream.Element) bool { return el.Name == "error" })
	if e.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
		t.Errorf("u2's stream error: %v", e)
	}
	deadline := time.Now().Add(10 * time.Second)
	for strings.Contains(cli(1, "user", "list", "--online"), "u2@") {
		if time.Now().After(deadline) {
			t.Fatal("u2's session still on n2 after the kick")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
