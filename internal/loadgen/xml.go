package loadgen

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Elem is one parsed XML element: enough of a tree for a client to read
// stanzas. Names keep their prefix ("stream:features"); Local strips it.
type Elem struct {
	Name     string
	Attrs    []Attr
	Children []*Elem
	Text     string
}

// Attr is one attribute, value unescaped.
type Attr struct{ Name, Value string }

// Local is the name without its prefix.
func (e *Elem) Local() string {
	if i := strings.IndexByte(e.Name, ':'); i >= 0 {
		return e.Name[i+1:]
	}
	return e.Name
}

// Attr returns the value of the attribute name, or "".
func (e *Elem) Attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// Child returns the first child with local name local (and namespace ns
// when ns is not empty: a child's xmlns, or its parent's default, is
// compared only when the child declares one).
func (e *Elem) Child(local, ns string) *Elem {
	for _, c := range e.Children {
		if c.Local() != local {
			continue
		}
		if ns != "" {
			if x := c.Attr("xmlns"); x != "" && x != ns {
				continue
			}
		}
		return c
	}
	return nil
}

// reader is a small, allocation-light XML reader for XMPP streams: it knows
// the stream header is an open element that never closes at depth 1, and
// returns each depth-1 element (a stanza or a nonza) whole. XMPP forbids
// comments, processing instructions (bar the declaration), DTDs and
// entities beyond the predefined five, so those are all it handles; CDATA
// sections are accepted in text.
type reader struct {
	br      *bufio.Reader
	tag     []byte // scratch for one tag
	maxSize int
}

var errStreamEnd = errors.New("stream closed by server")

func newReader(br *bufio.Reader) *reader {
	return &reader{br: br, maxSize: 1 << 20}
}

// StreamHeader reads up to and including the <stream:stream> start tag and
// returns it (its attributes: id, from, version).
func (r *reader) StreamHeader() (*Elem, error) {
	for {
		if err := r.skipText(); err != nil {
			return nil, err
		}
		t, err := r.readTag()
		if err != nil {
			return nil, err
		}
		if len(t) > 0 && t[0] == '?' {
			continue // <?xml ...?>
		}
		if len(t) > 0 && t[0] == '/' {
			return nil, errStreamEnd
		}
		e, _, err := parseStart(t)
		if err != nil {
			return nil, err
		}
		if e.Local() != "stream" {
			return nil, fmt.Errorf("expected stream header, got <%s>", e.Name)
		}
		return e, nil
	}
}

// Next reads the next depth-1 element whole. A closing </stream:stream>
// returns errStreamEnd.
func (r *reader) Next() (*Elem, error) {
	if err := r.skipText(); err != nil {
		return nil, err
	}
	t, err := r.readTag()
	if err != nil {
		return nil, err
	}
	if len(t) > 0 && t[0] == '/' {
		return nil, errStreamEnd
	}
	if len(t) > 0 && t[0] == '?' {
		return r.Next()
	}
	root, selfClosing, err := parseStart(t)
	if err != nil {
		return nil, err
	}
	if selfClosing {
		return root, nil
	}
	stack := []*Elem{root}
	var text []byte
	size := 0
	for len(stack) > 0 {
		txt, err := r.readText()
		if err != nil {
			return nil, err
		}
		if len(txt) > 0 && len(stack) >= 1 {
			text = append(text[:0], txt...)
			cur := stack[len(stack)-1]
			cur.Text += unescape(text)
		}
		t, err := r.readTag()
		if err != nil {
			return nil, err
		}
		size += len(t) + len(txt)
		if size > r.maxSize {
			return nil, errors.New("stanza too large")
		}
		if len(t) > 0 && t[0] == '/' {
			stack = stack[:len(stack)-1]
			continue
		}
		if len(t) > 0 && t[0] == '?' {
			continue
		}
		if bytes.HasPrefix(t, []byte("![CDATA[")) {
			cur := stack[len(stack)-1]
			cur.Text += string(t[8 : len(t)-2])
			continue
		}
		e, sc, err := parseStart(t)
		if err != nil {
			return nil, err
		}
		parent := stack[len(stack)-1]
		parent.Children = append(parent.Children, e)
		if !sc {
			stack = append(stack, e)
		}
	}
	return root, nil
}

// skipText discards whitespace (keepalives) between depth-1 elements.
func (r *reader) skipText() error {
	for {
		b, err := r.br.ReadByte()
		if err != nil {
			return err
		}
		if b == '<' {
			return r.br.UnreadByte()
		}
	}
}

// readText returns the raw text up to the next '<' (which stays unread).
func (r *reader) readText() ([]byte, error) {
	r.tag = r.tag[:0]
	for {
		s, err := r.br.ReadSlice('<')
		if err == nil {
			r.tag = append(r.tag, s[:len(s)-1]...)
			if err := r.br.UnreadByte(); err != nil {
				return nil, err
			}
			return r.tag, nil
		}
		if err == bufio.ErrBufferFull {
			r.tag = append(r.tag, s...)
			if len(r.tag) > r.maxSize {
				return nil, errors.New("text too large")
			}
			continue
		}
		return nil, err
	}
}

// readTag reads "<...>" and returns what is between the brackets, honouring
// quotes ('>' may appear inside attribute values) and CDATA sections.
func (r *reader) readTag() ([]byte, error) {
	b, err := r.br.ReadByte()
	if err != nil {
		return nil, err
	}
	if b != '<' {
		return nil, fmt.Errorf("expected '<', got %q", b)
	}
	r.tag = r.tag[:0]
	for {
		s, err := r.br.ReadSlice('>')
		if err == bufio.ErrBufferFull {
			r.tag = append(r.tag, s...)
			if len(r.tag) > r.maxSize {
				return nil, errors.New("tag too large")
			}
			continue
		}
		if err != nil {
			if err == io.EOF {
				return nil, io.ErrUnexpectedEOF
			}
			return nil, err
		}
		r.tag = append(r.tag, s...)
		if tagComplete(r.tag) {
			return r.tag[:len(r.tag)-1], nil
		}
	}
}

// tagComplete reports whether t (ending in '>') closes the tag: quotes are
// balanced, and a CDATA section has ended.
func tagComplete(t []byte) bool {
	if bytes.HasPrefix(t, []byte("![CDATA[")) {
		return bytes.HasSuffix(t, []byte("]]>"))
	}
	var q byte
	for _, c := range t[:len(t)-1] {
		switch {
		case q != 0:
			if c == q {
				q = 0
			}
		case c == '\'' || c == '"':
			q = c
		}
	}
	return q == 0
}

// parseStart parses the inside of a start tag: name attr='v' ... [/].
func parseStart(t []byte) (*Elem, bool, error) {
	selfClosing := false
	if n := len(t); n > 0 && t[n-1] == '/' {
		selfClosing = true
		t = t[:n-1]
	}
	i := 0
	for i < len(t) && !isSpace(t[i]) {
		i++
	}
	if i == 0 {
		return nil, false, errors.New("empty tag name")
	}
	e := &Elem{Name: string(t[:i])}
	for {
		for i < len(t) && isSpace(t[i]) {
			i++
		}
		if i >= len(t) {
			break
		}
		j := i
		for j < len(t) && t[j] != '=' && !isSpace(t[j]) {
			j++
		}
		name := string(t[i:j])
		for j < len(t) && isSpace(t[j]) {
			j++
		}
		if j >= len(t) || t[j] != '=' {
			return nil, false, fmt.Errorf("attribute %q without value in <%s>", name, e.Name)
		}
		j++
		for j < len(t) && isSpace(t[j]) {
			j++
		}
		if j >= len(t) || (t[j] != '\'' && t[j] != '"') {
			return nil, false, fmt.Errorf("unquoted attribute %q in <%s>", name, e.Name)
		}
		q := t[j]
		k := bytes.IndexByte(t[j+1:], q)
		if k < 0 {
			return nil, false, fmt.Errorf("unterminated attribute %q in <%s>", name, e.Name)
		}
		e.Attrs = append(e.Attrs, Attr{Name: name, Value: unescape(t[j+1 : j+1+k])})
		i = j + 1 + k + 1
	}
	return e, selfClosing, nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// unescape decodes the five predefined entities and character references.
func unescape(b []byte) string {
	if bytes.IndexByte(b, '&') < 0 {
		return string(b)
	}
	var sb strings.Builder
	for len(b) > 0 {
		i := bytes.IndexByte(b, '&')
		if i < 0 {
			sb.Write(b)
			break
		}
		sb.Write(b[:i])
		b = b[i:]
		j := bytes.IndexByte(b, ';')
		if j < 0 {
			sb.Write(b)
			break
		}
		ent := string(b[1:j])
		b = b[j+1:]
		switch ent {
		case "lt":
			sb.WriteByte('<')
		case "gt":
			sb.WriteByte('>')
		case "amp":
			sb.WriteByte('&')
		case "quot":
			sb.WriteByte('"')
		case "apos":
			sb.WriteByte('\'')
		default:
			var n uint64
			var err error
			if strings.HasPrefix(ent, "#x") {
				n, err = strconv.ParseUint(ent[2:], 16, 32)
			} else if strings.HasPrefix(ent, "#") {
				n, err = strconv.ParseUint(ent[1:], 10, 32)
			} else {
				err = errors.New("unknown entity")
			}
			if err != nil || !utf8.ValidRune(rune(n)) {
				sb.WriteString("&" + ent + ";")
			} else {
				sb.WriteRune(rune(n))
			}
		}
	}
	return sb.String()
}

// escape writes s with the characters XML needs escaped in text and
// single-quoted attributes.
func escape(s string) string {
	if !strings.ContainsAny(s, "<>&'\"") {
		return s
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '<':
			sb.WriteString("&lt;")
		case '>':
			sb.WriteString("&gt;")
		case '&':
			sb.WriteString("&amp;")
		case '\'':
			sb.WriteString("&apos;")
		case '"':
			sb.WriteString("&quot;")
		default:
			sb.WriteByte(c)
		}
	}
	return sb.String()
}
