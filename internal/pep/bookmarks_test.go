package pep

import (
	"context"
	"strings"
	"testing"
	"time"

	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

func legacySet(confs string) string {
	return "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'>" + confs + "</storage></query>"
}

const legacyGet = "<query xmlns='jabber:iq:private'><storage xmlns='storage:bookmarks'/></query>"

// bookmarks returns the PEP bookmarks as id → conference.
func bookmarks(t *testing.T, c *client) map[string]*xmlstream.Element {
	t.Helper()
	res := c.must("get", "", itemsXML(NSBookmarks, "/>"))
	out := map[string]*xmlstream.Element{}
	for _, it := range res.Child(NSPubSub, "items").Elements() {
		out[it.Attr("id")] = it.Child(NSBookmarks, "conference")
	}
	return out
}

// legacyConfs returns the private XML bookmarks as jid → conference.
func legacyConfs(t *testing.T, c *client) (map[string]*xmlstream.Element, []string) {
	t.Helper()
	st := c.must("get", "", legacyGet).Child(NSLegacyBookmarks, "storage")
	out := map[string]*xmlstream.Element{}
	var urls []string
	for _, e := range st.Elements() {
		switch e.Name {
		case "conference":
			out[e.Attr("jid")] = e
		case "url":
			urls = append(urls, e.Attr("url"))
		}
	}
	return out, urls
}

// XEP-0402 §5.3.2: a legacy private XML list updates the PEP items one by
// one, notifying only what changed, keeping other clients' extensions.
func TestBookmarksLegacyToPEP(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both")
	pc := e.connect("alice@localhost/pc", NSBookmarks)
	bob := e.connect("bob@localhost/pc", NSBookmarks)
	pc.got()
	pc.must("set", "", legacySet(
		"<conference jid='play@conference.localhost' name='The Play' autojoin='true'><nick>JC</nick></conference>"+
			"<conference jid='orchard@conference.localhost' name='Orchard'><password>pw</password></conference>"+
			"<url name='Site' url='https://example.org/'/>"))
	bm := bookmarks(t, pc)
	if len(bm) != 2 {
		t.Fatalf("PEP bookmarks %v", bm)
	}
	if c := bm["play@conference.localhost"]; c.Attr("name") != "The Play" || c.Attr("autojoin") != "true" || c.ChildText(NSBookmarks, "nick") != "JC" {
		t.Fatalf("converted bookmark %s", c)
	}
	if c := bm["orchard@conference.localhost"]; c.Attr("autojoin") != "" || c.ChildText(NSBookmarks, "password") != "pw" {
		t.Fatalf("converted bookmark %s", c)
	}
	if evs := pc.events(); len(evs) != 2 {
		t.Fatalf("own resource notified %d times, want 2: %v", len(evs), evs)
	}
	// Private to the owner (XEP-0223 whitelist), never to contacts.
	if evs := bob.events(); len(evs) != 0 {
		t.Fatalf("contact notified of bookmarks: %v", evs)
	}
	_, err := bob.iq("get", "alice@localhost", itemsXML(NSBookmarks, "/>"))
	wantErr(t, err, "not-allowed", "closed-node")
	// A modern client adds private extensions to one room.
	pc.must("set", "", publishXML(NSBookmarks, "orchard@conference.localhost",
		"<conference xmlns='urn:xmpp:bookmarks:1' name='Orchard'><password>pw</password><extensions><state xmlns='urn:example' minimized='true'/></extensions></conference>", ""))
	pc.got()
	// The legacy client renames the orchard and drops the play.
	pc.must("set", "", legacySet("<conference jid='orchard@conference.localhost' name='The Orchard'><password>pw</password></conference>"))
	evs := pc.events()
	var kinds []string
	for _, ev := range evs {
		kinds = append(kinds, ev.FirstChild().Name+":"+ev.FirstChild().Attr("id"))
	}
	if strings.Join(kinds, " ") != "item:orchard@conference.localhost retract:play@conference.localhost" {
		t.Fatalf("notifications %v, want the orchard republished and the play retracted", kinds)
	}
	bm = bookmarks(t, pc)
	c := bm["orchard@conference.localhost"]
	if len(bm) != 1 || c.Attr("name") != "The Orchard" || !strings.Contains(c.String(), "<state xmlns='urn:example' minimized='true'/>") {
		t.Fatalf("after the legacy update: %v", bm)
	}
	// The same list again: nothing changed, nothing notified.
	pc.must("set", "", legacySet("<conference jid='orchard@conference.localhost' name='The Orchard'><password>pw</password></conference>"))
	if evs := pc.events(); len(evs) != 0 {
		t.Fatalf("unchanged list notified: %v", evs)
	}
	// Bad input is refused and changes nothing.
	for _, bad := range []string{"<conference name='no jid'/>", "<conference jid='not a jid@@'/>", "<conference jid='room@conference.localhost/nick'/>"} {
		_, err := pc.iq("set", "", legacySet(bad))
		wantErr(t, err, "bad-request", "")
	}
	if bm := bookmarks(t, pc); len(bm) != 1 {
		t.Fatalf("refused list applied: %v", bm)
	}
}

// XEP-0402 §5.3.1: PEP changes show in the legacy list, URLs kept.
func TestBookmarksPEPToLegacy(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	alice.must("set", "", legacySet("<url name='Site' url='https://example.org/'/>"))
	opts := opt("pubsub#persist_items", "true") + opt("pubsub#max_items", "max") + opt("pubsub#send_last_published_item", "never") + opt("pubsub#access_model", "whitelist")
	alice.must("set", "", publishXML(NSBookmarks, "play@conference.localhost",
		"<conference xmlns='urn:xmpp:bookmarks:1' name='The Play' autojoin='1'><nick>JC</nick><extensions><x xmlns='urn:example'/></extensions></conference>", opts))
	alice.must("set", "", publishXML(NSBookmarks, "orchard@conference.localhost", "<conference xmlns='urn:xmpp:bookmarks:1'/>", opts))
	confs, urls := legacyConfs(t, alice)
	if len(confs) != 2 || len(urls) != 1 {
		t.Fatalf("legacy list %v urls %v", confs, urls)
	}
	if c := confs["play@conference.localhost"]; c.Attr("name") != "The Play" || c.Attr("autojoin") != "true" || c.ChildText(NSLegacyBookmarks, "nick") != "JC" {
		t.Fatalf("legacy conference %s", c)
	}
	alice.must("set", "", "<pubsub xmlns='"+NSPubSub+"'><retract node='"+NSBookmarks+"' notify='true'><item id='play@conference.localhost'/></retract></pubsub>")
	if confs, urls := legacyConfs(t, alice); len(confs) != 1 || confs["orchard@conference.localhost"] == nil || len(urls) != 1 {
		t.Fatalf("after retract: %v %v", confs, urls)
	}
	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><delete node='"+NSBookmarks+"'/></pubsub>")
	if confs, urls := legacyConfs(t, alice); len(confs) != 0 || len(urls) != 1 {
		t.Fatalf("after deleting the node: %v %v", confs, urls)
	}
	// Not a bookmark: refused.
	_, err := alice.iq("set", "", publishXML(NSBookmarks, "not a room", "<conference xmlns='urn:xmpp:bookmarks:1'/>", ""))
	wantErr(t, err, "bad-request", "invalid-payload")
	_, err = alice.iq("set", "", publishXML(NSBookmarks, "room@conference.localhost", "<storage xmlns='storage:bookmarks'/>", ""))
	wantErr(t, err, "bad-request", "invalid-payload")
}

// Bookmarks stored only in private XML reach PEP at first use.
func TestBookmarksImport(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	err := e.st.SetPrivateXML(context.Background(), "alice", NSLegacyBookmarks,
		[]byte("<storage xmlns='storage:bookmarks'><conference jid='old@conference.localhost' name='Old' autojoin='true'/></storage>"))
	if err != nil {
		t.Fatal(err)
	}
	bm := bookmarks(t, alice)
	if c := bm["old@conference.localhost"]; len(bm) != 1 || c == nil || c.Attr("autojoin") != "true" {
		t.Fatalf("imported %v", bm)
	}
	cfg, err := e.svc.loadNode(context.Background(), &Request{To: alice.jid.Bare()}, NSBookmarks)
	if err != nil || cfg.Access != AccessWhitelist || cfg.SendLast != SendNever || cfg.keep() != MaxItemsLimit {
		t.Fatalf("imported node config %+v, %v", cfg, err)
	}
}

// PEP bookmarks with no private XML copy (stored before the sync) get one
// at the first legacy read.
func TestBookmarksExport(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	ctx := context.Background()
	if err := e.st.CreatePEPNode(ctx, "alice", store.PEPNode{Node: NSBookmarks, Config: bookmarksConfig().marshal()}); err != nil {
		t.Fatal(err)
	}
	it := store.PEPItem{ID: "old@conference.localhost", Publisher: "alice@localhost/pc", Published: time.Now(),
		Payload: []byte("<conference xmlns='urn:xmpp:bookmarks:1' name='Old'><nick>A</nick></conference>")}
	if err := e.st.PublishPEPItem(ctx, "alice", NSBookmarks, it, 0); err != nil {
		t.Fatal(err)
	}
	confs, _ := legacyConfs(t, alice)
	if c := confs["old@conference.localhost"]; len(confs) != 1 || c == nil || c.Attr("name") != "Old" || c.ChildText(NSLegacyBookmarks, "nick") != "A" {
		t.Fatalf("exported %v", confs)
	}
}
