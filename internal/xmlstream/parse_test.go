package xmlstream

import (
	"strings"
	"testing"
)

func TestParseWebSocketFrames(t *testing.T) {
	tests := []struct {
		name, in, want, err string
	}{
		{name: "open", in: `<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.com' version='1.0'/>`,
			want: `{urn:ietf:params:xml:ns:xmpp-framing}open to="example.com" version="1.0"[]`},
		{name: "close", in: `<close xmlns="urn:ietf:params:xml:ns:xmpp-framing" />`, want: `{urn:ietf:params:xml:ns:xmpp-framing}close[]`},
		{name: "stanza", in: stanzas[0], want: `{}message from="juliet@example.com/balcony" to="romeo@example.net" id="ktx72v49" type="chat" xml:lang="en"[{}body["Art thou not Romeo, and a Montague?"]{urn:xmpp:receipts}request[]{http://jabber.org/protocol/chatstates}active[]]`},
		{name: "stanza with namespace", in: `<message xmlns='jabber:client' to='a@b'><body>x</body></message>`, want: `{jabber:client}message to="a@b"[{jabber:client}body["x"]]`},
		{name: "stream features with prefix", in: `<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`,
			want: `{http://etherx.jabber.org/streams}features[{urn:ietf:params:xml:ns:xmpp-bind}bind[]]`},
		{name: "whitespace and declaration", in: "\n <?xml version='1.0'?>\n<r xmlns='urn:xmpp:sm:3'/>\r\n\t", want: `{urn:xmpp:sm:3}r[]`},

		{name: "empty", in: "", err: "not-well-formed"},
		{name: "only whitespace", in: "  \n", err: "not-well-formed"},
		{name: "text", in: "hello", err: "not-well-formed"},
		{name: "two elements", in: `<a/><b/>`, err: "not-well-formed"},
		{name: "trailing text", in: `<a/>x`, err: "not-well-formed"},
		{name: "truncated", in: `<message><body>hi</body>`, err: "not-well-formed"},
		{name: "truncated tag", in: `<message to='x`, err: "not-well-formed"},
		{name: "end tag only", in: `</message>`, err: "not-well-formed"},
		{name: "stream header", in: `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`, err: "not-well-formed"},
		{name: "trailing comment", in: `<a/><!-- x -->`, err: "restricted-xml"},
		{name: "trailing PI", in: `<a/><?x?>`, err: "restricted-xml"},
		{name: "leading comment", in: `<!-- x --><a/>`, err: "restricted-xml"},
		{name: "leading PI", in: `<?php?><a/>`, err: "restricted-xml"},
		{name: "bad declaration", in: `<?xml version='1.0' encoding='UTF-16'?><a/>`, err: "not-well-formed"},
		{name: "undeclared prefix", in: `<stream:features/>`, err: "bad-namespace-prefix"},
		{name: "entity", in: `<a>&copy;</a>`, err: "restricted-xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			el, err := Parse([]byte(tt.in), Limits{})
			if tt.err != "" {
				if got := kindOf(err); got != tt.err {
					t.Fatalf("got %s (%v), want %s", got, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(el); got != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// Parse must not keep references into its input: WebSocket libraries reuse
// the frame buffer.
func TestParseDoesNotAlias(t *testing.T) {
	for _, in := range []string{stanzas[3], elementOfSize(10000)} {
		data := []byte(in)
		el, err := Parse(data, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		before := dump(el)
		for i := range data {
			data[i] = '#'
		}
		if dump(el) != before {
			t.Fatal("tree changed when the input was overwritten")
		}
	}
}

func TestAppend(t *testing.T) {
	msg := New(NSClient, "message", "to", "a@b", "type", "chat")
	msg.Append(New(NSClient, "body").AppendText(`<hi> & "bye" 'x' ]]>`))
	msg.Append(New("urn:xmpp:receipts", "request"))
	msg.Append(New("", "nons"))
	tests := []struct {
		name     string
		el       *Element
		parentNS string
		want     string
	}{
		{"in client stream", msg, NSClient, `<message to='a@b' type='chat'><body>&lt;hi&gt; &amp; "bye" 'x' ]]&gt;</body><request xmlns='urn:xmpp:receipts'/><nons xmlns=''/></message>`},
		{"standalone", msg, "", `<message xmlns='jabber:client' to='a@b' type='chat'><body>&lt;hi&gt; &amp; "bye" 'x' ]]&gt;</body><request xmlns='urn:xmpp:receipts'/><nons xmlns=''/></message>`},
		{"attribute escaping", New("", "x", "a", "it's <&> \"q\"\t\n\r"), "", `<x a='it&apos;s &lt;&amp;> "q"&#x9;&#xA;&#xD;'/>`},
		{"text escaping", New("", "x").AppendText("a\r\nb\tc\n"), "", "<x>a&#xD;\nb\tc\n</x>"},
		{"xml:lang kept", New("", "x", "xml:lang", "en"), "", `<x xml:lang='en'/>`},
		{"xmlns attribute ignored", &Element{Space: "u", Name: "x", Attrs: []Attr{{"xmlns", "other"}}}, "", `<x xmlns='u'/>`},
		{"namespace escaped", New("a'b&c", "x"), "", `<x xmlns='a&apos;b&amp;c'/>`},
		{"invalid characters replaced", New("", "x", "a", "\x00\xFF").AppendText("\x01\uFFFE\xC3"), "", "<x a='\uFFFD\uFFFD'>\uFFFD\uFFFD\uFFFD</x>"},
		{"valid non-ASCII kept", New("", "x", "a", "日本").AppendText("😀\u0085"), "", "<x a='日本'>😀\u0085</x>"},
		{"nil", nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(Append([]byte("prefix:"), tt.el, tt.parentNS))
			if got != "prefix:"+tt.want {
				t.Fatalf("got\n%s\nwant\n%s", got, "prefix:"+tt.want)
			}
		})
	}
	if got := msg.String(); got != tests[1].want {
		t.Fatalf("String() = %s", got)
	}
}

func TestEscapingRoundTrip(t *testing.T) {
	values := []string{
		"plain", "", " leading and trailing ", "a&b<c>d\"e'f", "tab\there", "new\nline", "cr\rlf\r\n",
		"]]>", "&amp; already escaped", "日本語 😀 \u0085 \U0010FFFF", strings.Repeat("&<>", 100),
	}
	for _, v := range values {
		el := New(NSClient, "message", "id", v, "xml:lang", "en")
		if v != "" {
			el.Append(New(NSClient, "body").AppendText(v))
		}
		data := Append(nil, el, "")
		got, err := Parse(data, Limits{})
		if err != nil {
			t.Fatalf("%q: %v in %s", v, err, data)
		}
		if dump(got) != dump(el) {
			t.Fatalf("%q round trip:\n%s\n%s", v, dump(got), dump(el))
		}
		// Inside a stream, with the stream's namespace in scope.
		evs, _ := decodeAll(strings.NewReader(header+string(Append(nil, el, NSClient))), Limits{})
		if len(evs) != 2 || evs[1] != dump(el) {
			t.Fatalf("%q stream round trip: %v", v, evs)
		}
	}
}

func TestDecodedStanzasRoundTrip(t *testing.T) {
	for _, s := range stanzas {
		evs, err := decodeAll(strings.NewReader(header+s), Limits{})
		if len(evs) != 2 {
			t.Fatal(err)
		}
		d := NewDecoder(strings.NewReader(header+s), Limits{})
		d.Next()
		ev, _ := d.Next()
		out := Append(nil, ev.Elem, NSClient)
		evs2, _ := decodeAll(strings.NewReader(header+string(out)), Limits{})
		if len(evs2) != 2 || evs2[1] != evs[1] {
			t.Fatalf("round trip of %s via %s:\n%v\n%v", s, out, evs2, evs)
		}
	}
}
