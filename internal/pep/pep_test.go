package pep

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"bluetick/internal/store"
)

const nick = "<nick xmlns='http://jabber.org/protocol/nick'>Alice</nick>"

func TestPublishAndRetrieve(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")

	res := alice.must("set", "", publishXML(nodeNick, "", nick, ""))
	pub := res.Child(NSPubSub, "publish")
	if pub == nil || pub.Attr("node") != nodeNick || pub.FirstChild() == nil || pub.FirstChild().Attr("id") == "" {
		t.Fatalf("publish result %s: want the node and a generated item id", res)
	}
	id := pub.FirstChild().Attr("id")
	got := alice.must("get", "", itemsXML(nodeNick, "/>"))
	if l := ids(t, got); !slices.Equal(l, []string{id}) {
		t.Fatalf("items %v, want [%s]", l, id)
	}
	item := got.Child(NSPubSub, "items").FirstChild()
	if p := item.FirstChild(); p == nil || p.Space != nodeNick || p.Text() != "Alice" {
		t.Fatalf("payload %s does not round-trip", item)
	}
	// The default node keeps one item (XEP-0163): a new one replaces it.
	alice.must("set", "", publishXML(nodeNick, "second", "<nick xmlns='http://jabber.org/protocol/nick'>A2</nick>", ""))
	if l := ids(t, alice.must("get", "", itemsXML(nodeNick, "/>"))); !slices.Equal(l, []string{"second"}) {
		t.Fatalf("items after second publish %v, want [second]", l)
	}

	// max_items=max keeps every item; retrieval by id and max_items.
	for _, id := range []string{"1", "2", "3"} {
		alice.must("set", "", publishXML("urn:xmpp:bookmarks:1", id, "<conference xmlns='urn:xmpp:bookmarks:1' name='"+id+"'/>",
			opt("pubsub#max_items", "max")+opt("pubsub#access_model", "whitelist")+opt("pubsub#persist_items", "true")+opt("pubsub#send_last_published_item", "never")))
	}
	if l := ids(t, alice.must("get", "", itemsXML("urn:xmpp:bookmarks:1", "/>"))); !slices.Equal(l, []string{"1", "2", "3"}) {
		t.Fatalf("bookmarks %v, want 1 2 3", l)
	}
	if l := ids(t, alice.must("get", "", itemsXML("urn:xmpp:bookmarks:1", " max_items='2'/>"))); !slices.Equal(l, []string{"2", "3"}) {
		t.Fatalf("2 newest bookmarks %v, want 2 3", l)
	}
	if l := ids(t, alice.must("get", "", itemsXML("urn:xmpp:bookmarks:1", "><item id='1'/></items>"))); !slices.Equal(l, []string{"1"}) {
		t.Fatalf("bookmark by id %v, want 1", l)
	}
	_, err := alice.iq("get", "", itemsXML("urn:xmpp:bookmarks:1", "><item id='nope'/></items>"))
	wantErr(t, err, "item-not-found", "")
	_, err = alice.iq("get", "", itemsXML("urn:nothing", "/>"))
	wantErr(t, err, "item-not-found", "")

	// Retract.
	alice.must("set", "", "<pubsub xmlns='"+NSPubSub+"'><retract node='urn:xmpp:bookmarks:1'><item id='2'/></retract></pubsub>")
	if l := ids(t, alice.must("get", "", itemsXML("urn:xmpp:bookmarks:1", "/>"))); !slices.Equal(l, []string{"1", "3"}) {
		t.Fatalf("bookmarks after retract %v, want 1 3", l)
	}
	_, err = alice.iq("set", "", "<pubsub xmlns='"+NSPubSub+"'><retract node='urn:xmpp:bookmarks:1'><item id='2'/></retract></pubsub>")
	wantErr(t, err, "item-not-found", "")
}

func TestPersistedAcrossRestart(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	alice.must("set", "", publishXML(nodeNick, "n1", nick, opt("pubsub#access_model", "open")))
	// A new service over the same store (a restart, or another cluster node).
	e.svc = New(domain, e.st, e.r, e.svc.limits, e.query, e.svc.log)
	bob := e.connect("bob@localhost/phone")
	if l := ids(t, bob.must("get", "alice@localhost", itemsXML(nodeNick, "/>"))); !slices.Equal(l, []string{"n1"}) {
		t.Fatalf("items after restart %v", l)
	}
}

func TestAccessModels(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both", "Friends")
	alice := e.connect("alice@localhost/pc")
	bob := e.connect("bob@localhost/phone")
	carol := e.connect("carol@localhost/web") // no subscription

	alice.must("set", "", publishXML("presence-node", "1", nick, ""))
	alice.must("set", "", publishXML("open-node", "1", nick, opt("pubsub#access_model", "open")))
	alice.must("set", "", publishXML("white-node", "1", nick, opt("pubsub#access_model", "whitelist")))
	alice.must("set", "", publishXML("roster-node", "1", nick, opt("pubsub#access_model", "roster")+"<field var='pubsub#roster_groups_allowed'><value>Friends</value></field>"))
	alice.must("set", "", publishXML("roster-other", "1", nick, opt("pubsub#access_model", "roster")+"<field var='pubsub#roster_groups_allowed'><value>Work</value></field>"))

	get := func(c *client, node string) error {
		_, err := c.iq("get", "alice@localhost", itemsXML(node, "/>"))
		return err
	}
	for _, node := range []string{"presence-node", "open-node", "white-node", "roster-node", "roster-other"} {
		if err := get(alice, node); err != nil {
			t.Errorf("owner refused %s: %v", node, err)
		}
	}
	if err := get(bob, "presence-node"); err != nil {
		t.Errorf("contact refused a presence node: %v", err)
	}
	if err := get(bob, "open-node"); err != nil {
		t.Errorf("contact refused an open node: %v", err)
	}
	if err := get(carol, "open-node"); err != nil {
		t.Errorf("stranger refused an open node: %v", err)
	}
	if err := get(bob, "roster-node"); err != nil {
		t.Errorf("contact in an allowed group refused: %v", err)
	}
	wantErr(t, get(carol, "presence-node"), "not-authorized", "presence-subscription-required")
	wantErr(t, get(bob, "white-node"), "not-allowed", "closed-node")
	wantErr(t, get(carol, "white-node"), "not-allowed", "closed-node")
	wantErr(t, get(bob, "roster-other"), "not-authorized", "not-in-roster-group")

	// A member of a whitelist node may retrieve it.
	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><affiliations node='white-node'><affiliation jid='bob@localhost' affiliation='member'/></affiliations></pubsub>")
	if err := get(bob, "white-node"); err != nil {
		t.Errorf("member refused a whitelist node: %v", err)
	}
	aff := alice.must("get", "", "<pubsub xmlns='"+NSPubSubOwner+"'><affiliations node='white-node'/></pubsub>")
	if !strings.Contains(aff.String(), "jid='bob@localhost' affiliation='member'") {
		t.Errorf("affiliations %s lack bob as member", aff)
	}
	mine := bob.must("get", "alice@localhost", "<pubsub xmlns='"+NSPubSub+"'><affiliations/></pubsub>")
	if s := mine.String(); !strings.Contains(s, "node='white-node' affiliation='member'") || strings.Count(s, "<affiliation ") != 1 {
		t.Errorf("bob's own affiliations: %s", s)
	}
	if s := alice.must("get", "", "<pubsub xmlns='"+NSPubSub+"'><affiliations/></pubsub>").String(); strings.Count(s, "affiliation='owner'") != 5 {
		t.Errorf("alice's own affiliations: %s", s)
	}
	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><affiliations node='white-node'><affiliation jid='bob@localhost' affiliation='none'/></affiliations></pubsub>")
	wantErr(t, get(bob, "white-node"), "not-allowed", "closed-node")

	// Cancelling the subscription takes effect at once.
	e.subscribe("alice", "bob", "to")
	wantErr(t, get(bob, "presence-node"), "not-authorized", "presence-subscription-required")

	// disco#items shows only what the requester may see.
	nodes := func(c *client) []string {
		q, err := e.svc.DiscoItems(t.Context(), c.jid, alice.jid.Bare())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range q.Elements() {
			out = append(out, it.Attr("node"))
		}
		return out
	}
	if got := nodes(carol); !slices.Equal(got, []string{"open-node"}) {
		t.Errorf("stranger sees nodes %v, want only open-node", got)
	}
	if got := nodes(alice); len(got) != 5 {
		t.Errorf("owner sees nodes %v, want all 5", got)
	}
	if _, err := e.svc.NodeInfo(t.Context(), carol.jid, alice.jid.Bare(), "white-node"); err == nil {
		t.Error("stranger got disco#info of a whitelist node")
	}

	// Nobody but the owner writes.
	_, err := bob.iq("set", "alice@localhost", publishXML("open-node", "x", nick, ""))
	wantErr(t, err, "forbidden", "")
	_, err = bob.iq("set", "alice@localhost", "<pubsub xmlns='"+NSPubSubOwner+"'><delete node='open-node'/></pubsub>")
	wantErr(t, err, "forbidden", "")
}

func TestPublishOptions(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	devlist := "<list xmlns='eu.siacs.conversations.axolotl'><device id='12345'/></list>"
	alice.must("set", "", publishXML(nodeDevices, "current", devlist, opt("pubsub#access_model", "open")))
	conf := alice.must("get", "", "<pubsub xmlns='"+NSPubSubOwner+"'><configure node='"+nodeDevices+"'/></pubsub>")
	if !strings.Contains(conf.String(), "<field var='pubsub#access_model' type='list-single'><value>open</value>") {
		t.Fatalf("auto-created node config %s: access model not open", conf)
	}
	// Same options: fine. Different: precondition-not-met, nothing published.
	alice.must("set", "", publishXML(nodeDevices, "current", devlist, opt("pubsub#access_model", "open")))
	_, err := alice.iq("set", "", publishXML(nodeDevices, "other", devlist, opt("pubsub#access_model", "presence")))
	wantErr(t, err, "conflict", "precondition-not-met")
	_, err = alice.iq("set", "", publishXML(nodeDevices, "other", devlist, opt("pubsub#max_items", "7")))
	wantErr(t, err, "conflict", "precondition-not-met")
	_, err = alice.iq("set", "", publishXML(nodeDevices, "other", devlist, opt("pubsub#frobnicate", "1")))
	wantErr(t, err, "conflict", "precondition-not-met")
	_, err = alice.iq("set", "", publishXML("fresh", "other", devlist, opt("pubsub#access_model", "authorize")))
	wantErr(t, err, "conflict", "precondition-not-met")
	if l := ids(t, alice.must("get", "", itemsXML(nodeDevices, "/>"))); !slices.Equal(l, []string{"current"}) {
		t.Fatalf("items %v after refused publishes", l)
	}
	// What OMEMO clients do next: reconfigure, then publish again.
	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><configure node='"+nodeDevices+"'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>"+NSNodeConfig+"</value></field>"+opt("pubsub#access_model", "presence")+"</x></configure></pubsub>")
	alice.must("set", "", publishXML(nodeDevices, "current", devlist, opt("pubsub#access_model", "presence")))

	// Wrong FORM_TYPE.
	bad := strings.Replace(publishXML(nodeDevices, "x", devlist, opt("pubsub#access_model", "presence")), NSPublishOpts, "urn:wrong", 1)
	_, err = alice.iq("set", "", bad)
	wantErr(t, err, "bad-request", "invalid-options")
}

func TestConfigureDeletePurge(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both")
	alice := e.connect("alice@localhost/pc", "n")
	bob := e.connect("bob@localhost/phone", "n")
	form := func(fields string) string {
		return "<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + NSNodeConfig + "</value></field>" + fields + "</x>"
	}
	alice.must("set", "", "<pubsub xmlns='"+NSPubSub+"'><create node='n'/><configure>"+form(opt("pubsub#max_items", "3"))+"</configure></pubsub>")
	_, err := alice.iq("set", "", "<pubsub xmlns='"+NSPubSub+"'><create node='n'/></pubsub>")
	wantErr(t, err, "conflict", "")
	for _, id := range []string{"1", "2", "3", "4"} {
		alice.must("set", "", publishXML("n", id, nick, ""))
	}
	if l := ids(t, alice.must("get", "", itemsXML("n", "/>"))); !slices.Equal(l, []string{"2", "3", "4"}) {
		t.Fatalf("items %v with max_items 3", l)
	}
	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><configure node='n'>"+form(opt("pubsub#max_items", "1"))+"</configure></pubsub>")
	if l := ids(t, alice.must("get", "", itemsXML("n", "/>"))); !slices.Equal(l, []string{"4"}) {
		t.Fatalf("items %v after lowering max_items to 1", l)
	}
	_, err = alice.iq("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><configure node='n'>"+form(opt("pubsub#max_items", "lots"))+"</configure></pubsub>")
	wantErr(t, err, "not-acceptable", "")
	_, err = alice.iq("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><configure node='missing'>"+form("")+"</configure></pubsub>")
	wantErr(t, err, "item-not-found", "")
	def := alice.must("get", "", "<pubsub xmlns='"+NSPubSubOwner+"'><default/></pubsub>")
	if !strings.Contains(def.String(), "<value>presence</value>") {
		t.Fatalf("default config %s", def)
	}
	alice.events()
	bob.events()

	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><purge node='n'/></pubsub>")
	if l := ids(t, alice.must("get", "", itemsXML("n", "/>"))); len(l) != 0 {
		t.Fatalf("items %v after purge", l)
	}
	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><delete node='n'/></pubsub>")
	_, err = alice.iq("get", "", itemsXML("n", "/>"))
	wantErr(t, err, "item-not-found", "")
	evs := bob.events()
	if len(evs) != 2 || evs[0].Name != "purge" || evs[1].Name != "delete" || evs[1].Attr("node") != "n" {
		t.Fatalf("bob's events %v, want purge then delete of n", evs)
	}
	_, err = alice.iq("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><delete node='n'/></pubsub>")
	wantErr(t, err, "item-not-found", "")
}

func TestBadInput(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	alice.must("set", "", publishXML("n", "1", nick, ""))
	ps := "<pubsub xmlns='" + NSPubSub + "'>"
	own := "<pubsub xmlns='" + NSPubSubOwner + "'>"
	cases := []struct {
		typ, payload, cond, app string
	}{
		{"set", ps + "</pubsub>", "bad-request", ""},
		{"set", ps + "<publish node='n'/></pubsub>", "bad-request", "item-required"},
		{"set", ps + "<publish node='n'><item id='1'/></publish></pubsub>", "bad-request", "payload-required"},
		{"set", ps + "<publish node='n'><item><a xmlns='x'/><b xmlns='x'/></item></publish></pubsub>", "bad-request", "invalid-payload"},
		{"set", ps + "<publish node='n'><item><a xmlns='x'/></item><item><a xmlns='x'/></item></publish></pubsub>", "bad-request", "invalid-payload"},
		{"set", ps + "<publish><item><a xmlns='x'/></item></publish></pubsub>", "not-acceptable", "nodeid-required"},
		{"set", ps + "<publish node='n'><item><a xmlns='x'/></item></publish><publish node='m'/></pubsub>", "bad-request", ""},
		{"set", ps + "<publish node='n'><item><a xmlns='x'/></item></publish><publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + NSPublishOpts + "</value></field><field var='pubsub#access_model'><value>open</value></field><field var='pubsub#access_model'><value>open</value></field></x></publish-options></pubsub>", "bad-request", "invalid-options"},
		{"set", ps + "<retract node='n'/></pubsub>", "bad-request", "item-required"},
		{"set", ps + "<retract node='zz'><item id='1'/></retract></pubsub>", "item-not-found", ""},
		{"set", ps + "<subscribe node='n' jid='alice@localhost'/></pubsub>", "feature-not-implemented", "unsupported"},
		{"get", ps + "<items node='n' max_items='-1'/></pubsub>", "bad-request", ""},
		{"get", ps + "<items node='n' max_items='x'/></pubsub>", "bad-request", ""},
		{"get", ps + "<items/></pubsub>", "not-acceptable", "nodeid-required"},
		{"get", ps + "<frob/></pubsub>", "feature-not-implemented", ""},
		{"set", own + "</pubsub>", "bad-request", ""},
		{"set", own + "<configure node='n'/></pubsub>", "bad-request", ""},
		{"set", own + "<configure node='n'><x xmlns='jabber:x:data' type='submit'/></configure></pubsub>", "bad-request", ""},
		{"set", own + "<configure node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>" + NSNodeConfig + "</value></field><field var='pubsub#persist_items'><value>maybe</value></field></x></configure></pubsub>", "not-acceptable", ""},
		{"set", own + "<configure node='n'><x xmlns='jabber:x:data' type='submit'><field><value>x</value></field></x></configure></pubsub>", "bad-request", ""},
		{"set", own + "<affiliations node='n'><affiliation jid='@@' affiliation='member'/></affiliations></pubsub>", "jid-malformed", ""},
		{"set", own + "<affiliations node='n'><affiliation jid='bob@localhost' affiliation='owner'/></affiliations></pubsub>", "not-acceptable", ""},
		{"set", own + "<affiliations node='n'><affiliation jid='alice@localhost' affiliation='none'/></affiliations></pubsub>", "not-acceptable", ""},
		{"set", own + "<purge node='nope'/></pubsub>", "item-not-found", ""},
		{"set", "<query xmlns='jabber:iq:private'/>", "not-acceptable", ""},
		{"set", "<query xmlns='jabber:iq:private'><x xmlns='jabber:iq:roster'/></query>", "not-acceptable", ""},
		{"get", "<query xmlns='jabber:iq:private'><a xmlns='x'/><b xmlns='y'/></query>", "bad-request", ""},
	}
	for _, c := range cases {
		_, err := alice.iq(c.typ, "", c.payload)
		if err == nil {
			t.Errorf("%s %s: no error, want %s", c.typ, c.payload, c.cond)
			continue
		}
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("case %s %s", c.typ, c.payload)
				}
			}()
			wantErr(t, err, c.cond, c.app)
		}()
	}
}

func TestNodeLimit(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	for i := range MaxNodes {
		if err := e.st.CreatePEPNode(t.Context(), "alice", store.PEPNode{Node: fmt.Sprint("n", i), Config: defaultConfig().marshal()}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := alice.iq("set", "", publishXML("one-too-many", "", nick, ""))
	wantErr(t, err, "not-allowed", "max-nodes-exceeded")
	_, err = alice.iq("set", "", "<pubsub xmlns='"+NSPubSub+"'><create node='one-too-many'/></pubsub>")
	wantErr(t, err, "not-allowed", "max-nodes-exceeded")
	alice.must("set", "", publishXML("n1", "x", nick, "")) // existing nodes still work
}
