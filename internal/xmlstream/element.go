// Package xmlstream reads and writes XMPP XML streams (RFC 6120 §4, §11).
//
// An XMPP stream is one long XML document whose root is <stream:stream>; every
// direct child of the root (a stanza or a stream-level element) is handled as
// a unit. The Decoder yields the root's start tag and then each direct child as
// a complete Element tree; it enforces the restrictions of RFC 6120 §11.1 (no
// comments, processing instructions, DTDs or entity references other than the
// five predefined ones) and the size and depth limits a server needs against
// hostile clients.
//
// Elements carry resolved namespaces, not prefixes: <stream:features> is read
// as Name "features" in Space "http://etherx.jabber.org/streams". The encoder
// writes an xmlns attribute wherever an element's namespace differs from its
// parent's, which is namespace-equivalent to what was read.
package xmlstream

import "strings"

// Well-known namespaces of the stream layer.
const (
	NSStream  = "http://etherx.jabber.org/streams"
	NSClient  = "jabber:client"
	NSServer  = "jabber:server"
	NSFraming = "urn:ietf:params:xml:ns:xmpp-framing" // RFC 7395 WebSocket framing
	NSXML     = "http://www.w3.org/XML/1998/namespace"
)

// Attr is one attribute. Name is the qualified name as written, except that
// the xml: prefix is always spelled "xml:" (xml:lang). Namespace declarations
// (xmlns, xmlns:p) are not kept as attributes: they are folded into
// Element.Space of the elements they apply to.
type Attr struct {
	Name  string
	Value string // unescaped
}

// Node is one child of an Element: either a nested element (Elem != nil) or
// character data (Elem == nil, Text holds the unescaped text). Keeping mixed
// content in order lets the server forward XHTML-IM and other rich payloads
// unchanged.
type Node struct {
	Elem *Element
	Text string
}

// Element is one XML element with resolved namespace.
type Element struct {
	Space    string // namespace URI; "" when none is in scope
	Name     string // local name
	Attrs    []Attr
	Children []Node

	// body, when not nil, is the serialization of Children (in the scope
	// of Space), made once by Share and written verbatim by Append. The
	// mutators below drop it; see shared.go.
	body []byte
}

// New returns an element in namespace space with the given attributes given as
// name, value pairs. It panics on an odd count: a programming error.
func New(space, name string, attrs ...string) *Element {
	if len(attrs)%2 != 0 {
		panic("xmlstream.New: odd attribute list")
	}
	e := &Element{Space: space, Name: name}
	if len(attrs) > 0 {
		e.Attrs = make([]Attr, 0, len(attrs)/2)
		for i := 0; i < len(attrs); i += 2 {
			if attrs[i+1] != "" {
				e.Attrs = append(e.Attrs, Attr{attrs[i], attrs[i+1]})
			}
		}
	}
	return e
}

// Attr returns the value of the named attribute, or "".
func (e *Element) Attr(name string) string {
	for _, a := range e.Attrs {
		if a.Name == name {
			return a.Value
		}
	}
	return ""
}

// SetAttr sets, replaces or (with an empty value) removes an attribute.
func (e *Element) SetAttr(name, value string) {
	for i, a := range e.Attrs {
		if a.Name == name {
			if value == "" {
				e.Attrs = append(e.Attrs[:i], e.Attrs[i+1:]...)
			} else {
				e.Attrs[i].Value = value
			}
			return
		}
	}
	if value != "" {
		e.Attrs = append(e.Attrs, Attr{name, value})
	}
}

// Child returns the first child element with the given namespace and local
// name, or nil. An empty space matches any namespace.
func (e *Element) Child(space, name string) *Element {
	for _, n := range e.Children {
		if n.Elem != nil && n.Elem.Name == name && (space == "" || n.Elem.Space == space) {
			return n.Elem
		}
	}
	return nil
}

// ChildNS returns the first child element in namespace space, whatever its
// name, or nil. Payload dispatch (an IQ's query, a stream feature) uses it.
func (e *Element) ChildNS(space string) *Element {
	for _, n := range e.Children {
		if n.Elem != nil && n.Elem.Space == space {
			return n.Elem
		}
	}
	return nil
}

// FirstChild returns the first child element, or nil.
func (e *Element) FirstChild() *Element {
	for _, n := range e.Children {
		if n.Elem != nil {
			return n.Elem
		}
	}
	return nil
}

// Elements returns the child elements in order, skipping text.
func (e *Element) Elements() []*Element {
	var out []*Element
	for _, n := range e.Children {
		if n.Elem != nil {
			out = append(out, n.Elem)
		}
	}
	return out
}

// Text returns the concatenated character data directly inside e.
func (e *Element) Text() string {
	var one string
	var b strings.Builder
	count := 0
	for _, n := range e.Children {
		if n.Elem == nil {
			if count == 0 {
				one = n.Text
			} else {
				if count == 1 {
					b.WriteString(one)
				}
				b.WriteString(n.Text)
			}
			count++
		}
	}
	if count <= 1 {
		return one
	}
	return b.String()
}

// ChildText returns the text of the first matching child, or "".
func (e *Element) ChildText(space, name string) string {
	if c := e.Child(space, name); c != nil {
		return c.Text()
	}
	return ""
}

// Append adds child elements and returns e, for building trees inline.
func (e *Element) Append(children ...*Element) *Element {
	e.unshare()
	for _, c := range children {
		if c != nil {
			e.Children = append(e.Children, Node{Elem: c})
		}
	}
	return e
}

// AppendText adds character data and returns e.
func (e *Element) AppendText(s string) *Element {
	e.unshare()
	if s != "" {
		e.Children = append(e.Children, Node{Text: s})
	}
	return e
}

// RemoveChildren removes every child element matching space and name (an
// empty name matches any name in space) and reports how many were removed.
func (e *Element) RemoveChildren(space, name string) int {
	e.unshare()
	kept := e.Children[:0]
	removed := 0
	for _, n := range e.Children {
		if n.Elem != nil && n.Elem.Space == space && (name == "" || n.Elem.Name == name) {
			removed++
			continue
		}
		kept = append(kept, n)
	}
	for i := len(kept); i < len(e.Children); i++ {
		e.Children[i] = Node{}
	}
	e.Children = kept
	return removed
}

// Copy returns a deep copy of e, so a router can stamp per-recipient
// attributes without touching what other recipients get.
func (e *Element) Copy() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Space: e.Space, Name: e.Name}
	if len(e.Attrs) > 0 {
		c.Attrs = append([]Attr(nil), e.Attrs...)
	}
	if len(e.Children) > 0 {
		c.Children = make([]Node, len(e.Children))
		for i, n := range e.Children {
			if n.Elem != nil {
				c.Children[i] = Node{Elem: n.Elem.Copy()}
			} else {
				c.Children[i] = n
			}
		}
	}
	return c
}

// Compact returns a deep copy whose strings own their memory. Decoded
// elements share one block per stanza for their strings; an element kept
// for long (a session's last presence) should not pin that block.
func (e *Element) Compact() *Element {
	if e == nil {
		return nil
	}
	c := &Element{Space: strings.Clone(e.Space), Name: strings.Clone(e.Name)}
	if len(e.Attrs) > 0 {
		c.Attrs = make([]Attr, len(e.Attrs))
		for i, a := range e.Attrs {
			c.Attrs[i] = Attr{Name: strings.Clone(a.Name), Value: strings.Clone(a.Value)}
		}
	}
	if len(e.Children) > 0 {
		c.Children = make([]Node, len(e.Children))
		for i, n := range e.Children {
			if n.Elem != nil {
				c.Children[i] = Node{Elem: n.Elem.Compact()}
			} else {
				c.Children[i] = Node{Text: strings.Clone(n.Text)}
			}
		}
	}
	return c
}
