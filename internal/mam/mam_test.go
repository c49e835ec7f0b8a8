package mam

import (
	"slices"
	"testing"
	"time"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

func mustParse(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.Parse([]byte(s), xmlstream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return el
}

func TestArchivable(t *testing.T) {
	for _, c := range []struct {
		xml  string
		want bool
	}{
		{`<message xmlns='jabber:client' type='chat'><body>hi</body></message>`, true},
		{`<message xmlns='jabber:client'><body>hi</body></message>`, true},
		{`<message xmlns='jabber:client' type='normal'><body>hi</body></message>`, true},
		{`<message xmlns='jabber:client' type='chat'><active xmlns='http://jabber.org/protocol/chatstates'/></message>`, false},
		{`<message xmlns='jabber:client' type='chat'><received xmlns='urn:xmpp:receipts' id='x'/></message>`, false},
		{`<message xmlns='jabber:client' type='chat'><encrypted xmlns='eu.siacs.conversations.axolotl'/><store xmlns='urn:xmpp:hints'/></message>`, true},
		{`<message xmlns='jabber:client' type='chat'><body>hi</body><no-store xmlns='urn:xmpp:hints'/></message>`, false},
		{`<message xmlns='jabber:client' type='chat'><body>hi</body><no-permanent-store xmlns='urn:xmpp:hints'/></message>`, false},
		{`<message xmlns='jabber:client' type='headline'><body>hi</body></message>`, false},
		{`<message xmlns='jabber:client' type='groupchat'><body>hi</body></message>`, false},
		{`<message xmlns='jabber:client' type='error'><body>hi</body></message>`, false},
	} {
		if got := Archivable(mustParse(t, c.xml)); got != c.want {
			t.Errorf("Archivable(%s) = %v", c.xml, got)
		}
	}
}

func TestParseQuery(t *testing.T) {
	q, err := ParseQuery(mustParse(t, `<query xmlns='urn:xmpp:mam:2' queryid='f27'>
<x xmlns='jabber:x:data' type='submit'>
 <field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field>
 <field var='with'><value>Juliet@Capulet.lit</value></field>
 <field var='start'><value>2010-06-07T00:00:00Z</value></field>
 <field var='end'><value>2010-07-07T13:23:54.5+02:00</value></field>
 <field var='after-id'><value>a1</value></field>
 <field var='ids'><value>i1</value><value>i2</value></field>
 <field var='before-id'/>
</x>
<set xmlns='http://jabber.org/protocol/rsm'><max>1000</max><before/></set>
<flip-page/>
</query>`))
	if err != nil {
		t.Fatal(err)
	}
	if q.QueryID != "f27" || q.With != "juliet@capulet.lit" || !q.Start.Equal(time.Date(2010, 6, 7, 0, 0, 0, 0, time.UTC)) ||
		!q.End.Equal(time.Date(2010, 7, 7, 11, 23, 54, 500_000_000, time.UTC)) || !slices.Equal(q.After, []string{"a1"}) ||
		len(q.Before) != 0 || !slices.Equal(q.IDs, []string{"i1", "i2"}) || q.Max != MaxPage || !q.FromEnd || !q.Flip {
		t.Fatalf("parsed %+v", q)
	}
	if q, _ := ParseQuery(mustParse(t, `<query xmlns='urn:xmpp:mam:2'/>`)); q.Max != DefaultMax || q.FromEnd {
		t.Fatalf("defaults %+v", q)
	}
	for xml, cond := range map[string]string{
		`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:mam:1</value></field></x></query>`: "bad-request",
		`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='with'><value>a</value><value>b</value></field></x></query>`:   "bad-request",
		`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='start'><value>2010-06-07</value></field></x></query>`:         "bad-request",
		`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='include-groupchat'><value>true</value></field></x></query>`:   "feature-not-implemented",
		`<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>ten</max></set></query>`:                                        "bad-request",
		`<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><after/></set></query>`:                                              "bad-request",
		`<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><max>1</max><max>2</max></set></query>`:                              "bad-request",
		`<query xmlns='urn:xmpp:mam:2'><unknown/></query>`:                                                                                              "feature-not-implemented",
		`<query xmlns='urn:xmpp:mam:2' node='urn:xmpp:mucsub:nodes:messages'/>`:                                                                         "item-not-found",
	} {
		_, err := ParseQuery(mustParse(t, xml))
		if se, ok := err.(*stanza.Error); !ok || se.Condition != cond {
			t.Errorf("%s: %v, want %s", xml, err, cond)
		}
	}
}

func TestParsePrefs(t *testing.T) {
	p, err := ParsePrefs(mustParse(t, `<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>Romeo@montague.lit</jid></always><never><jid>montague.lit</jid></never></prefs>`))
	if err != nil || p.Default != "roster" || !slices.Equal(p.Always, []string{"romeo@montague.lit"}) || !slices.Equal(p.Never, []string{"montague.lit"}) {
		t.Fatalf("%+v %v", p, err)
	}
	back, err := ParsePrefs(PrefsElement(p))
	if err != nil || back.Default != p.Default || !slices.Equal(back.Always, p.Always) || !slices.Equal(back.Never, p.Never) {
		t.Fatalf("round trip %+v %v", back, err)
	}
	for _, bad := range []string{
		`<prefs xmlns='urn:xmpp:mam:2'/>`,
		`<prefs xmlns='urn:xmpp:mam:2' default='maybe'/>`,
		`<prefs xmlns='urn:xmpp:mam:2' default='always'><always><jid>@@</jid></always></prefs>`,
		`<prefs xmlns='urn:xmpp:mam:2' default='always'><always><jid>a@b</jid></always><never><jid>a@b</jid></never></prefs>`,
	} {
		if _, err := ParsePrefs(mustParse(t, bad)); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
