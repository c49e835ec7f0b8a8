package pep

import (
	"slices"
	"testing"

	"bluetick/internal/xmlstream"
)

func TestNotifications(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both")
	e.subscribe("alice", "carol", "to") // carol does not receive alice's presence
	alicePC := e.connect("alice@localhost/pc", nodeDevices)
	alicePhone := e.connect("alice@localhost/phone") // no +notify
	bob := e.connect("bob@localhost/phone", nodeDevices)
	bobWeb := e.connect("bob@localhost/web", nodeNick) // other node only
	carol := e.connect("carol@localhost/web", nodeDevices)
	for _, c := range []*client{alicePC, alicePhone, bob, bobWeb, carol} {
		c.got()
	}

	devlist := "<list xmlns='eu.siacs.conversations.axolotl'><device id='1'/></list>"
	alicePC.must("set", "", publishXML(nodeDevices, "current", devlist, opt("pubsub#access_model", "open")))

	check := func(c *client, want bool) {
		t.Helper()
		msgs := c.got()
		if !want {
			if len(msgs) != 0 {
				t.Errorf("%s got %v, want nothing", c.jid, msgs)
			}
			return
		}
		if len(msgs) != 1 {
			t.Fatalf("%s got %d stanzas, want 1 notification: %v", c.jid, len(msgs), msgs)
		}
		m := msgs[0]
		if m.Name != "message" || m.Attr("type") != "headline" || m.Attr("from") != "alice@localhost" || m.Attr("to") != c.jid.String() {
			t.Fatalf("%s: notification envelope %s", c.jid, m)
		}
		items := m.Child(NSPubSubEvent, "event").Child(NSPubSubEvent, "items")
		it := items.Child(NSPubSubEvent, "item")
		if items.Attr("node") != nodeDevices || it.Attr("id") != "current" || it.Child("eu.siacs.conversations.axolotl", "list") == nil {
			t.Fatalf("%s: notification %s", c.jid, m)
		}
	}
	check(alicePC, true)
	check(alicePhone, false)
	check(bob, true)
	check(bobWeb, false)
	check(carol, false) // open node, but no presence subscription: no implicit subscription

	// Whitelist nodes notify only the owner.
	alicePC.must("set", "", publishXML(nodeDevices+"2", "x", devlist, opt("pubsub#access_model", "whitelist")))
	bob.available(nodeDevices, nodeDevices+"2")
	bob.got()
	alicePC.available(nodeDevices, nodeDevices+"2")
	alicePC.got()
	alicePC.must("set", "", publishXML(nodeDevices+"2", "y", devlist, ""))
	if len(alicePC.got()) != 1 {
		t.Error("owner not notified of a whitelist node")
	}
	if got := bob.got(); len(got) != 0 {
		t.Errorf("contact notified of a whitelist node: %v", got)
	}

	// Retraction notifies (notify_retract defaults to on).
	alicePC.must("set", "", "<pubsub xmlns='"+NSPubSub+"'><retract node='"+nodeDevices+"' notify='true'><item id='current'/></retract></pubsub>")
	evs := bob.events()
	if len(evs) != 1 || evs[0].Child(NSPubSubEvent, "retract") == nil || evs[0].Child(NSPubSubEvent, "retract").Attr("id") != "current" {
		t.Fatalf("bob's retract events %v", evs)
	}

	// Unavailable resources get nothing.
	bob.s.SetPresence(nil, false, 0)
	alicePC.must("set", "", publishXML(nodeDevices, "again", devlist, ""))
	if got := bob.got(); len(got) != 0 {
		t.Errorf("unavailable resource notified: %v", got)
	}
}

func TestLastItemOnPresence(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both")
	alice := e.connect("alice@localhost/pc")
	alice.must("set", "", publishXML(nodeNick, "n1", nick, ""))
	alice.must("set", "", publishXML(nodeNick, "n2", "<nick xmlns='http://jabber.org/protocol/nick'>Alice2</nick>", ""))
	alice.must("set", "", publishXML("urn:xmpp:avatar:metadata", "sha", "<metadata xmlns='urn:xmpp:avatar:metadata'/>", ""))
	alice.must("set", "", publishXML("secret", "s", "<s xmlns='x'/>", opt("pubsub#access_model", "whitelist")))
	alice.must("set", "", publishXML("urn:xmpp:bookmarks:1", "room@muc", "<conference xmlns='urn:xmpp:bookmarks:1'/>",
		opt("pubsub#access_model", "whitelist")+opt("pubsub#send_last_published_item", "never")+opt("pubsub#max_items", "max")))

	bob := e.connect("bob@localhost/phone", nodeNick, "secret")
	evs := bob.events()
	if len(evs) != 1 || evs[0].Attr("node") != nodeNick || evs[0].FirstChild().Attr("id") != "n2" {
		t.Fatalf("bob's last items %v, want only the newest nick (n2)", evs)
	}
	// Same caps again: nothing new.
	bob.available(nodeNick, "secret")
	if evs := bob.events(); len(evs) != 0 {
		t.Fatalf("repeated presence re-sent %v", evs)
	}
	// New caps adding the avatar: only the avatar's last item.
	bob.available(nodeNick, "secret", "urn:xmpp:avatar:metadata")
	evs = bob.events()
	if len(evs) != 1 || evs[0].Attr("node") != "urn:xmpp:avatar:metadata" {
		t.Fatalf("after adding +notify for the avatar: %v", evs)
	}

	// The owner's new resource gets its own nodes' last items, except
	// send_last_published_item=never.
	alice2 := e.connect("alice@localhost/phone", nodeNick, "secret", "urn:xmpp:bookmarks:1")
	var nodes []string
	for _, ev := range alice2.events() {
		nodes = append(nodes, ev.Attr("node"))
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{nodeNick, "secret"}) {
		t.Fatalf("owner's new resource got last items of %v, want nick and secret", nodes)
	}

	// A stranger gets nothing.
	carol := e.connect("carol@localhost/x", nodeNick)
	if evs := carol.events(); len(evs) != 0 {
		t.Fatalf("stranger got %v", evs)
	}
}

func TestCapsLearntOnceAndVerified(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both")
	alice := e.connect("alice@localhost/pc")
	alice.must("set", "", publishXML(nodeNick, "n1", nick, ""))
	e.asked = 0
	e.connect("bob@localhost/a", nodeNick).events()
	e.connect("bob@localhost/b", nodeNick).events()
	if e.asked != 1 {
		t.Fatalf("caps queried %d times for one ver, want 1", e.asked)
	}
	// The verified answer is in the store: a fresh service (another
	// cluster node) knows it without asking.
	e.svc = New(domain, e.st, e.r, e.svc.limits, nil, e.svc.log)
	c := e.connect("bob@localhost/c", nodeNick)
	if evs := c.events(); len(evs) != 1 {
		t.Fatalf("caps from the store: got %v", evs)
	}

	// A client whose disco#info does not match its hash is not believed.
	e.svc = New(domain, e.st, e.r, e.svc.limits, e.query, e.svc.log)
	liar := e.connect("bob@localhost/liar")
	q := discoInfo(nodeNick + "+notify")
	p := xmlstream.New(xmlstream.NSClient, "presence")
	p.Append(xmlstream.New(NSCaps, "c", "hash", "sha-1", "node", "x", "ver", "forged="))
	e.discos["forged="] = q
	liar.s.SetPresence(p, true, 0)
	e.svc.presence(t.Context(), liar.s, e.svc.state(liar.jid), false)
	alice.must("set", "", publishXML(nodeNick, "n2", nick, ""))
	if evs := liar.events(); len(evs) != 0 {
		t.Fatalf("client with a forged caps hash got %v", evs)
	}
}

func TestLastItemOnNewSubscription(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	alice.must("set", "", publishXML(nodeNick, "n1", nick, ""))
	bob := e.connect("bob@localhost/phone", nodeNick)
	if evs := bob.events(); len(evs) != 0 {
		t.Fatalf("bob got %v before subscribing", evs)
	}
	e.subscribe("alice", "bob", "from")
	e.svc.Subscribed(t.Context(), alice.jid.Bare(), bob.jid.Bare())
	if evs := bob.events(); len(evs) != 1 || evs[0].Attr("node") != nodeNick {
		t.Fatalf("new subscriber got %v, want the last nick", evs)
	}
}

// OMEMO 2 keeps one bundle item per device in one node with max_items max.
func TestOMEMO2Bundles(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	bob := e.connect("bob@localhost/phone")
	for _, id := range []string{"100", "200"} {
		alice.must("set", "", publishXML("urn:xmpp:omemo:2:bundles", id, "<bundle xmlns='urn:xmpp:omemo:2'><spk id='1'>x</spk></bundle>",
			opt("pubsub#max_items", "max")+opt("pubsub#access_model", "open")))
	}
	alice.must("set", "", publishXML("urn:xmpp:omemo:2:devices", "current", "<devices xmlns='urn:xmpp:omemo:2'><device id='100'/><device id='200'/></devices>", opt("pubsub#access_model", "open")))
	if l := ids(t, bob.must("get", "alice@localhost", itemsXML("urn:xmpp:omemo:2:bundles", "><item id='200'/></items>"))); !slices.Equal(l, []string{"200"}) {
		t.Fatalf("bundle by device id: %v", l)
	}
	if l := ids(t, bob.must("get", "alice@localhost", itemsXML("urn:xmpp:omemo:2:bundles", "/>"))); !slices.Equal(l, []string{"100", "200"}) {
		t.Fatalf("all bundles: %v", l)
	}
}
