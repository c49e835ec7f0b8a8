package mam

import (
	"errors"
	"testing"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// FuzzParseQuery feeds arbitrary query payloads to the query, form, RSM
// and preferences parsers: they must never panic, and every refusal must
// be a stanza error (so the client gets an IQ error, never a crash or an
// internal-server-error).
func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		`<query xmlns='urn:xmpp:mam:2' queryid='f27'/>`,
		`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>urn:xmpp:mam:2</value></field><field var='with'><value>juliet@capulet.lit</value></field><field var='start'><value>2010-06-07T00:00:00Z</value></field><field var='end'><value>2010-07-07T13:23:54.123+02:00</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>10</max><after>09af3</after></set></query>`,
		`<query xmlns='urn:xmpp:mam:2'><x xmlns='jabber:x:data' type='submit'><field var='ids'><value>a</value><value>b</value></field><field var='before-id'><value>x</value></field></x><set xmlns='http://jabber.org/protocol/rsm'><max>0</max><before/></set><flip-page/></query>`,
		`<query xmlns='urn:xmpp:mam:2'><set xmlns='http://jabber.org/protocol/rsm'><index>3</index></set></query>`,
		`<query xmlns='urn:xmpp:mam:2' node='x'/>`,
		`<prefs xmlns='urn:xmpp:mam:2' default='roster'><always><jid>a@b</jid></always><never><jid>c@d/e</jid></never></prefs>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := xmlstream.Parse(data, xmlstream.Limits{})
		if err != nil {
			return
		}
		check := func(what string, err error) {
			var se *stanza.Error
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("%s: non-stanza error %v", what, err)
			}
			if se != nil && se.Condition == "internal-server-error" {
				t.Fatalf("%s: internal-server-error for client input", what)
			}
		}
		q, err := ParseQuery(el)
		check("ParseQuery", err)
		if err == nil && (q.Max < 0 || q.Max > MaxPage || len(q.IDs) > maxIDs) {
			t.Fatalf("limits not applied: max %d, %d ids", q.Max, len(q.IDs))
		}
		p, err := ParsePrefs(el)
		check("ParsePrefs", err)
		if err == nil {
			_ = PrefsElement(p).String()
		}
	})
}
