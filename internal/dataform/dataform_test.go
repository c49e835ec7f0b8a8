package dataform

import (
	"testing"

	"bluetick/internal/xmlstream"
)

func parse(t testing.TB, s string) *xmlstream.Element {
	el, err := xmlstream.Parse([]byte(s), xmlstream.Limits{})
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return el
}

func TestParse(t *testing.T) {
	x := parse(t, `<x xmlns='jabber:x:data' type='submit'>
	<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
	<field var='secret'><value>s3</value></field>
	<field var='groups' type='list-multi'><value>a</value><value>b</value></field></x>`)
	f, err := Parse(x)
	if err != nil {
		t.Fatal(err)
	}
	if f.FormType() != "http://jabber.org/protocol/pubsub#publish-options" || f.Get("secret") != "s3" || f.Get("nope") != "" {
		t.Fatalf("form = %+v", f)
	}
	if v := f.Values(); len(v) != 2 || v["secret"] != "s3" || v["groups"] != "a" {
		t.Fatalf("Values = %v", v)
	}
	if f, err := Parse(parse(t, `<x xmlns='jabber:x:data'><field var='a'><value>1</value></field></x>`)); err != nil || f.Type != "" || f.Get("a") != "1" {
		t.Errorf("form without type (as in XEP-0357's examples): %+v, %v", f, err)
	}
	for _, bad := range []string{
		`<x xmlns='jabber:x:data' type='maybe'/>`,
		`<y xmlns='jabber:x:data' type='submit'/>`,
		`<x xmlns='jabber:x:data' type='submit'><field><value>1</value></field></x>`,
		`<x xmlns='jabber:x:data' type='submit'><field var='a'/><field var='a'/></x>`,
		`<x xmlns='jabber:x:data' type='submit'><field var='a'><value>1</value><value>2</value></field></x>`,
	} {
		if _, err := Parse(parse(t, bad)); err == nil {
			t.Errorf("Parse(%s) accepted", bad)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	f := New("result", "urn:xmpp:push:summary").Add("message-count", "", "", "3").Add("last-message-body", "text-single", "Body", "hi <there>")
	g, err := Parse(parse(t, f.Element().String()))
	if err != nil {
		t.Fatal(err)
	}
	if g.FormType() != "urn:xmpp:push:summary" || g.Get("message-count") != "3" || g.Get("last-message-body") != "hi <there>" {
		t.Fatalf("round trip = %+v", g)
	}
}

// FuzzParse: any input either fails to parse or yields a form whose
// rendering parses back to the same fields.
func FuzzParse(f *testing.F) {
	f.Add(`<x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field><field var='message-count'><value>1</value></field></x>`)
	f.Add(`<x xmlns='jabber:x:data' type='form'><title>t</title><field var='a' type='list-multi'><value>1</value><value>2</value></field></x>`)
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.Parse([]byte(s), xmlstream.Limits{MaxElementBytes: 1 << 16})
		if err != nil {
			return
		}
		form, err := Parse(el)
		if err != nil {
			return
		}
		again, err := Parse(parse(t, form.Element().String()))
		if err != nil {
			t.Fatalf("re-parse of %s: %v", form.Element().String(), err)
		}
		if len(again.Fields) != len(form.Fields) {
			t.Fatalf("fields %d -> %d", len(form.Fields), len(again.Fields))
		}
		for i := range form.Fields {
			a, b := form.Fields[i], again.Fields[i]
			if a.Var != b.Var || len(a.Values) != len(b.Values) {
				t.Fatalf("field %d: %+v -> %+v", i, a, b)
			}
			for j := range a.Values {
				if a.Values[j] != b.Values[j] {
					t.Fatalf("field %d value %d: %q -> %q", i, j, a.Values[j], b.Values[j])
				}
			}
		}
	})
}
