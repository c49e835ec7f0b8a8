package xmlstream

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestStreamHeader(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{
			name: "client stream with declaration",
			in:   header + `</stream:stream>`,
			want: []string{`start(jabber:client) {http://etherx.jabber.org/streams}stream to="example.com" version="1.0"[]`, "end"},
		},
		{
			name: "double quotes, encoding, no newline",
			in:   `<?xml version="1.0" encoding="UTF-8"?><stream:stream xmlns:stream="http://etherx.jabber.org/streams" xmlns="jabber:client" xml:lang="en" from="a@b">`,
			want: []string{`start(jabber:client) {http://etherx.jabber.org/streams}stream xml:lang="en" from="a@b"[]`},
		},
		{
			name: "no declaration, leading whitespace and BOM",
			in:   "\xEF\xBB\xBF\n  <stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' xmlns:db='jabber:server:dialback'>" + `<db:result from='a' to='b'>key</db:result></stream:stream>`,
			want: []string{
				`start(jabber:server) {http://etherx.jabber.org/streams}stream[]`,
				`{jabber:server:dialback}result from="a" to="b"["key"]`,
				"end",
			},
		},
		{
			name: "other prefix for the stream namespace",
			in:   `<s:stream xmlns:s='http://etherx.jabber.org/streams' xmlns='jabber:client'><s:features/></s:stream>`,
			want: []string{`start(jabber:client) {http://etherx.jabber.org/streams}stream[]`, `{http://etherx.jabber.org/streams}features[]`, "end"},
		},
		{
			name: "stream namespace as default",
			in:   `<stream xmlns='http://etherx.jabber.org/streams'><features/></stream>`,
			want: []string{`start(http://etherx.jabber.org/streams) {http://etherx.jabber.org/streams}stream[]`, `{http://etherx.jabber.org/streams}features[]`, "end"},
		},
		{
			name: "empty root",
			in:   `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>`,
			want: []string{`start() {http://etherx.jabber.org/streams}stream[]`, "end"},
		},
		{
			name: "keepalive whitespace between stanzas",
			in:   header + " \n\t\r\n <r xmlns='urn:xmpp:sm:3'/> \n ",
			want: []string{`start(jabber:client) {http://etherx.jabber.org/streams}stream to="example.com" version="1.0"[]`, `{urn:xmpp:sm:3}r[]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAll(strings.NewReader(tt.in), Limits{})
			if err != io.EOF {
				t.Fatalf("error %v, want io.EOF", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestStanzas(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"message", stanzas[0], `{jabber:client}message from="juliet@example.com/balcony" to="romeo@example.net" id="ktx72v49" type="chat" xml:lang="en"[{jabber:client}body["Art thou not Romeo, and a Montague?"]{urn:xmpp:receipts}request[]{http://jabber.org/protocol/chatstates}active[]]`},
		{"stream prefix inside", `<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>x</text></stream:error>`,
			`{http://etherx.jabber.org/streams}error[{urn:ietf:params:xml:ns:xmpp-streams}conflict[]{urn:ietf:params:xml:ns:xmpp-streams}text xml:lang="en"["x"]]`},
		{"nested default namespaces", `<iq type='result' id='1'><query xmlns='jabber:iq:roster'><item jid='a@b'><group>G</group></item></query><x xmlns='jabber:x:data'><field/></x></iq>`,
			`{jabber:client}iq type="result" id="1"[{jabber:iq:roster}query[{jabber:iq:roster}item jid="a@b"[{jabber:iq:roster}group["G"]]]{jabber:x:data}x[{jabber:x:data}field[]]]`},
		{"prefixed payload", `<message><p:event xmlns:p='urn:p' p:attr='1' plain='2'><p:items node='n'/><item/></p:event><body/></message>`,
			`{jabber:client}message[{urn:p}event p:attr="1" plain="2"[{urn:p}items node="n"[]{jabber:client}item[]]{jabber:client}body[]]`},
		{"prefix redeclared in a child", `<message xmlns:p='urn:one'><p:a><p:b xmlns:p='urn:two'/><p:c/></p:a></message>`,
			`{jabber:client}message[{urn:one}a[{urn:two}b[]{urn:one}c[]]]`},
		{"default namespace undeclared", `<message><x xmlns=''><y/></x><z/></message>`,
			`{jabber:client}message[{}x[{}y[]]{jabber:client}z[]]`},
		{"prefix declared on the element it names", `<q:iq xmlns:q='jabber:client' type='get'/>`, `{jabber:client}iq type="get"[]`},
		{"references", `<message id='a&amp;b&lt;c&gt;&quot;&apos;&#65;&#x42;&#x1F600;'><body>&lt;b&gt;&amp;&#38;&#x26;&#128512;</body></message>`,
			`{jabber:client}message id="a&b<c>\"'AB😀"[{jabber:client}body["<b>&&&😀"]]`},
		{"cdata merged with text", `<message><body>a<![CDATA[<b>&amp;]]]]>c<![CDATA[]]>d</body></message>`,
			`{jabber:client}message[{jabber:client}body["a<b>&amp;]]cd"]]`},
		{"mixed content keeps order", `<message><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'>Hi <em>you</em> there</body></html></message>`,
			`{jabber:client}message[{http://jabber.org/protocol/xhtml-im}html[{http://www.w3.org/1999/xhtml}body["Hi "{http://www.w3.org/1999/xhtml}em["you"]" there"]]]`},
		{"line ends", "<message a='x\r\ny\tz\n&#10;&#13;&#9;'><body>1\r\n2\r3\n4&#13;</body></message>",
			`{jabber:client}message a="x y z \n\r\t"[{jabber:client}body["1\n2\n3\n4\r"]]`},
		{"whitespace in tags", "<message\n\tto = \"x\" \r\n><body\n>t</body\n ></message >", `{jabber:client}message to="x"[{jabber:client}body["t"]]`},
		{"non-ASCII names and text", `<message><ñame attr-é='ü'>日本語</ñame></message>`, `{jabber:client}message[{jabber:client}ñame attr-é="ü"["日本語"]]`},
		{"xml prefix on element attribute", `<message xml:lang='de' xmlns:xml='http://www.w3.org/XML/1998/namespace'/>`, `{jabber:client}message xml:lang="de"[]`},
		{"cdata line ends and non-ASCII", "<message><body><![CDATA[a\r\nb\rc é]]></body></message>", `{jabber:client}message[{jabber:client}body["a\nb\nc é"]]`},
		{"many attributes", "<message" + manyAttrs(20) + "/>", `{jabber:client}message` + manyAttrsDump(20) + `[]`},
		{"gt and quotes in values", `<message a='>"' b=">'"/>`, `{jabber:client}message a=">\"" b=">'"[]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeAll(strings.NewReader(header+tt.in), Limits{})
			if err != io.EOF {
				t.Fatalf("error %v", err)
			}
			if len(got) != 2 || got[1] != tt.want {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got[1:], "\n"), tt.want)
			}
			// The same element as a standalone frame gives the same tree
			// when the default namespace is written out.
			if !strings.Contains(tt.in, "stream:") {
				el, err := Parse([]byte(tt.in), Limits{})
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				re, err := Parse(Append(nil, el, ""), Limits{})
				if err != nil || dump(re) != dump(el) {
					t.Fatalf("Parse round trip: %v\n%s\n%s", err, dump(re), dump(el))
				}
			}
		})
	}
}

// streams gathers every well-formed input the tests use, so splitting the
// input can be checked on all of them.
func streams() []string {
	all := []string{header + strings.Join(stanzas, "\n") + "</stream:stream>"}
	for _, s := range stanzas {
		all = append(all, header+s+" "+s)
	}
	all = append(all, "\xEF\xBB\xBF<?xml version=\"1.0\" encoding='utf-8' standalone='yes' ?>\n"+
		`<stream:stream xmlns:stream='http://etherx.jabber.org/streams' xmlns='jabber:client'><message><body><![CDATA[x]]]]><![CDATA[>]]>&#x10FFFF;</body></message></stream:stream>`)
	return all
}

func TestSplitInput(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	for _, in := range streams() {
		want, werr := decodeAll(strings.NewReader(in), Limits{})
		got, gerr := decodeAll(&oneByteReader{in}, Limits{})
		if !reflect.DeepEqual(got, want) || kindOf(gerr) != kindOf(werr) {
			t.Fatalf("one byte at a time differs on %q:\n%v %v\n%v %v", in, got, gerr, want, werr)
		}
		for n := 0; n < 20; n++ {
			var chunks []string
			for rest := in; rest != ""; {
				k := 1 + rng.Intn(min(len(rest), 40))
				chunks = append(chunks, rest[:k])
				rest = rest[k:]
			}
			got, gerr := decodeAll(&chunkReader{chunks}, Limits{})
			if !reflect.DeepEqual(got, want) || kindOf(gerr) != kindOf(werr) {
				t.Fatalf("chunks %q differ:\n%v %v\n%v %v", chunks, got, gerr, want, werr)
			}
		}
	}
}

func TestErrors(t *testing.T) {
	const nwf, rx, tl, bnp = "not-well-formed", "restricted-xml", "too-large", "bad-namespace-prefix"
	tests := []struct {
		name, in, want string
		noHeader       bool
	}{
		// restricted XML (RFC 6120 §11.1)
		{name: "comment in stanza", in: `<message><!-- hi --></message>`, want: rx},
		{name: "comment between stanzas", in: `<!-- hi -->`, want: rx},
		{name: "comment before root", in: `<!-- hi --><stream:stream/>`, want: rx, noHeader: true},
		{name: "doctype", in: `<?xml version='1.0'?><!DOCTYPE stream [<!ENTITY x 'y'>]><stream:stream/>`, want: rx, noHeader: true},
		{name: "doctype in stanza", in: `<message><!DOCTYPE x></message>`, want: rx},
		{name: "PI in stanza", in: `<message><?php echo 1 ?></message>`, want: rx},
		{name: "PI between stanzas", in: `<?foo?>`, want: rx},
		{name: "second XML declaration", in: `<?xml version='1.0'?>`, want: rx},
		{name: "xml-stylesheet PI before root", in: `<?xml-stylesheet href='a'?><stream:stream/>`, want: rx, noHeader: true},
		{name: "entity reference", in: `<message><body>&nbsp;</body></message>`, want: rx},
		{name: "entity reference in attribute", in: `<message id='&foo;'/>`, want: rx},
		// not well-formed
		{name: "mismatched end tag", in: `<message><body></bodx></message>`, want: nwf},
		{name: "mismatched prefix in end tag", in: `<message><p:a xmlns:p='u'></a></message>`, want: nwf},
		{name: "duplicate attribute", in: `<message id='1' id='2'/>`, want: nwf},
		{name: "duplicate among many attributes", in: "<message" + manyAttrs(20) + " a7='x'/>", want: nwf},
		{name: "control char in CDATA", in: "<message><![CDATA[\x01]]></message>", want: nwf},
		{name: "bad UTF-8 in CDATA", in: "<message><![CDATA[\xC0]]></message>", want: nwf},
		{name: "bad CDATA keyword", in: "<message><![CDATX[x]]></message>", want: nwf},
		{name: "name start character", in: "<message><\u00D7/></message>", want: nwf},
		{name: "combining mark cannot start a name", in: "<message><\u0300a/></message>", want: nwf},
		{name: "duplicate declaration", in: `<message xmlns='a' xmlns='b'/>`, want: nwf},
		{name: "unquoted attribute", in: `<message id=1/>`, want: nwf},
		{name: "attribute without value", in: `<message id/>`, want: nwf},
		{name: "no space between attributes", in: `<message a='1'b='2'/>`, want: nwf},
		{name: "lt in attribute", in: `<message a='<'/>`, want: nwf},
		{name: "bare ampersand", in: `<message><body>a & b</body></message>`, want: nwf},
		{name: "unterminated reference", in: `<message><body>&amp</body></message>`, want: nwf},
		{name: "bad char ref", in: `<message><body>&#xZZ;</body></message>`, want: nwf},
		{name: "char ref to NUL", in: `<message><body>&#0;</body></message>`, want: nwf},
		{name: "char ref to surrogate", in: `<message><body>&#xD800;</body></message>`, want: nwf},
		{name: "char ref too large", in: `<message><body>&#x110000;</body></message>`, want: nwf},
		{name: "control char", in: "<message><body>\x01</body></message>", want: nwf},
		{name: "NUL in attribute", in: "<message a='\x00'/>", want: nwf},
		{name: "U+FFFE", in: "<message><body>\uFFFE</body></message>", want: nwf},
		{name: "invalid UTF-8 in text", in: "<message><body>\xC3\x28</body></message>", want: nwf},
		{name: "invalid UTF-8 in attribute", in: "<message a='\xFF'/>", want: nwf},
		{name: "surrogate in UTF-8", in: "<message><body>\xED\xA0\x80</body></message>", want: nwf},
		{name: "invalid UTF-8 in name", in: "<message><b\xFFody/></message>", want: nwf},
		{name: "name starting with digit", in: `<message><1a/></message>`, want: nwf},
		{name: "space after lt", in: `<message>< body/></message>`, want: nwf},
		{name: "cdata end in text", in: `<message><body>a]]>b</body></message>`, want: nwf},
		{name: "unterminated cdata", in: `<message><![CDATA[abc</message>`, want: "unexpected-EOF"},
		{name: "text in root", in: `hello`, want: nwf},
		{name: "cdata in root", in: `<![CDATA[x]]>`, want: nwf},
		{name: "reference in root", in: `&amp;`, want: nwf},
		{name: "wrong root end tag", in: `</stream:streamx>`, want: nwf},
		{name: "root end tag with other prefix", in: `</s:stream>`, want: nwf},
		{name: "end tag before root", in: `</stream:stream>`, want: nwf, noHeader: true},
		{name: "text before root", in: `hi<stream:stream/>`, want: nwf, noHeader: true},
		{name: "bad XML version", in: `<?xml version='2.0'?><stream:stream/>`, want: nwf, noHeader: true},
		{name: "XML declaration without version", in: `<?xml encoding='UTF-8'?><stream:stream/>`, want: nwf, noHeader: true},
		{name: "non-UTF-8 encoding", in: `<?xml version='1.0' encoding='ISO-8859-1'?><stream:stream/>`, want: nwf, noHeader: true},
		{name: "element name with two colons", in: `<message><a:b:c xmlns:a='u'/></message>`, want: nwf},
		{name: "element name starting with colon", in: `<message><:a/></message>`, want: nwf},
		{name: "empty prefix declaration", in: `<message xmlns:p=''/>`, want: nwf},
		{name: "xmlns prefix declared", in: `<message xmlns:xmlns='u'/>`, want: nwf},
		{name: "xml prefix rebound", in: `<message xmlns:xml='u'/>`, want: nwf},
		{name: "XML namespace bound to other prefix", in: `<message xmlns:x='http://www.w3.org/XML/1998/namespace'/>`, want: nwf},
		{name: "slash not followed by gt", in: `<message/ >`, want: nwf},
		{name: "lt inside tag", in: `<message <body/>`, want: nwf},
		{name: "end tag garbage", in: `<message></message x>`, want: nwf},
		// bad namespace prefix
		{name: "undeclared element prefix", in: `<foo:message/>`, want: bnp},
		{name: "undeclared nested prefix", in: `<message><x:body/></message>`, want: bnp},
		{name: "prefix out of scope", in: `<message><a xmlns:p='u'/><p:b/></message>`, want: bnp},
		{name: "undeclared root prefix", in: `<stream:stream xmlns='jabber:client'>`, want: bnp, noHeader: true},
		{name: "xmlns as element prefix", in: `<message><xmlns:a/></message>`, want: bnp},
		// truncation
		{name: "EOF inside stanza", in: `<message><body>hi`, want: "unexpected-EOF"},
		{name: "EOF inside tag", in: `<message to='x`, want: "unexpected-EOF"},
		{name: "EOF after lt", in: `<`, want: "unexpected-EOF"},
		{name: "EOF inside root tag", in: `<stream:stream xmlns='jabber:client'`, want: "unexpected-EOF", noHeader: true},
		{name: "EOF inside declaration", in: `<?xml version=`, want: "unexpected-EOF", noHeader: true},
		{name: "clean EOF before root", in: "  \n", want: "EOF", noHeader: true},
		{name: "clean EOF between stanzas", in: `<r xmlns='urn:xmpp:sm:3'/>  `, want: "EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if !tt.noHeader {
				in = header + in
			}
			for _, r := range []io.Reader{strings.NewReader(in), &oneByteReader{in}} {
				_, err := decodeAll(r, Limits{})
				if got := kindOf(err); got != tt.want {
					t.Fatalf("got %s (%v), want %s", got, err, tt.want)
				}
			}
		})
	}
}

func manyAttrs(n int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, " a%d='%d'", i, i)
	}
	return sb.String()
}

func manyAttrsDump(n int) string {
	var sb strings.Builder
	for i := range n {
		fmt.Fprintf(&sb, " a%d=\"%d\"", i, i)
	}
	return sb.String()
}

func TestNameRunes(t *testing.T) {
	for _, tt := range []struct {
		r           rune
		start, name bool
	}{
		{'é', true, true}, {0xD7, false, false}, {0xF7, false, false}, {0x37E, false, false},
		{0x300, false, true}, {0xB7, false, true}, {0x203F, false, true}, {0x200C, true, true},
		{'日', true, true}, {0xFFFE, false, false}, {0x10000, true, true}, {0xF0000, false, false},
		{0x2000, false, false}, {0x3000, false, false},
	} {
		if isNameStartRune(tt.r) != tt.start || isNameRune(tt.r) != tt.name {
			t.Errorf("%U: start %v name %v", tt.r, isNameStartRune(tt.r), isNameRune(tt.r))
		}
	}
}

func TestErrorIsSticky(t *testing.T) {
	d := NewDecoder(strings.NewReader(header+`<message><!-- x --></message><r xmlns='urn:xmpp:sm:3'/>`), Limits{})
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	_, err1 := d.Next()
	_, err2 := d.Next()
	if !errors.Is(err1, ErrRestrictedXML) || err1 != err2 {
		t.Fatalf("errors %v, %v: want the same restricted-xml error twice", err1, err2)
	}
	if !strings.Contains(err1.Error(), "at byte") {
		t.Fatalf("error %q has no offset", err1)
	}
}

func TestAfterStreamEnd(t *testing.T) {
	d := NewDecoder(strings.NewReader(header+`</stream:stream><message/>`), Limits{})
	for _, want := range []EventKind{StreamStart, StreamEnd} {
		if ev, err := d.Next(); err != nil || ev.Kind != want {
			t.Fatalf("got %v %v, want %v", ev.Kind, err, want)
		}
	}
	for range 2 {
		if _, err := d.Next(); err != io.EOF {
			t.Fatalf("after StreamEnd: %v, want io.EOF", err)
		}
	}
}

// elementOfSize returns a message of exactly n bytes.
func elementOfSize(n int) string {
	const open, close = "<message><body>", "</body></message>"
	return open + strings.Repeat("x", n-len(open)-len(close)) + close
}

// elementOfDepth returns a message nested depth levels deep, counting the
// message itself.
func elementOfDepth(depth int) string {
	return "<message>" + strings.Repeat("<a>", depth-1) + strings.Repeat("</a>", depth-1) + "</message>"
}

func TestLimits(t *testing.T) {
	lim := Limits{MaxElementBytes: 2000, MaxDepth: 10}
	tests := []struct {
		name, el string
		ok       bool
	}{
		{"size at limit", elementOfSize(2000), true},
		{"size one over", elementOfSize(2001), false},
		{"depth at limit", elementOfDepth(10), true},
		{"depth one over", elementOfDepth(11), false},
		{"empty element one level too deep", "<message>" + strings.Repeat("<a>", 9) + "<b/>" + strings.Repeat("</a>", 9) + "</message>", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := header + tt.el + tt.el
			for _, r := range []io.Reader{strings.NewReader(in), &oneByteReader{in}} {
				got, err := decodeAll(r, lim)
				if tt.ok && (err != io.EOF || len(got) != 3) {
					t.Fatalf("got %d events, %v", len(got), err)
				}
				if !tt.ok && (!errors.Is(err, ErrTooLarge) || len(got) != 1) {
					t.Fatalf("got %d events, %v; want too-large after the header", len(got), err)
				}
			}
			_, err := Parse([]byte(" "+tt.el+"\n"), lim)
			if tt.ok != (err == nil) || (!tt.ok && !errors.Is(err, ErrTooLarge)) {
				t.Fatalf("Parse: %v", err)
			}
		})
	}
	// The header counts against the element limit too.
	_, err := decodeAll(strings.NewReader(`<stream:stream xmlns:stream='http://etherx.jabber.org/streams' a='`+strings.Repeat("x", 3000)+`'>`), lim)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("huge header: %v", err)
	}
	// Defaults apply to a zero Limits.
	_, err = decodeAll(strings.NewReader(header+elementOfSize(DefaultMaxElementBytes+1)), Limits{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("default size limit: %v", err)
	}
	_, err = decodeAll(strings.NewReader(header+elementOfDepth(DefaultMaxDepth+1)), Limits{})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("default depth limit: %v", err)
	}
}

// The decoder must not hold more than the limit: a peer streaming an
// endless element is cut off once it has sent MaxElementBytes.
func TestLimitBoundsBuffer(t *testing.T) {
	lim := Limits{MaxElementBytes: 64 << 10}
	r := io.MultiReader(strings.NewReader(header+"<message><body>"), infiniteReader{})
	d := NewDecoder(r, lim)
	d.Next()
	_, err := d.Next()
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err %v", err)
	}
	if cap(d.buf) > lim.MaxElementBytes {
		t.Fatalf("buffer grew to %d, beyond the %d limit", cap(d.buf), lim.MaxElementBytes)
	}
}

type infiniteReader struct{}

func (infiniteReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

func TestBufferShrinks(t *testing.T) {
	big := elementOfSize(100 << 10)
	small := stanzas[0]
	r := &chunkReader{[]string{header, big, small}}
	d := NewDecoder(r, Limits{})
	for i := 0; i < 3; i++ {
		if _, err := d.Next(); err != nil {
			t.Fatal(err)
		}
		if i == 1 && len(d.buf) < 100<<10 {
			t.Fatalf("buffer %d after the big element", len(d.buf))
		}
	}
	if len(d.buf) > shrinkAbove {
		t.Fatalf("buffer still %d bytes after a small element", len(d.buf))
	}
}

// stallReader hands out its data and then fails the test on any further
// Read: a decoder holding a complete element must not ask for more.
type stallReader struct {
	t    *testing.T
	data string
	max  int // bytes per Read; 0 means all
}

func (r *stallReader) Read(p []byte) (int, error) {
	if r.data == "" {
		r.t.Fatal("Read called although a complete element was buffered")
	}
	if r.max > 0 && len(p) > r.max {
		p = p[:r.max]
	}
	n := copy(p, r.data)
	r.data = r.data[n:]
	return n, nil
}

func TestNoReadAheadBlocking(t *testing.T) {
	in := header + stanzas[0] + stanzas[2] + `</stream:stream>`
	for _, max := range []int{0, 1} {
		d := NewDecoder(&stallReader{t: t, data: in, max: max}, Limits{})
		for _, want := range []EventKind{StreamStart, ElementEvent, ElementEvent, StreamEnd} {
			ev, err := d.Next()
			if err != nil || ev.Kind != want {
				t.Fatalf("got %v %v", ev.Kind, err)
			}
		}
	}
}

func TestReset(t *testing.T) {
	// A man in the middle appends an IQ to the client's <starttls/> in the
	// same TCP segment. After the TLS handshake the decoder reads a new
	// stream from the TLS connection and must never see that IQ.
	plain := strings.NewReader(header + `<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>` +
		`<iq type='set' id='evil'><query xmlns='jabber:iq:roster'><item jid='mallory@evil'/></query></iq>`)
	d := NewDecoder(plain, Limits{})
	if ev, err := d.Next(); err != nil || ev.Kind != StreamStart {
		t.Fatal(ev, err)
	}
	ev, err := d.Next()
	if err != nil || ev.Elem.Name != "starttls" {
		t.Fatal(ev, err)
	}
	if d.w == d.r0 {
		t.Fatal("test setup: the injected bytes should be buffered")
	}
	tlsConn := strings.NewReader(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>` + stanzas[2])
	d.Reset(tlsConn)
	ev, err = d.Next()
	if err != nil || ev.Kind != StreamStart {
		t.Fatal(ev, err)
	}
	ev, err = d.Next()
	if err != nil || ev.Elem.Attr("id") != "roster_1" {
		t.Fatalf("after Reset got %v %v, want the roster get from the new stream", dumpEvent(ev), err)
	}
	if _, err := d.Next(); err != io.EOF {
		t.Fatal(err)
	}

	// Reset also clears a sticky error and the end of the old stream.
	d.Reset(strings.NewReader("<!-- x -->"))
	if _, err := d.Next(); !errors.Is(err, ErrRestrictedXML) {
		t.Fatal(err)
	}
	d.Reset(strings.NewReader(header + `</stream:stream>`))
	got := []EventKind{}
	for {
		ev, err := d.Next()
		if err != nil {
			break
		}
		got = append(got, ev.Kind)
	}
	if !reflect.DeepEqual(got, []EventKind{StreamStart, StreamEnd}) {
		t.Fatal(got)
	}
}

type errOnceReader struct {
	r   io.Reader
	err error
}

func (r *errOnceReader) Read(p []byte) (int, error) {
	if r.err != nil {
		err := r.err
		r.err = nil
		return 0, err
	}
	return r.r.Read(p)
}

// A read deadline is not fatal: the caller may extend it and go on.
func TestReadErrorIsNotSticky(t *testing.T) {
	r := &errOnceReader{r: &chunkReader{[]string{header, "<message><bo", "dy>x</body></message>"}}}
	d := NewDecoder(r, Limits{})
	if _, err := d.Next(); err != nil {
		t.Fatal(err)
	}
	r.err = os.ErrDeadlineExceeded
	// The partial element is read, then the error comes.
	if _, err := d.Next(); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	ev, err := d.Next()
	if err != nil || ev.Elem.Name != "message" || ev.Elem.ChildText("", "body") != "x" {
		t.Fatalf("after the timeout: %v %v", dumpEvent(ev), err)
	}
}

type emptyReader struct{}

func (emptyReader) Read([]byte) (int, error) { return 0, nil }

func TestNoProgress(t *testing.T) {
	done := make(chan error)
	go func() {
		_, err := NewDecoder(emptyReader{}, Limits{}).Next()
		done <- err
	}()
	select {
	case err := <-done:
		if err != io.ErrNoProgress {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Next spins on a reader that returns nothing")
	}
}

// Returned trees must not alias the read buffer, which is reused.
func TestNoAliasing(t *testing.T) {
	in := header + stanzas[0] + stanzas[1] + elementOfSize(10000) + stanzas[3]
	d := NewDecoder(&oneByteReader{in}, Limits{})
	var evs []Event
	var dumps []string
	for {
		ev, err := d.Next()
		if err != nil {
			break
		}
		evs = append(evs, ev)
		dumps = append(dumps, dumpEvent(ev))
	}
	for i := range d.buf {
		d.buf[i] = '#'
	}
	for i, ev := range evs {
		if dumpEvent(ev) != dumps[i] {
			t.Fatalf("event %d changed after the buffer was overwritten", i)
		}
	}
}

// Appending to a child slice must not clobber a neighbour carved from the
// same slab.
func TestSlabsAreCapped(t *testing.T) {
	el, err := Parse([]byte(`<a><b x='1'><c/></b><d y='2'><e/></d></a>`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, d := el.Children[0].Elem, el.Children[1].Elem
	b.Attrs = append(b.Attrs, Attr{"z", "3"})
	b.Children = append(b.Children, Node{Text: "t"})
	if d.Attrs[0] != (Attr{"y", "2"}) || d.Children[0].Elem.Name != "e" {
		t.Fatalf("neighbour clobbered: %s", dump(el))
	}
}

// Error messages go back to the peer: a hostile name must not make them
// huge.
func TestErrorMessagesAreShort(t *testing.T) {
	long := strings.Repeat("n", 5000)
	_, err := decodeAll(strings.NewReader(header+"<"+long+"></"+long+"x>"), Limits{})
	if !errors.Is(err, ErrNotWellFormed) || len(err.Error()) > 300 {
		t.Fatalf("%d byte message: %.100v", len(err.Error()), err)
	}
}
