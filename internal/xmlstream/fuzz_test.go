package xmlstream

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"
)

// fuzzSeeds are realistic streams and fragments plus the corner cases the
// unit tests cover, so the fuzzer starts from inputs that reach deep states.
func fuzzSeeds() []string {
	seeds := append([]string{}, stanzas...)
	seeds = append(seeds,
		`<message><p:event xmlns:p='urn:p' p:attr='1'><p:items/><item/></p:event></message>`,
		`<message><x xmlns=''><y/></x></message>`,
		`<message id='a&amp;b&#65;&#x1F600;'><body>&lt;&gt;<![CDATA[<x>]]>&#13;</body></message>`,
		"<message a='x\r\ny\tz'><body>1\r\n2\r3</body></message>",
		`<message><!-- c --></message>`,
		`<?pi x?>`,
		`<message xmlns:p=''/>`,
		`<message a='1' a='2'/>`,
		`<foo:bar/>`,
		`<message><body>&nbsp;</body></message>`,
		`<message><ñame attr-é='ü'>日本語</ñame></message>`,
		`</stream:stream>`,
	)
	return seeds
}

// eventsOf decodes everything and returns the events and the final error.
func eventsOf(t *testing.T, r io.Reader, lim Limits) ([]Event, error) {
	d := NewDecoder(r, lim)
	var evs []Event
	for {
		ev, err := d.Next()
		if err != nil {
			return evs, err
		}
		if n := d.f.pos - d.f.start; n > lim.MaxElementBytes {
			t.Fatalf("element of %d bytes passed the %d byte limit", n, lim.MaxElementBytes)
		}
		if len(d.buf) > max(lim.MaxElementBytes, minBuf) {
			t.Fatalf("buffer of %d bytes for a %d byte limit", len(d.buf), lim.MaxElementBytes)
		}
		evs = append(evs, ev)
	}
}

func depth(e *Element) int {
	d := 0
	for _, n := range e.Children {
		if n.Elem != nil {
			d = max(d, depth(n.Elem))
		}
	}
	return d + 1
}

// checkRoundTrip serializes el, parses the output and requires the same tree.
func checkRoundTrip(t *testing.T, el *Element) {
	t.Helper()
	out := Append(nil, el, "")
	re, err := Parse(out, Limits{MaxElementBytes: 1 << 24, MaxDepth: 1 << 10})
	if err != nil {
		t.Fatalf("re-parsing %q: %v (tree %s)", out, err, dump(el))
	}
	if dump(re) != dump(el) {
		t.Fatalf("round trip changed the tree:\n%s\n%s\nvia %q", dump(el), dump(re), out)
	}
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// FuzzDecoder: any input must decode without panicking, identically whether
// it arrives at once or a byte at a time, within the limits, and every
// element must survive Append and Parse unchanged.
func FuzzDecoder(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(header + s))
	}
	f.Add([]byte(header + strings.Join(stanzas, " ") + "</stream:stream>"))
	f.Add([]byte("\xEF\xBB\xBF<stream:stream xmlns:stream='http://etherx.jabber.org/streams'/>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxElementBytes: 2048, MaxDepth: 8}
		evs, err := eventsOf(t, bytes.NewReader(data), lim)
		evs1, err1 := eventsOf(t, &oneByteReader{string(data)}, lim)
		if errString(err) != errString(err1) || len(evs) != len(evs1) {
			t.Fatalf("split input differs: %d events, %v vs %d events, %v", len(evs), err, len(evs1), err1)
		}
		for i := range evs {
			if dumpEvent(evs[i]) != dumpEvent(evs1[i]) {
				t.Fatalf("event %d differs when split:\n%s\n%s", i, dumpEvent(evs[i]), dumpEvent(evs1[i]))
			}
		}
		var se *syntaxError
		if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.As(err, &se) {
			t.Fatalf("unexpected error type %T: %v", err, err)
		}
		for _, ev := range evs {
			if ev.Elem == nil {
				continue
			}
			if d := depth(ev.Elem); d > lim.MaxDepth {
				t.Fatalf("depth %d passed the limit %d", d, lim.MaxDepth)
			}
			checkRoundTrip(t, ev.Elem)
		}
	})
}

// FuzzParse: the WebSocket entry point keeps the same guarantees, and
// agrees with the stream decoder on the element.
func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Add([]byte(`<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='x' version='1.0'/>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxElementBytes: 2048, MaxDepth: 8}
		el, err := Parse(data, lim)
		if err != nil {
			var se *syntaxError
			if !errors.As(err, &se) {
				t.Fatalf("unexpected error type %T: %v", err, err)
			}
			return
		}
		if d := depth(el); d > lim.MaxDepth {
			t.Fatalf("depth %d passed the limit %d", d, lim.MaxDepth)
		}
		checkRoundTrip(t, el)
		// Inside a stream without a default namespace, the decoder must
		// produce the same tree.
		const root = `<stream:stream xmlns:stream='http://etherx.jabber.org/streams'>`
		trimmed := bytes.TrimLeft(data, " \t\r\n\xEF\xBB\xBF")
		if bytes.HasPrefix(trimmed, []byte("<?")) {
			return
		}
		evs, _ := eventsOf(t, strings.NewReader(root+string(data)), Limits{MaxElementBytes: 1 << 20, MaxDepth: lim.MaxDepth})
		if len(evs) < 2 || dump(evs[1].Elem) != dump(el) {
			t.Fatalf("decoder disagrees with Parse on %q", data)
		}
	})
}

// stdTree builds our tree shape from encoding/xml tokens, for comparison.
type stdNode struct {
	space, local string
	attrs        []Attr // Name is "xml:x", "x", or "prefixed:x" for other prefixes
	children     []*stdNode
	text         string // for text nodes
	isText       bool
}

const diffRoot = `<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`

// stdParse parses doc with encoding/xml and returns the children of the
// root. ok is false if encoding/xml rejects the document or it uses
// features outside RFC 6120's XML subset (then the two are not compared).
func stdParse(doc []byte) (top []*stdNode, rootText bool, ok bool) {
	d := xml.NewDecoder(bytes.NewReader(doc))
	d.Strict = true
	var stack []*stdNode
	rootDone := false
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return top, rootText, rootDone
		}
		if err != nil {
			return nil, false, false
		}
		if rootDone {
			// encoding/xml reads on after the root element; XML does not.
			return nil, false, false
		}
		switch tok := tok.(type) {
		case xml.ProcInst, xml.Comment, xml.Directive:
			return nil, false, false
		case xml.StartElement:
			n := &stdNode{space: tok.Name.Space, local: tok.Name.Local}
			for _, a := range tok.Attr {
				switch {
				case a.Name.Space == "xmlns", a.Name.Space == "" && a.Name.Local == "xmlns":
					continue // a declaration
				case a.Name.Space == "":
					n.attrs = append(n.attrs, Attr{a.Name.Local, a.Value})
				case a.Name.Space == NSXML:
					n.attrs = append(n.attrs, Attr{"xml:" + a.Name.Local, a.Value})
				default:
					n.attrs = append(n.attrs, Attr{"prefixed:" + a.Name.Local, a.Value})
				}
			}
			if len(stack) == 1 {
				top = append(top, n)
			} else if len(stack) > 1 {
				p := stack[len(stack)-1]
				p.children = append(p.children, n)
			}
			stack = append(stack, n)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
			if len(stack) == 0 {
				rootDone = true
			}
		case xml.CharData:
			switch {
			case len(stack) == 1:
				if len(bytes.Trim(tok, " \t\r\n")) > 0 {
					rootText = true
				}
			case len(stack) > 1:
				p := stack[len(stack)-1]
				if k := len(p.children); k > 0 && p.children[k-1].isText {
					p.children[k-1].text += string(tok)
				} else {
					p.children = append(p.children, &stdNode{isText: true, text: string(tok)})
				}
			}
		}
	}
}

// attrNorm maps the white space characters that attribute-value
// normalization turns into spaces (which encoding/xml does not do) to
// spaces on both sides.
var attrNorm = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ")

func sameTree(t *testing.T, std *stdNode, el *Element) bool {
	t.Helper()
	if std.local != el.Name {
		t.Logf("name %q vs %q", std.local, el.Name)
		return false
	}
	// encoding/xml never resolves the namespace of an element named
	// "xmlns" (a quirk of its translate); skip that one comparison. A
	// namespace name is an attribute value, so normalization applies.
	if std.local != "xmlns" && attrNorm.Replace(std.space) != attrNorm.Replace(el.Space) {
		t.Logf("namespace of %s: %q vs %q", el.Name, std.space, el.Space)
		return false
	}
	if len(std.attrs) != len(el.Attrs) {
		t.Logf("attributes of %s: %v vs %v", el.Name, std.attrs, el.Attrs)
		return false
	}
	for i, a := range std.attrs {
		b := el.Attrs[i]
		name := b.Name
		if c := strings.IndexByte(name, ':'); c >= 0 && !strings.HasPrefix(name, "xml:") {
			name = "prefixed:" + name[c+1:]
		}
		if a.Name != name || attrNorm.Replace(a.Value) != attrNorm.Replace(b.Value) {
			t.Logf("attribute %d of %s: %q=%q vs %q=%q", i, el.Name, a.Name, a.Value, b.Name, b.Value)
			return false
		}
	}
	// Compare children with our adjacent text merged the same way.
	var kids []Node
	for _, n := range el.Children {
		if k := len(kids); n.Elem == nil && k > 0 && kids[k-1].Elem == nil {
			kids[k-1].Text += n.Text
			continue
		}
		kids = append(kids, n)
	}
	if len(kids) != len(std.children) {
		t.Logf("children of %s: %d vs %d", el.Name, len(std.children), len(kids))
		return false
	}
	for i, c := range std.children {
		k := kids[i]
		if c.isText != (k.Elem == nil) {
			return false
		}
		if c.isText {
			if c.text != k.Text {
				t.Logf("text in %s: %q vs %q", el.Name, c.text, k.Text)
				return false
			}
		} else if !sameTree(t, c, k.Elem) {
			return false
		}
	}
	return true
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// Where this package is deliberately stricter than encoding/xml. Each is a
// rule of XML 1.0 or Namespaces in XML that encoding/xml does not enforce,
// or an RFC 6120 rule.
var stricterThanStd = map[errCode]string{
	codeNameChar:   "XML 1.0 5th edition name characters (encoding/xml uses older Unicode tables)",
	codeQName:      "Namespaces in XML: a QName has at most one colon and no empty part",
	codeNSDecl:     "Namespaces in XML: xmlns:p='' and rebinding xml/xmlns are errors",
	codeDupAttr:    "XML 1.0 §3.1: an attribute appears once",
	codeAttrSpace:  "XML 1.0 §3.1: attributes are separated by white space",
	codeCharRef:    "XML 1.0 §4.1: a character reference must name a Char (encoding/xml maps surrogates to U+FFFD)",
	codeRootText:   "RFC 6120: no character data directly in the stream root",
	codeUndeclared: "Namespaces in XML: prefixes must be declared (encoding/xml passes them through)",
}

// FuzzDifferential compares the decoder with encoding/xml. The fuzz input is
// placed inside a client stream root:
//
//	<stream:stream xmlns='jabber:client' xmlns:stream='...'> INPUT </stream:stream>
//
// When encoding/xml (Strict) parses the whole document as well-formed, with
// no comments, processing instructions or directives and nothing after the
// root, then the decoder must accept it too, unless it fails one of the
// stricter rules in stricterThanStd (or the namespace-declaration limit),
// and the two must agree, for every direct child of the root, on element
// names and namespaces, attribute names (prefixed names compared by local
// part), attribute values (up to the tab/newline normalization encoding/xml
// skips), and text (adjacent text merged). Conversely, ASCII input the
// decoder accepts must be accepted by encoding/xml, unless it ends the
// stream early (the decoder stops reading at </stream:stream>).
func FuzzDifferential(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		doc := []byte(diffRoot + string(data) + "</stream:stream>")
		std, rootText, ok := stdParse(doc)
		lim := Limits{MaxElementBytes: 1 << 24, MaxDepth: 1 << 20}
		evs, err := eventsOf(t, bytes.NewReader(doc), lim)
		weOK := err == io.EOF && len(evs) > 0 && evs[len(evs)-1].Kind == StreamEnd
		if !ok {
			// The converse: what we accept, encoding/xml accepts, for
			// ASCII input (its name tables differ from XML 1.0 fifth
			// edition above ASCII) that does not end the stream early
			// (we stop reading at </stream:stream>).
			if weOK && isASCII(data) && !bytes.Contains(data, []byte("</stream:stream")) {
				t.Fatalf("we accept, encoding/xml rejects: %q", data)
			}
			return
		}
		if !weOK {
			if _, stricter := stricterThanStd[codeOf(err)]; stricter || errors.Is(err, ErrTooLarge) {
				return
			}
			t.Fatalf("encoding/xml accepts, we reject: %v\ninput %q", err, data)
		}
		if rootText {
			t.Fatalf("we accepted text in the root: %q", data)
		}
		els := evs[1 : len(evs)-1]
		if len(els) != len(std) {
			t.Fatalf("%d top-level elements, encoding/xml has %d: %q", len(els), len(std), data)
		}
		for i := range std {
			if !sameTree(t, std[i], els[i].Elem) {
				t.Fatalf("element %d differs from encoding/xml: %s\ninput %q", i, dump(els[i].Elem), data)
			}
		}
	})
}
