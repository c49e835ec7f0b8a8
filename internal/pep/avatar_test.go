package pep

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"image"
	"image/png"
	"strconv"
	"strings"
	"testing"

	"bluetick/internal/xmlstream"
)

// testPNG returns a w×h PNG, its base64 and its hex SHA-1.
func testPNG(t *testing.T, w, h int) ([]byte, string, string) {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, image.NewGray(image.Rect(0, 0, w, h))); err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum(buf.Bytes())
	return buf.Bytes(), base64.StdEncoding.EncodeToString(buf.Bytes()), hex.EncodeToString(sum[:])
}

func vcardPhotoOf(t *testing.T, v *xmlstream.Element) (typ string, data []byte) {
	t.Helper()
	ph := v.Child(NSVCard, "PHOTO")
	if ph == nil {
		return "", nil
	}
	b, err := decodeBase64(ph.ChildText(NSVCard, "BINVAL"))
	if err != nil {
		t.Fatalf("BINVAL: %v", err)
	}
	return ph.ChildText(NSVCard, "TYPE"), b
}

// XEP-0398 §3, PEP → vCard: publishing the metadata copies the data item
// into the vCard PHOTO, keeping the rest of the vCard; strangers see it
// only if the avatar data node is open to them.
func TestAvatarPEPToVCard(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both")
	alice := e.connect("alice@localhost/pc")
	bob := e.connect("bob@localhost/pc")
	carol := e.connect("carol@localhost/pc")
	alice.must("set", "", "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")

	img, b64, hash := testPNG(t, 3, 2)
	alice.must("set", "", publishXML(NSAvatarData, hash, "<data xmlns='urn:xmpp:avatar:data'>"+b64+"</data>", ""))
	// The first info points to a URL and must be skipped (§3).
	meta := "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='9' id='0000' type='image/png' url='https://example.org/a.png'/><info bytes='" +
		itoa(len(img)) + "' id='" + hash + "' type='image/png' width='3' height='2'/></metadata>"
	alice.must("set", "", publishXML(NSAvatarMeta, hash, meta, ""))

	v := alice.must("get", "", "<vCard xmlns='vcard-temp'/>")
	if typ, data := vcardPhotoOf(t, v); typ != "image/png" || !bytes.Equal(data, img) {
		t.Fatalf("vCard after PEP publish: %s", v)
	}
	if v.ChildText(NSVCard, "FN") != "Alice" {
		t.Fatalf("the rest of the vCard was lost: %s", v)
	}
	if h, err := e.svc.PhotoHash(context.Background(), "alice"); err != nil || h != hash {
		t.Fatalf("PhotoHash = %q, %v; want %s", h, err, hash)
	}
	// Default (presence) access: a contact sees the photo, a stranger not.
	if _, data := vcardPhotoOf(t, bob.must("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>")); !bytes.Equal(data, img) {
		t.Fatal("contact does not see the photo")
	}
	if v := carol.must("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>"); v.Child(NSVCard, "PHOTO") != nil || v.ChildText(NSVCard, "FN") != "Alice" {
		t.Fatalf("stranger's view of a contacts-only avatar: %s", v)
	}
	// An open data node: everyone sees it.
	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><configure node='"+NSAvatarData+"'><x xmlns='jabber:x:data' type='submit'>"+
		opt("FORM_TYPE", NSNodeConfig)+opt("pubsub#access_model", "open")+"</x></configure></pubsub>")
	if _, data := vcardPhotoOf(t, carol.must("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>")); !bytes.Equal(data, img) {
		t.Fatal("stranger does not see an open avatar")
	}

	// Metadata whose id does not match the data's SHA-1: no copy.
	img2, b642, _ := testPNG(t, 5, 5)
	alice.must("set", "", publishXML(NSAvatarData, "deadbeef", "<data xmlns='urn:xmpp:avatar:data'>"+b642+"</data>", ""))
	alice.must("set", "", publishXML(NSAvatarMeta, "deadbeef", "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='"+itoa(len(img2))+"' id='deadbeef' type='image/png'/></metadata>", ""))
	if _, data := vcardPhotoOf(t, alice.must("get", "", "<vCard xmlns='vcard-temp'/>")); !bytes.Equal(data, img) {
		t.Fatal("a mismatching avatar replaced the vCard photo")
	}

	// Avatar disabled (XEP-0084 §4.2): the PHOTO goes.
	alice.must("set", "", publishXML(NSAvatarMeta, "current", "<metadata xmlns='urn:xmpp:avatar:metadata'/>", ""))
	if v := alice.must("get", "", "<vCard xmlns='vcard-temp'/>"); v.Child(NSVCard, "PHOTO") != nil || v.ChildText(NSVCard, "FN") != "Alice" {
		t.Fatalf("vCard after disabling the avatar: %s", v)
	}
	if h, _ := e.svc.PhotoHash(context.Background(), "alice"); h != "" {
		t.Fatalf("PhotoHash without photo = %q", h)
	}
}

// XEP-0398 §3, vCard → PEP: a vCard with a PHOTO publishes the data item
// (id = SHA-1) and then the metadata, notified to subscribers.
func TestAvatarVCardToPEP(t *testing.T) {
	e := newEnv(t)
	e.subscribe("alice", "bob", "both")
	alice := e.connect("alice@localhost/pc")
	bob := e.connect("bob@localhost/pc", NSAvatarMeta)
	carol := e.connect("carol@localhost/pc")
	bob.got()

	img, b64, hash := testPNG(t, 4, 7)
	folded := b64[:10] + "\n  " + b64[10:] // vCard BINVAL lines may be folded
	vcard := "<vCard xmlns='vcard-temp'><FN>Alice</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>" + folded + "</BINVAL></PHOTO></vCard>"
	alice.must("set", "", vcard)

	evs := bob.events()
	if len(evs) != 1 || evs[0].Attr("node") != NSAvatarMeta {
		t.Fatalf("bob's notifications: %v", evs)
	}
	info := evs[0].Child(NSPubSubEvent, "item").Child(NSAvatarMeta, "metadata").Child(NSAvatarMeta, "info")
	want := map[string]string{"id": hash, "bytes": itoa(len(img)), "type": "image/png", "width": "4", "height": "7"}
	for k, v := range want {
		if info.Attr(k) != v {
			t.Fatalf("metadata info %s=%q, want %q: %s", k, info.Attr(k), v, evs[0])
		}
	}
	// The data item, readable by anyone (the vCard is).
	res := carol.must("get", "alice@localhost", itemsXML(NSAvatarData, "><item id='"+hash+"'/></items>"))
	if d := res.Child(NSPubSub, "items").Child(NSPubSub, "item").Child(NSAvatarData, "data"); d == nil || d.Text() != b64 {
		t.Fatalf("avatar data: %s", res)
	}
	// The same vCard again: nothing republished.
	alice.must("set", "", strings.Replace(vcard, "<FN>Alice</FN>", "<FN>Alice L.</FN>", 1))
	if evs := bob.events(); len(evs) != 0 {
		t.Fatalf("unchanged photo notified again: %v", evs)
	}
	// A vCard without PHOTO disables the PEP avatar.
	alice.must("set", "", "<vCard xmlns='vcard-temp'><FN>Alice</FN></vCard>")
	evs = bob.events()
	if len(evs) != 1 || len(evs[0].Child(NSPubSubEvent, "item").Child(NSAvatarMeta, "metadata").Elements()) != 0 {
		t.Fatalf("after removing the photo bob got %v, want one empty metadata", evs)
	}
	// A broken BINVAL is refused, and the stored vCard stays.
	_, err := alice.iq("set", "", "<vCard xmlns='vcard-temp'><FN>X</FN><PHOTO><TYPE>image/png</TYPE><BINVAL>!!not base64!!</BINVAL></PHOTO></vCard>")
	wantErr(t, err, "bad-request", "")
	if v := alice.must("get", "", "<vCard xmlns='vcard-temp'/>"); v.ChildText(NSVCard, "FN") != "Alice" {
		t.Fatalf("refused vCard stored: %s", v)
	}
}

// XEP-0398 §4: the hash goes into available presence.
func TestAvatarPresenceUpdate(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	ctx := context.Background()
	photoOf := func(p *xmlstream.Element) *xmlstream.Element {
		x := p.Child(NSVCardUpdate, "x")
		if x == nil {
			t.Fatalf("no vcard-temp:x:update in %s", p)
		}
		return x.Child(NSVCardUpdate, "photo")
	}
	// No photo: an empty <photo/> says so.
	p := parse(t, "<presence xmlns='jabber:client'/>")
	e.svc.PresenceUpdate(ctx, "alice", p)
	if ph := photoOf(p); ph == nil || ph.Text() != "" {
		t.Fatalf("without a vCard photo: %s", p)
	}
	_, b64, hash := testPNG(t, 1, 1)
	alice.must("set", "", "<vCard xmlns='vcard-temp'><PHOTO><TYPE>image/png</TYPE><BINVAL>"+b64+"</BINVAL></PHOTO></vCard>")
	for _, in := range []string{
		"<presence xmlns='jabber:client'><show>away</show></presence>",
		"<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'/></presence>",                      // empty x: overwritten
		"<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo>abc</photo></x></presence>", // a stale hash: overwritten
	} {
		p := parse(t, in)
		e.svc.PresenceUpdate(ctx, "alice", p)
		if ph := photoOf(p); ph == nil || ph.Text() != hash || strings.Count(p.String(), "vcard-temp:x:update") != 1 {
			t.Fatalf("%s became %s, want one x with photo %s", in, p, hash)
		}
	}
	// An empty <photo/> from the client is left alone.
	p = parse(t, "<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo/></x></presence>")
	e.svc.PresenceUpdate(ctx, "alice", p)
	if ph := photoOf(p); ph.Text() != "" {
		t.Fatalf("client's empty photo overwritten: %s", p)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// Removing the image from the avatar data node removes the vCard PHOTO:
// with the node gone it would otherwise be shown to everyone.
func TestAvatarDataDeletedRemovesPhoto(t *testing.T) {
	e := newEnv(t)
	alice := e.connect("alice@localhost/pc")
	carol := e.connect("carol@localhost/pc")
	img, b64, hash := testPNG(t, 2, 2)
	alice.must("set", "", publishXML(NSAvatarData, hash, "<data xmlns='urn:xmpp:avatar:data'>"+b64+"</data>", ""))
	alice.must("set", "", publishXML(NSAvatarMeta, hash, "<metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='"+itoa(len(img))+"' id='"+hash+"' type='image/png'/></metadata>", ""))
	if _, data := vcardPhotoOf(t, alice.must("get", "", "<vCard xmlns='vcard-temp'/>")); !bytes.Equal(data, img) {
		t.Fatal("no PHOTO after the PEP publish")
	}
	alice.must("set", "", "<pubsub xmlns='"+NSPubSubOwner+"'><delete node='"+NSAvatarData+"'/></pubsub>")
	for _, c := range []*client{alice, carol} {
		if v := c.must("get", "alice@localhost", "<vCard xmlns='vcard-temp'/>"); v.Child(NSVCard, "PHOTO") != nil {
			t.Fatalf("%s still sees the PHOTO after the avatar data node was deleted: %s", c.jid, v)
		}
	}
}
