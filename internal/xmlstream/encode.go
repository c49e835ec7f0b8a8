package xmlstream

import "unicode/utf8"

// Append appends the serialization of e to buf. parentNS is the namespace in scope where e is written (e.g. "jabber:client" for a stanza written inside a client stream, "" for a standalone WebSocket frame). An xmlns='...' attribute is written on e (and on any descendant) exactly when its Space differs from the namespace in scope. Attribute values and text are escaped (& < > " ' as needed; attributes use single quotes and escape '; also escape \r \n \t in attribute values as numeric refs so they round-trip). Names are written as-is; "xml:lang" stays "xml:lang". Empty elements are written as <x/>.
//
// Namespaces are written as default-namespace declarations only, never as
// prefixes, so the output does not depend on the prefixes the sender used
// and is namespace-equivalent to what was read. Space is authoritative: an
// attribute literally named "xmlns" in Attrs is skipped. Prefixed attributes
// (other than xml:) are written with the qualified name they were read with;
// their declaration is not reproduced (the decoder does not keep it).
//
// Text and values are made safe to write whatever they hold: a \r in text
// becomes &#xD; (a literal one would read back as \n), and bytes that
// cannot appear in XML (invalid UTF-8, control characters, U+FFFE/U+FFFF)
// become U+FFFD, so an element built from bad data never produces output
// that makes the peer drop the stream.
func Append(buf []byte, e *Element, parentNS string) []byte {
	if e == nil {
		return buf
	}
	buf = append(buf, '<')
	buf = append(buf, e.Name...)
	if e.Space != parentNS {
		buf = append(buf, " xmlns='"...)
		buf = appendEscaped(buf, e.Space, true)
		buf = append(buf, '\'')
	}
	for _, a := range e.Attrs {
		if a.Name == "xmlns" {
			continue
		}
		buf = append(buf, ' ')
		buf = append(buf, a.Name...)
		buf = append(buf, "='"...)
		buf = appendEscaped(buf, a.Value, true)
		buf = append(buf, '\'')
	}
	if len(e.Children) == 0 {
		return append(buf, "/>"...)
	}
	buf = append(buf, '>')
	if e.body != nil {
		buf = append(buf, e.body...)
		buf = append(buf, "</"...)
		buf = append(buf, e.Name...)
		return append(buf, '>')
	}
	for _, n := range e.Children {
		if n.Elem != nil {
			buf = Append(buf, n.Elem, e.Space)
		} else {
			buf = appendEscaped(buf, n.Text, false)
		}
	}
	buf = append(buf, "</"...)
	buf = append(buf, e.Name...)
	return append(buf, '>')
}

// String is Append into a new string with parentNS "" (for tests and logs).
func (e *Element) String() string {
	return string(Append(nil, e, ""))
}

// Escape classes: escNone bytes are copied, escText ones need work in text,
// escAttr ones in attribute values. Bytes >= 0x80 are marked for both so the
// slow path validates UTF-8.
const (
	escText = 1 << iota
	escAttr
)

var escClass = func() (t [256]uint8) {
	for c := 0; c < 0x20; c++ {
		t[c] = escText | escAttr
	}
	t['\t'] = escAttr
	t['\n'] = escAttr
	for c := 0x80; c < 0x100; c++ {
		t[c] = escText | escAttr
	}
	t['&'] = escText | escAttr
	t['<'] = escText | escAttr
	t['>'] = escText
	t['\''] = escAttr
	return t
}()

func appendEscaped(buf []byte, s string, attr bool) []byte {
	mask := uint8(escText)
	if attr {
		mask = escAttr
	}
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if escClass[c]&mask == 0 {
			i++
			continue
		}
		var rep string
		width := 1
		switch c {
		case '&':
			rep = "&amp;"
		case '<':
			rep = "&lt;"
		case '>':
			rep = "&gt;"
		case '\'':
			rep = "&apos;"
		case '\t':
			rep = "&#x9;"
		case '\n':
			rep = "&#xA;"
		case '\r':
			rep = "&#xD;"
		default:
			if c >= utf8.RuneSelf {
				r, n := utf8.DecodeRuneInString(s[i:])
				if (r != utf8.RuneError || n > 1) && r != 0xFFFE && r != 0xFFFF {
					i += n
					continue
				}
				width = n
			}
			rep = "\uFFFD"
		}
		buf = append(buf, s[last:i]...)
		buf = append(buf, rep...)
		i += width
		last = i
	}
	return append(buf, s[last:]...)
}
