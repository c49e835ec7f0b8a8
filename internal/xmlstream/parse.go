package xmlstream

import (
	"bytes"
	"sync"
)

// builders are pooled for Parse: a WebSocket server calls it once per
// frame, and the builder's scratch stacks are worth keeping between calls.
var builders = sync.Pool{New: func() any { return new(builder) }}

var bom = []byte{0xEF, 0xBB, 0xBF}

// Parse parses exactly one complete standalone element from data (one RFC 7395 WebSocket frame, e.g. "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='x' version='1.0'/>" or "<message xmlns='jabber:client' ...>...</message>"); leading/trailing whitespace allowed, an optional XML declaration allowed; same restrictions and limits; anything else after the element -> ErrNotWellFormed.
//
// No namespace is in scope around the element (RFC 7395 §3.3.3: every
// frame is a standalone document), so a stanza without an xmlns attribute
// has Space "". A truncated element is ErrNotWellFormed, not
// io.ErrUnexpectedEOF: a frame is complete by definition. The returned tree
// does not alias data.
func Parse(data []byte, lim Limits) (*Element, error) {
	lim = lim.norm()
	i := 0
	if bytes.HasPrefix(data, bom) {
		i = len(bom)
	}
	i = skipSpace(data, i)
	if bytes.HasPrefix(data[i:], []byte("<?")) {
		if !isDeclStart(data[i:]) {
			return nil, errAt(ErrRestrictedXML, codeOther, int64(i), "processing instruction")
		}
		j := bytes.Index(data[i:], []byte("?>"))
		if j < 0 {
			return nil, errAt(ErrNotWellFormed, codeOther, int64(i), "unterminated XML declaration")
		}
		if err := checkDecl(data[i:i+j+2], int64(i)); err != nil {
			return nil, err
		}
		i = skipSpace(data, i+j+2)
	}
	if i >= len(data) {
		return nil, errAt(ErrNotWellFormed, codeOther, int64(i), "no element")
	}
	if data[i] != '<' {
		return nil, errAt(ErrNotWellFormed, codeRootText, int64(i), "character data outside an element")
	}
	var f framer
	f.begin(i, false)
	done, err := f.scan(data, lim, 0)
	if err != nil {
		return nil, err
	}
	if !done {
		return nil, errAt(ErrNotWellFormed, codeOther, int64(len(data)), "incomplete element")
	}
	end := f.pos
	if k := skipSpace(data, end); k != len(data) {
		if data[k] == '<' && k+1 < len(data) && (data[k+1] == '?' || data[k+1] == '!') && !(k+2 < len(data) && data[k+2] == '[') {
			return nil, errAt(ErrRestrictedXML, codeOther, int64(k), "comment, DTD or processing instruction")
		}
		return nil, errAt(ErrNotWellFormed, codeOther, int64(k), "content after the element")
	}
	b := builders.Get().(*builder)
	defer func() {
		b.release()
		builders.Put(b)
	}()
	b.reset(data[i:end], int64(i), &f, nil)
	el, _, _, err := b.build(false, "")
	if err != nil {
		return nil, err
	}
	return el, nil
}
