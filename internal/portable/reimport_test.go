package portable

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bluetick/internal/store/sqlite"
)

// TestReimportUndelayedOffline: a file's offline message without a
// XEP-0203 delay gets one stamped at import time; importing the file
// again later must still recognise the message as already stored.
func TestReimportUndelayedOffline(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "b.db"))
	must(t, err)
	defer st.Close()
	doc := `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='bob' password='pw'><offline-messages>
<message xmlns='jabber:client' from='alice@example.com/pc' to='bob@example.com' type='chat' id='m1'><body>no delay</body></message>
<message xmlns='jabber:client' from='alice@example.com/pc' to='bob@example.com' type='chat' id='m2'><body>delayed</body><delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-01-02T03:04:05Z'/></message>
</offline-messages></user></host></server-data>`
	ctx := context.Background()
	clock := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	for i, want := range []struct{ stored, dup int }{{2, 0}, {0, 2}} {
		clock = clock.Add(time.Hour) // a later run: another stamp for the undelayed one
		im := &Importer{St: st, Domain: "example.com", Now: func() time.Time { return clock }}
		must(t, Read(strings.NewReader(doc), Visitor{Account: func(a *Account) error { return im.Account(ctx, a) }}))
		if im.Sum.Offline != want.stored || im.Sum.OfflineDuplicate != want.dup {
			t.Fatalf("import %d: stored %d, already there %d; want %d, %d", i+1, im.Sum.Offline, im.Sum.OfflineDuplicate, want.stored, want.dup)
		}
	}
	msgs, err := st.OfflineMessages(ctx, "bob", 0)
	must(t, err)
	if len(msgs) != 2 || !strings.Contains(string(msgs[0].Data), "2026-05-01T01:00:00.000Z") || !msgs[1].Stored.Equal(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)) {
		t.Fatalf("stored %d messages: %s / %v", len(msgs), msgs[0].Data, msgs[1].Stored)
	}
}

// TestVCardFromVCard4: Prosody's export (mod_vcard_legacy) has the vCard
// only as a vCard4 PEP node; the import builds the vcard-temp clients
// read, with the avatar as PHOTO, and leaves an existing one alone.
func TestVCardFromVCard4(t *testing.T) {
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "b.db"))
	must(t, err)
	defer st.Close()
	ctx := context.Background()
	doc := `<server-data xmlns='urn:xmpp:pie:0'><host jid='example.com'><user name='alice' password='pw'>
<pubsub xmlns='http://jabber.org/protocol/pubsub'>
<items node='urn:xmpp:vcard4'><item id='current'><vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Alice Liddell</text></fn><n><surname>Liddell</surname><given>Alice</given><additional/></n><nickname><text>alice</text></nickname><email><text>alice@example.com</text></email><impp><uri>xmpp:alice@example.com</uri></impp></vcard></item></items>
<items node='urn:xmpp:avatar:data'><item id='abc'><data xmlns='urn:xmpp:avatar:data'>iVBORw0K
GgoAAAA=</data></item></items>
<items node='urn:xmpp:avatar:metadata'><item id='abc'><metadata xmlns='urn:xmpp:avatar:metadata'><info id='abc' bytes='10' type='image/png'/></metadata></item></items>
</pubsub></user><user name='bob' password='pw'><pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:vcard4'><item id='current'><vcard xmlns='urn:ietf:params:xml:ns:vcard-4.0'><fn><text>Old Bob</text></fn></vcard></item></items></pubsub></user></host></server-data>`
	must(t, st.CreateUser(ctx, "bob", nil))
	must(t, st.SetVCard(ctx, "bob", []byte(`<vCard xmlns='vcard-temp'><FN>New Bob</FN></vCard>`)))
	im := &Importer{St: st, Domain: "example.com"}
	must(t, Read(strings.NewReader(doc), Visitor{Account: func(a *Account) error { return im.Account(ctx, a) }}))
	v, err := st.VCard(ctx, "alice")
	must(t, err)
	want := `<vCard xmlns='vcard-temp'><FN>Alice Liddell</FN><N><FAMILY>Liddell</FAMILY><GIVEN>Alice</GIVEN></N><NICKNAME>alice</NICKNAME><EMAIL><INTERNET/><USERID>alice@example.com</USERID></EMAIL><JABBERID>alice@example.com</JABBERID><PHOTO><TYPE>image/png</TYPE><BINVAL>iVBORw0KGgoAAAA=</BINVAL></PHOTO></vCard>`
	if string(v) != want {
		t.Fatalf("vCard\n got %s\nwant %s", v, want)
	}
	if v, _ := st.VCard(ctx, "bob"); !strings.Contains(string(v), "New Bob") {
		t.Fatalf("bob's own vCard replaced: %s", v)
	}
	if im.Sum.VCardsFromPEP != 1 {
		t.Fatalf("summary %+v", im.Sum)
	}
}
