package xmlstream

import (
	"bytes"
	"unicode/utf8"
	"unsafe"
)

// The builder turns one complete, framed element into an Element tree in a
// single pass, doing all the validation the framer skipped: names, QNames
// and namespaces, attribute syntax, references, characters and UTF-8, and
// matching end tags.
//
// Allocation strategy: the framer's counts let the builder allocate all
// Elements, all Attrs and all child Nodes of one stanza as three slabs, and
// for stanzas up to arenaMax bytes every string that is not in the intern
// table is carved out of one byte arena. A typical stanza then costs a
// handful of allocations instead of several per node. The slices handed out
// are capped (s[a:b:b]) so a caller appending to one element's Children or
// Attrs reallocates instead of overwriting its neighbour's.
//
// The cost of the arena is retention: keeping any one string of a stanza
// keeps the whole arena (at most arenaMax bytes) alive. Larger stanzas get
// one allocation per string so that a kept attribute never pins a big
// payload.
const arenaMax = 4 << 10

// maxBindings bounds the prefixed namespace declarations in scope at once.
// Prefix lookup is a linear scan, so without a bound a single stanza with
// thousands of declarations and thousands of prefixed elements would cost
// quadratic time. Real XMPP traffic declares a handful.
const maxBindings = 256

type binding struct {
	prefix string
	uri    string
}

type openElem struct {
	el        *Element
	qs, qe    int // the raw qualified name, for matching the end tag
	childMark int // len(b.children) when the element opened
	bindMark  int // len(b.binds) before its declarations
	defNS     string
}

type rawAttr struct {
	ns, ne int  // name in p
	vs, ve int  // value in p, or in b.tmp when !plain
	plain  bool // value needs no unescaping or normalization
}

type builder struct {
	p   []byte
	off int64 // stream offset of p[0]

	arena    []byte
	useArena bool
	elems    []Element
	nodes    []Node
	attrs    []Attr

	// scratch, reused from stanza to stanza
	stack    []openElem
	children []Node
	raw      []rawAttr
	binds    []binding
	textRaw  []byte // pending text while it is one plain run: a slice of p, not copied
	text     []byte // pending text once it needed assembling
	tmp      []byte
	seen     map[string]struct{}
}

// reset prepares b for one element. binds are the declarations in scope
// around it (the stream root's), defNS the default namespace there.
func (b *builder) reset(p []byte, off int64, f *framer, binds []binding) {
	b.p, b.off = p, off
	b.arena = nil
	b.useArena = len(p) <= arenaMax
	b.elems = make([]Element, f.elems)
	b.nodes = nil
	if n := f.elems - 1 + f.texts; n > 0 {
		b.nodes = make([]Node, n)
	}
	b.attrs = nil
	if f.attrs > 0 {
		b.attrs = make([]Attr, f.attrs)
	}
	b.stack = b.stack[:0]
	b.children = b.children[:0]
	b.binds = append(b.binds[:0], binds...)
	b.textRaw = nil
	b.text = b.text[:0]
}

// release drops references into the last stanza so a pooled or idle builder
// does not keep it alive, and drops scratch that grew unusually large.
func (b *builder) release() {
	b.p, b.arena, b.elems, b.nodes, b.attrs, b.textRaw = nil, nil, nil, nil, nil, nil
	clear(b.children[:cap(b.children)])
	clear(b.stack[:cap(b.stack)])
	clear(b.binds[:cap(b.binds)])
	if cap(b.text) > minBuf {
		b.text = nil
	}
	if cap(b.tmp) > minBuf {
		b.tmp = nil
	}
	if cap(b.children) > 256 {
		b.children = nil
	}
	if cap(b.raw) > 64 {
		b.raw = nil
	}
	b.seen = nil
}

func (b *builder) err(kind error, code errCode, i int, msg string) error {
	return errAt(kind, code, b.off+int64(i), msg)
}

// str returns s as a string that does not alias the read buffer.
func (b *builder) str(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	if b.useArena {
		if b.arena == nil {
			b.arena = make([]byte, 0, len(b.p))
		}
		if n := len(b.arena); n+len(s) <= cap(b.arena) {
			// The arena never grows (it has room for every string of the
			// element, since unescaping only shrinks) and bytes once
			// written are never changed, which is what unsafe.String
			// requires.
			b.arena = append(b.arena, s...)
			return unsafe.String(&b.arena[n], len(s))
		}
	}
	return string(s)
}

// name returns an interned or copied name.
func (b *builder) name(s []byte) string {
	if v, ok := intern(s); ok {
		return v
	}
	return b.str(s)
}

func (b *builder) newElem() *Element {
	if len(b.elems) > 0 {
		e := &b.elems[0]
		b.elems = b.elems[1:]
		return e
	}
	return new(Element) // the framer's count was short: cannot happen for input the builder accepts
}

func (b *builder) takeAttrs(n int) []Attr {
	if n == 0 {
		return nil
	}
	if len(b.attrs) >= n {
		a := b.attrs[:n:n]
		b.attrs = b.attrs[n:]
		return a
	}
	return make([]Attr, n)
}

func (b *builder) takeNodes(n int) []Node {
	if n == 0 {
		return nil
	}
	if len(b.nodes) >= n {
		s := b.nodes[:n:n]
		b.nodes = b.nodes[n:]
		return s
	}
	return make([]Node, n)
}

// build parses p, which the framer delimited, into an element. With
// rootOnly it stops after the first start tag and also returns the default
// namespace in effect inside it and the raw qualified name (for matching
// </stream:stream>).
func (b *builder) build(rootOnly bool, defNS string) (el *Element, inner string, qname []byte, err error) {
	p := b.p
	i := 0
	for i < len(p) {
		if p[i] != '<' {
			if len(b.stack) == 0 {
				return nil, "", nil, b.err(ErrNotWellFormed, codeRootText, i, "character data outside an element")
			}
			if i, err = b.scanText(i); err != nil {
				return nil, "", nil, err
			}
			continue
		}
		if i+1 >= len(p) {
			return nil, "", nil, b.err(ErrNotWellFormed, codeOther, i, "unexpected end of element")
		}
		switch p[i+1] {
		case '/':
			b.flushText()
			if len(b.stack) == 0 {
				return nil, "", nil, b.err(ErrNotWellFormed, codeOther, i, "end tag without start tag")
			}
			if el, i, err = b.endTag(i); err != nil {
				return nil, "", nil, err
			}
			if len(b.stack) == 0 {
				if i != len(p) {
					return nil, "", nil, b.err(ErrNotWellFormed, codeOther, i, "content after the element")
				}
				return el, "", nil, nil
			}
		case '!':
			if len(b.stack) == 0 {
				return nil, "", nil, b.err(ErrRestrictedXML, codeOther, i, "comment or DTD")
			}
			if i, err = b.cdata(i); err != nil {
				return nil, "", nil, err
			}
		case '?':
			return nil, "", nil, b.err(ErrRestrictedXML, codeOther, i, "processing instruction")
		default:
			b.flushText()
			if len(b.stack) > 0 {
				defNS = b.stack[len(b.stack)-1].defNS
			}
			var empty bool
			var oe openElem
			oe.bindMark = len(b.binds)
			oe.qs = i + 1
			if oe.el, oe.qe, oe.defNS, empty, i, err = b.startTag(i, defNS); err != nil {
				return nil, "", nil, err
			}
			if rootOnly {
				return oe.el, oe.defNS, p[oe.qs:oe.qe], nil
			}
			if empty {
				b.binds = b.binds[:oe.bindMark]
				if len(b.stack) == 0 {
					if i != len(p) {
						return nil, "", nil, b.err(ErrNotWellFormed, codeOther, i, "content after the element")
					}
					return oe.el, "", nil, nil
				}
				b.children = append(b.children, Node{Elem: oe.el})
				continue
			}
			oe.childMark = len(b.children)
			b.stack = append(b.stack, oe)
		}
	}
	return nil, "", nil, b.err(ErrNotWellFormed, codeOther, len(p), "unexpected end of element")
}

// flushText turns the pending character data into a child node. Text and
// CDATA sections that touch are merged into one node.
func (b *builder) flushText() {
	if b.textRaw != nil {
		b.children = append(b.children, Node{Text: b.str(b.textRaw)})
		b.textRaw = nil
	} else if len(b.text) > 0 {
		b.children = append(b.children, Node{Text: b.str(b.text)})
		b.text = b.text[:0]
	}
}

// addText appends s to the pending text. The common case, a text node that
// is one run of plain characters, is kept as a slice of the input and
// copied once, into the result.
func (b *builder) addText(s []byte) {
	if len(s) == 0 {
		return
	}
	if b.textRaw == nil && len(b.text) == 0 {
		b.textRaw = s
		return
	}
	if b.textRaw != nil {
		b.text = append(b.text, b.textRaw...)
		b.textRaw = nil
	}
	b.text = append(b.text, s...)
}

// addRune appends one decoded character to the pending text.
func (b *builder) addRune(r rune) {
	if b.textRaw != nil {
		b.text = append(b.text, b.textRaw...)
		b.textRaw = nil
	}
	b.text = utf8.AppendRune(b.text, r)
}

// endTag handles the end tag at p[i] and returns the element it closes.
func (b *builder) endTag(i int) (*Element, int, error) {
	p := b.p
	ns := i + 2
	ne, err := scanName(p, ns, b.off)
	if err != nil {
		return nil, i, err
	}
	j := skipSpace(p, ne)
	if j >= len(p) || p[j] != '>' {
		return nil, i, b.err(ErrNotWellFormed, codeOther, j, "'>' expected in end tag")
	}
	oe := b.stack[len(b.stack)-1]
	if !bytes.Equal(p[ns:ne], p[oe.qs:oe.qe]) {
		return nil, i, b.err(ErrNotWellFormed, codeOther, i, "end tag </"+clip(p[ns:ne])+"> does not match <"+clip(p[oe.qs:oe.qe])+">")
	}
	b.stack[len(b.stack)-1] = openElem{}
	b.stack = b.stack[:len(b.stack)-1]
	b.binds = b.binds[:oe.bindMark]
	if n := len(b.children) - oe.childMark; n > 0 {
		oe.el.Children = b.takeNodes(n)
		copy(oe.el.Children, b.children[oe.childMark:])
		clear(b.children[oe.childMark:])
		b.children = b.children[:oe.childMark]
	}
	if len(b.stack) > 0 {
		b.children = append(b.children, Node{Elem: oe.el})
	}
	return oe.el, j + 1, nil
}

// startTag parses the start tag at p[i]. It returns the element, the end of
// its raw qualified name, the default namespace inside it, whether it was
// empty (<x/>) and the index after the tag. Its prefixed declarations are
// left pushed on b.binds.
func (b *builder) startTag(i int, defNS string) (el *Element, qe int, inner string, empty bool, next int, err error) {
	p := b.p
	qs := i + 1
	if qe, err = scanName(p, qs, b.off); err != nil {
		return
	}
	b.raw = b.raw[:0]
	b.tmp = b.tmp[:0]
	j := qe
	for {
		k := skipSpace(p, j)
		if k >= len(p) {
			err = b.err(ErrNotWellFormed, codeOther, k, "unexpected end of start tag")
			return
		}
		if c := p[k]; c == '>' {
			next = k + 1
			break
		} else if c == '/' {
			if k+1 >= len(p) || p[k+1] != '>' {
				err = b.err(ErrNotWellFormed, codeOther, k, "'>' expected after '/'")
				return
			}
			empty = true
			next = k + 2
			break
		}
		if k == j {
			err = b.err(ErrNotWellFormed, codeAttrSpace, k, "white space expected before attribute")
			return
		}
		var a rawAttr
		a.ns = k
		if a.ne, err = scanName(p, k, b.off); err != nil {
			return
		}
		k = skipSpace(p, a.ne)
		if k >= len(p) || p[k] != '=' {
			err = b.err(ErrNotWellFormed, codeOther, k, "'=' expected after attribute name")
			return
		}
		k = skipSpace(p, k+1)
		if k >= len(p) || (p[k] != '"' && p[k] != '\'') {
			err = b.err(ErrNotWellFormed, codeOther, k, "quoted attribute value expected")
			return
		}
		q := bytes.IndexByte(p[k+1:], p[k])
		if q < 0 {
			err = b.err(ErrNotWellFormed, codeOther, k, "unterminated attribute value")
			return
		}
		a.vs, a.ve = k+1, k+1+q
		j = a.ve + 1
		if err = b.attrValue(&a); err != nil {
			return
		}
		b.raw = append(b.raw, a)
	}

	if err = b.checkDuplicates(); err != nil {
		return
	}

	// Declarations on an element apply to its own name and attributes, so
	// they are processed first.
	nattr := 0
	inner = defNS
	for idx := range b.raw {
		a := &b.raw[idx]
		name := p[a.ns:a.ne]
		switch {
		case string(name) == "xmlns":
			inner = b.nsValue(a)
			if inner == NSXML || inner == nsXMLNS {
				err = b.err(ErrNotWellFormed, codeNSDecl, a.ns, "reserved namespace as default namespace")
				return
			}
		case len(name) > 6 && string(name[:6]) == "xmlns:":
			prefix := name[6:]
			if _, ok := splitQName(prefix); !ok || bytes.IndexByte(prefix, ':') >= 0 {
				err = b.err(ErrNotWellFormed, codeQName, a.ns, "invalid namespace prefix")
				return
			}
			uri := b.nsValue(a)
			isXML := string(prefix) == "xml"
			switch {
			case uri == "":
				err = b.err(ErrNotWellFormed, codeNSDecl, a.ns, "empty namespace name for a prefix")
			case string(prefix) == "xmlns" || uri == nsXMLNS:
				err = b.err(ErrNotWellFormed, codeNSDecl, a.ns, "the xmlns prefix cannot be declared")
			case isXML != (uri == NSXML):
				err = b.err(ErrNotWellFormed, codeNSDecl, a.ns, "the xml prefix is bound to the XML namespace only")
			case len(b.binds) >= maxBindings:
				err = b.err(ErrTooLarge, codeOther, a.ns, "too many namespace declarations")
			}
			if err != nil {
				return
			}
			if !isXML {
				b.binds = append(b.binds, binding{prefix: b.name(prefix), uri: uri})
			}
		default:
			if _, ok := splitQName(name); !ok {
				err = b.err(ErrNotWellFormed, codeQName, a.ns, "invalid attribute name")
				return
			}
			nattr++
		}
	}

	el = b.newElem()
	qname := p[qs:qe]
	colon, ok := splitQName(qname)
	if !ok {
		err = b.err(ErrNotWellFormed, codeQName, qs, "invalid element name")
		return
	}
	if colon < 0 {
		el.Space = inner
		el.Name = b.name(qname)
	} else {
		if el.Space, ok = b.lookup(qname[:colon]); !ok {
			err = b.err(ErrBadNamespacePrefix, codeUndeclared, qs, "undeclared prefix "+clip(qname[:colon]))
			return
		}
		el.Name = b.name(qname[colon+1:])
	}
	if nattr > 0 {
		el.Attrs = b.takeAttrs(nattr)
		n := 0
		for idx := range b.raw {
			a := &b.raw[idx]
			name := p[a.ns:a.ne]
			if string(name) == "xmlns" || (len(name) > 6 && string(name[:6]) == "xmlns:") {
				continue
			}
			el.Attrs[n] = Attr{Name: b.name(name), Value: b.value(a)}
			n++
		}
	}
	return
}

const nsXMLNS = "http://www.w3.org/2000/xmlns/"

// lookup resolves a prefix against the declarations in scope.
func (b *builder) lookup(prefix []byte) (string, bool) {
	if string(prefix) == "xml" {
		return NSXML, true
	}
	for i := len(b.binds) - 1; i >= 0; i-- {
		if b.binds[i].prefix == string(prefix) {
			return b.binds[i].uri, true
		}
	}
	return "", false
}

// checkDuplicates rejects an attribute (or declaration) written twice.
// Small tags, the norm, compare pairwise; a map keeps a hostile tag with
// thousands of attributes linear.
func (b *builder) checkDuplicates() error {
	p := b.p
	if len(b.raw) <= 16 {
		for x := 1; x < len(b.raw); x++ {
			nx := p[b.raw[x].ns:b.raw[x].ne]
			for y := 0; y < x; y++ {
				if bytes.Equal(nx, p[b.raw[y].ns:b.raw[y].ne]) {
					return b.err(ErrNotWellFormed, codeDupAttr, b.raw[x].ns, "duplicate attribute "+clip(nx))
				}
			}
		}
		return nil
	}
	if b.seen == nil {
		b.seen = make(map[string]struct{}, len(b.raw))
	}
	defer clear(b.seen)
	for _, a := range b.raw {
		k := string(p[a.ns:a.ne])
		if _, dup := b.seen[k]; dup {
			return b.err(ErrNotWellFormed, codeDupAttr, a.ns, "duplicate attribute "+clip([]byte(k)))
		}
		b.seen[k] = struct{}{}
	}
	return nil
}

func (b *builder) rawValue(a *rawAttr) []byte {
	if a.plain {
		return b.p[a.vs:a.ve]
	}
	return b.tmp[a.vs:a.ve]
}

// value returns an attribute value as a string.
func (b *builder) value(a *rawAttr) string {
	v := b.rawValue(a)
	if len(v) <= 16 {
		if s, ok := intern(v); ok {
			return s
		}
	}
	return b.str(v)
}

// nsValue returns a namespace name; these repeat on every stanza, so the
// intern table is tried at any length.
func (b *builder) nsValue(a *rawAttr) string {
	return b.name(b.rawValue(a))
}

// attrValue validates the value p[a.vs:a.ve]. If it contains references or
// white space that attribute-value normalization (XML 1.0 §3.3.3) rewrites,
// the normalized value is appended to b.tmp and a points there.
func (b *builder) attrValue(a *rawAttr) error {
	p := b.p
	i, end := a.vs, a.ve
	for i < end && class[p[i]]&clAttr != 0 {
		i++
	}
	if i == end {
		a.plain = true
		return nil
	}
	// The slow path runs once per value that needs it.
	plain := true
	start := len(b.tmp)
	flushed := a.vs
	for i < end {
		c := p[i]
		if class[c]&clAttr != 0 {
			i++
			continue
		}
		switch {
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(p[i:end])
			if err := b.checkRune(r, n, i); err != nil {
				return err
			}
			i += n
			continue
		case c == '<':
			return b.err(ErrNotWellFormed, codeOther, i, "'<' in attribute value")
		case c == '&', c == '\t', c == '\n', c == '\r':
		default:
			return b.err(ErrNotWellFormed, codeOther, i, "character not allowed in XML")
		}
		plain = false
		b.tmp = append(b.tmp, p[flushed:i]...)
		switch c {
		case '&':
			r, j, err := parseRef(p[:end], i, b.off)
			if err != nil {
				return err
			}
			b.tmp = utf8.AppendRune(b.tmp, r)
			i = j
		case '\r':
			b.tmp = append(b.tmp, ' ')
			i++
			if i < end && p[i] == '\n' {
				i++
			}
		default:
			b.tmp = append(b.tmp, ' ')
			i++
		}
		flushed = i
	}
	if plain {
		a.plain = true
		b.tmp = b.tmp[:start]
		return nil
	}
	b.tmp = append(b.tmp, p[flushed:end]...)
	a.vs, a.ve = start, len(b.tmp)
	return nil
}

// checkRune validates a decoded non-ASCII rune of n bytes at p[i].
func (b *builder) checkRune(r rune, n, i int) error {
	if r == utf8.RuneError && n <= 1 {
		return b.err(ErrNotWellFormed, codeOther, i, "invalid UTF-8")
	}
	if r == 0xFFFE || r == 0xFFFF {
		return b.err(ErrNotWellFormed, codeOther, i, "character not allowed in XML")
	}
	return nil
}

// scanText appends the character data starting at p[i] to b.text, up to the
// next '<', and returns the index of that '<'. Line ends are normalized to
// \n (XML 1.0 §2.11) and references replaced.
func (b *builder) scanText(i int) (int, error) {
	p := b.p
	flushed := i
	for i < len(p) {
		c := p[i]
		if class[c]&clText != 0 {
			i++
			continue
		}
		switch {
		case c == '<':
			b.addText(p[flushed:i])
			return i, nil
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(p[i:])
			if err := b.checkRune(r, n, i); err != nil {
				return i, err
			}
			i += n
		case c == '>':
			if i-flushed >= 2 && p[i-1] == ']' && p[i-2] == ']' {
				return i, b.err(ErrNotWellFormed, codeOther, i-2, "']]>' in character data")
			}
			i++
		case c == '&':
			b.addText(p[flushed:i])
			r, j, err := parseRef(p, i, b.off)
			if err != nil {
				return i, err
			}
			b.addRune(r)
			i, flushed = j, j
		case c == '\r':
			b.addText(p[flushed:i])
			b.addRune('\n')
			i++
			if i < len(p) && p[i] == '\n' {
				i++
			}
			flushed = i
		default:
			return i, b.err(ErrNotWellFormed, codeOther, i, "character not allowed in XML")
		}
	}
	b.addText(p[flushed:])
	return i, nil
}

// cdata appends the content of the CDATA section at p[i] to b.text.
func (b *builder) cdata(i int) (int, error) {
	p := b.p
	if !bytes.HasPrefix(p[i+2:], []byte(cdataOpen)) {
		if i+2 < len(p) && p[i+2] != '[' {
			return i, b.err(ErrRestrictedXML, codeOther, i, "comment or DTD")
		}
		return i, b.err(ErrNotWellFormed, codeOther, i, "invalid CDATA section")
	}
	s := i + 2 + len(cdataOpen)
	e := bytes.Index(p[s:], []byte("]]>"))
	if e < 0 {
		return i, b.err(ErrNotWellFormed, codeOther, i, "unterminated CDATA section")
	}
	e += s
	flushed := s
	for j := s; j < e; {
		c := p[j]
		if class[c]&clText != 0 || c == '<' || c == '&' || c == '>' {
			j++
			continue
		}
		switch {
		case c >= utf8.RuneSelf:
			r, n := utf8.DecodeRune(p[j:e])
			if err := b.checkRune(r, n, j); err != nil {
				return i, err
			}
			j += n
		case c == '\r':
			b.addText(p[flushed:j])
			b.addRune('\n')
			j++
			if j < e && p[j] == '\n' {
				j++
			}
			flushed = j
		default:
			return i, b.err(ErrNotWellFormed, codeOther, j, "character not allowed in XML")
		}
	}
	b.addText(p[flushed:e])
	return e + 3, nil
}
