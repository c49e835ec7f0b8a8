package pep

import (
	"strings"
	"testing"
)

func TestPrivateXML(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	bob := e.connect("bob@localhost/pc")
	get := "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>"
	res := alice.must("get", "", get)
	if s := res.String(); s != "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>" {
		t.Fatalf("empty private storage answered %s", s)
	}
	alice.must("set", "", "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'><conference jid='room@muc.localhost' autojoin='true'><nick>A</nick></conference></storage></query>")
	res = alice.must("get", "", get)
	if !strings.Contains(res.String(), "<conference jid='room@muc.localhost' autojoin='true'><nick>A</nick></conference>") {
		t.Fatalf("stored bookmarks not returned: %s", res)
	}
	// Private to its account: bob neither reads alice's nor sees his own filled.
	_, err := bob.iq("get", "alice@localhost", get)
	wantErr(t, err, "forbidden", "")
	_, err = bob.iq("set", "alice@localhost", get)
	wantErr(t, err, "forbidden", "")
	if res := bob.must("get", "", get); strings.Contains(res.String(), "conference") {
		t.Fatalf("bob sees alice's bookmarks: %s", res)
	}
}

func TestVCardTemp(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	bob := e.connect("bob@localhost/pc")
	if res := bob.must("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>"); res.String() != "<vCard xmlns='vcard-temp'/>" {
		t.Fatalf("absent vCard answered %s", res)
	}
	alice.must("set", "", "<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><NICKNAME>alice</NICKNAME></vCard>")
	for _, c := range []*client{alice, bob} {
		res := c.must("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>")
		if res.Name != "vCard" || res.ChildText(NSVCard, "FN") != "Alice Liddell" {
			t.Fatalf("%s reads vCard %s", c.jid, res)
		}
	}
	_, err := bob.iq("set", "alice@localhost", "<vCard xmlns='vcard-temp'><FN>Mallory</FN></vCard>")
	wantErr(t, err, "forbidden", "")
	if res := alice.must("get", "", "<vCard xmlns='vcard-temp'/>"); res.ChildText(NSVCard, "FN") != "Alice Liddell" {
		t.Fatalf("vCard changed by someone else: %s", res)
	}
}

// Profiles over PEP (XEP-0292 vCard4, XEP-0172 nick, XEP-0084 avatar) are
// plain nodes: published with presence access, readable by contacts only.
func TestProfileNodes(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both")
	alice := e.connect("alice@localhost/pc")
	bob := e.connect("bob@localhost/pc", "urn:xmpp:avatar:metadata", "urn:xmpp:vcard4", nodeNick)
	carol := e.connect("carol@localhost/pc")
	bob.got()
	avatarData := "<data xmlns='urn:xmpp:avatar:data'>iVBORw0KGgo=</data>"
	meta := "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='8' id='h1' height='1' width='1' type='image/png'/></metadata>"
	vcard4 := "<vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Alice</text></fn></vcard>"
	alice.must("set", "", publishXML("urn:xmpp:avatar:data", "h1", avatarData, ""))
	alice.must("set", "", publishXML("urn:xmpp:avatar:metadata", "h1", meta, ""))
	alice.must("set", "", publishXML("urn:xmpp:vcard4", "current", vcard4, ""))
	alice.must("set", "", publishXML(nodeNick, "current", nick, ""))
	var nodes []string
	for _, ev := range bob.events() {
		nodes = append(nodes, ev.Attr("node"))
	}
	if strings.Join(nodes, " ") != "urn:xmpp:avatar:metadata urn:xmpp:vcard4 "+nodeNick {
		t.Fatalf("bob notified of %v (avatar data must not be pushed: no +notify)", nodes)
	}
	res := bob.must("get", "alice@localhost", itemsXML("urn:xmpp:avatar:data", "><item id='h1'/></items>"))
	if !strings.Contains(res.String(), "iVBORw0KGgo=") {
		t.Fatalf("avatar data %s", res)
	}
	for _, node := range []string{"urn:xmpp:avatar:data", "urn:xmpp:vcard4", nodeNick} {
		_, err := carol.iq("get", "alice@localhost", itemsXML(node, "/>"))
		wantErr(t, err, "not-authorized", "presence-subscription-required")
	}
}
