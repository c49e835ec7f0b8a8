package xmlstream

import (
	"bytes"
	"errors"
	"io"
	"sync"
)

// Limits bound what one peer can make the server hold.
type Limits struct {
	MaxElementBytes int // max raw bytes of one top-level element (stanza) including its markup; 0 means 256 KiB
	MaxDepth        int // max nesting depth inside a top-level element; 0 means 64
}

// Defaults for a zero Limits. 256 KiB holds any reasonable stanza (vCards
// with avatars are the large ones); 64 levels is far deeper than any XMPP
// payload nests.
const (
	DefaultMaxElementBytes = 256 << 10
	DefaultMaxDepth        = 64
)

// norm fills in the defaults (for zero or negative fields). MaxDepth counts the top-level element itself
// as level 1: with MaxDepth 2, <message><body/></message> is allowed and
// <message><x><y/></x></message> is not.
func (l Limits) norm() Limits {
	if l.MaxElementBytes <= 0 {
		l.MaxElementBytes = DefaultMaxElementBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}

// EventKind says what a stream-level Event carries.
type EventKind int

const (
	StreamStart  EventKind = iota + 1 // the root <stream:stream ...> start tag was read
	ElementEvent                      // one complete direct child of the root
	StreamEnd                         // </stream:stream> was read
)

func (k EventKind) String() string {
	switch k {
	case StreamStart:
		return "StreamStart"
	case ElementEvent:
		return "ElementEvent"
	case StreamEnd:
		return "StreamEnd"
	}
	return "EventKind(?)"
}

// Event is one stream-level event.
type Event struct {
	Kind      EventKind
	Elem      *Element // StreamStart: the root start tag (Space/Name/Attrs, no children); ElementEvent: the complete element tree
	DefaultNS string   // StreamStart only: the default namespace declared on the root (e.g. "jabber:client")
}

// Read buffer sizing. Most stanzas fit in minBuf, so an idle connection
// holds one small buffer; the buffer doubles while a large element arrives
// (up to the element limit) and is given back once the connection is
// between elements again, so one avatar upload does not pin 256 KiB for
// the rest of the session.
const (
	minBuf      = 1 << 10
	shrinkAbove = 4 << 10
)

type streamState uint8

const (
	stPrologue streamState = iota // before the root start tag
	stStream                      // inside the root
	stEnded                       // after </stream:stream>
)

// What the decoder is in the middle of reading.
type frameMode uint8

const (
	modeNone    frameMode = iota // between top-level items
	modeDecl                     // the XML declaration
	modeRoot                     // the root start tag
	modeElement                  // a direct child of the root
	modeEnd                      // the root end tag
)

// Decoder reads one XMPP stream: the root start tag, each direct child of
// the root as a complete tree, and the root end tag. It is a resumable state
// machine over a reused buffer, so it reads no further than it needs to and
// never blocks while a complete element is buffered: a client that sends one
// stanza and waits for the answer gets it.
//
// Before the root it accepts a UTF-8 byte order mark, white space and one
// XML declaration (UTF-8 only); white space before the declaration is
// tolerated although XML does not allow it, since it is harmless and some
// clients send a newline first. After </stream:stream> it reads nothing more.
//
// A Decoder is not safe for concurrent use. Syntax and policy errors are
// final: every later Next returns the same error, since the stream cannot be
// resynchronised. Errors from the underlying reader are returned as they
// are and are not final (a read deadline can be extended and Next called
// again).
type Decoder struct {
	r   io.Reader
	lim Limits

	buf   []byte
	r0, w int   // unread bytes are buf[r0:w]
	off   int64 // stream offset of buf[0], for error messages

	state      streamState
	mode       frameMode
	declDone   bool // an XML declaration (or the root) was seen: no declaration may follow
	pendingEnd bool // the root was written <stream:stream .../>: StreamEnd comes next
	f          framer
	// No builder here: element takes one from builderPool for the
	// element it builds, so a decoder between elements — every idle
	// connection — holds none of the builder's scratch (~0.5 KiB).

	// The root's namespace context, in scope for every child.
	rootBinds []binding
	rootDefNS string
	rootQName string

	err     error // sticky syntax or policy error
	rerr    error // read error held back until the bytes read with it are used
	empties int   // consecutive reads that returned nothing
}

// NewDecoder returns a Decoder reading a stream from r. Zero fields of lim
// take the defaults.
func NewDecoder(r io.Reader, lim Limits) *Decoder {
	return &Decoder{r: r, lim: lim.norm()}
}

// Reset makes d read a brand-new stream from r (used after STARTTLS and after
// SASL success, RFC 6120 §4.3.3): all buffered, unread bytes are DISCARDED
// (security: STARTTLS command injection), state reset, buffers kept for
// reuse.
//
// Discarding matters because bytes that arrived in the clear after
// <starttls/> were not protected by the TLS layer the new stream runs over:
// a man in the middle could have appended them to the client's command and
// had them executed as if they came over TLS (the STARTTLS command
// injection class of bugs, CVE-2011-0411). A legitimate client sends
// nothing after <starttls/> or its SASL response until it has our answer.
func (d *Decoder) Reset(r io.Reader) {
	d.r = r
	d.r0, d.w, d.off = 0, 0, 0
	if len(d.buf) > shrinkAbove {
		d.buf = nil
	}
	d.state, d.mode = stPrologue, modeNone
	d.declDone, d.pendingEnd = false, false
	d.f = framer{}
	clear(d.rootBinds)
	d.rootBinds = d.rootBinds[:0]
	d.rootDefNS, d.rootQName = "", ""
	d.err, d.rerr, d.empties = nil, nil, 0
}

// Next returns the next stream-level event. Whitespace between top-level elements (keepalives) is skipped. Returns io.EOF if the reader ends cleanly between elements/before the root; io.ErrUnexpectedEOF inside an element; otherwise errors wrapping the sentinels above.
func (d *Decoder) Next() (Event, error) {
	if d.err != nil {
		return Event{}, d.err
	}
	for {
		if d.state == stEnded {
			return Event{}, io.EOF
		}
		ev, ok, err := d.step()
		if err != nil {
			d.err = err
			return Event{}, err
		}
		if ok {
			return ev, nil
		}
		if err := d.fill(); err != nil {
			if err == io.EOF && (d.mode != modeNone || d.w > d.r0) {
				return Event{}, io.ErrUnexpectedEOF
			}
			return Event{}, err
		}
	}
}

// step makes progress on the buffered bytes. It returns ok with an event,
// or !ok when it needs more input.
func (d *Decoder) step() (Event, bool, error) {
	for {
		switch d.mode {
		case modeRoot, modeElement:
			return d.element()
		case modeDecl:
			ok, err := d.decl()
			if !ok || err != nil {
				return Event{}, false, err
			}
			continue
		case modeEnd:
			return d.endRoot()
		}

		if d.pendingEnd {
			d.pendingEnd = false
			d.state = stEnded
			return Event{Kind: StreamEnd}, true, nil
		}
		p := d.buf[:d.w]
		i := d.r0
		if d.state == stPrologue && d.off == 0 && i == 0 && len(p) > 0 && p[0] == 0xEF {
			// A UTF-8 byte order mark may precede the document.
			if len(p) < 3 {
				return Event{}, false, nil
			}
			if p[1] == 0xBB && p[2] == 0xBF {
				i = 3
			}
		}
		i = skipSpace(p, i)
		d.r0 = i
		if i >= len(p) {
			return Event{}, false, nil
		}
		if p[i] != '<' {
			return Event{}, false, errAt(ErrNotWellFormed, codeRootText, d.off+int64(i), "character data outside an element")
		}
		if i+1 >= len(p) {
			return Event{}, false, nil
		}
		switch p[i+1] {
		case '?':
			if d.declDone {
				return Event{}, false, errAt(ErrRestrictedXML, codeOther, d.off+int64(i), "processing instruction")
			}
			if len(p)-i < 6 && bytes.HasPrefix([]byte("<?xml"), p[i:]) {
				return Event{}, false, nil // need more to tell a declaration from a PI
			}
			if !isDeclStart(p[i:]) {
				return Event{}, false, errAt(ErrRestrictedXML, codeOther, d.off+int64(i), "processing instruction")
			}
			d.f.begin(i, false)
			d.mode = modeDecl
		case '!':
			if i+2 >= len(p) {
				return Event{}, false, nil
			}
			if p[i+2] == '[' {
				return Event{}, false, errAt(ErrNotWellFormed, codeRootText, d.off+int64(i), "character data outside an element")
			}
			return Event{}, false, errAt(ErrRestrictedXML, codeOther, d.off+int64(i), "comment or DTD")
		case '/':
			if d.state != stStream {
				return Event{}, false, errAt(ErrNotWellFormed, codeOther, d.off+int64(i), "end tag before the stream header")
			}
			d.f.begin(i, false)
			d.mode = modeEnd
		default:
			if d.state == stPrologue {
				d.f.begin(i, true)
				d.mode = modeRoot
			} else {
				d.f.begin(i, false)
				d.mode = modeElement
			}
		}
	}
}

// element frames and builds the root start tag or a top-level element.
func (d *Decoder) element() (Event, bool, error) {
	done, err := d.f.scan(d.buf[:d.w], d.lim, d.off)
	if !done || err != nil {
		return Event{}, false, err
	}
	start, end := d.f.start, d.f.pos
	b := builderPool.Get().(*builder)
	defer putBuilder(b)
	b.reset(d.buf[start:end], d.off+int64(start), &d.f, d.rootBinds)
	var ev Event
	if d.mode == modeRoot {
		el, inner, qname, err := b.build(true, "")
		if err != nil {
			return Event{}, false, err
		}
		d.rootBinds = append(d.rootBinds[:0], b.binds...)
		d.rootDefNS = inner
		d.rootQName = string(qname)
		d.state = stStream
		d.declDone = true
		d.pendingEnd = d.f.empty
		ev = Event{Kind: StreamStart, Elem: el, DefaultNS: inner}
	} else {
		el, _, _, err := b.build(false, d.rootDefNS)
		if err != nil {
			return Event{}, false, err
		}
		ev = Event{Kind: ElementEvent, Elem: el}
	}
	d.r0 = end
	d.mode = modeNone
	return ev, true, nil
}

// decl reads the XML declaration that may open the stream.
func (d *Decoder) decl() (bool, error) {
	p := d.buf[:d.w]
	from := max(d.f.pos-1, d.f.start+5) // "?>" may straddle two reads; "<?xml" was checked

	j := bytes.Index(p[from:], []byte("?>"))
	if j < 0 {
		d.f.pos = len(p)
		if len(p)-d.f.start >= d.lim.MaxElementBytes {
			return false, errAt(ErrTooLarge, codeOther, d.off+int64(d.f.start), "XML declaration larger than the limit")
		}
		return false, nil
	}
	end := from + j + 2
	if err := checkDecl(p[d.f.start:end], d.off+int64(d.f.start)); err != nil {
		return false, err
	}
	d.declDone = true
	d.r0 = end
	d.mode = modeNone
	return true, nil
}

// endRoot reads </stream:stream>, which must match the root's name exactly.
func (d *Decoder) endRoot() (Event, bool, error) {
	p := d.buf[:d.w]
	j := bytes.IndexByte(p[d.f.pos:], '>')
	if j < 0 {
		d.f.pos = len(p)
		if len(p)-d.f.start >= d.lim.MaxElementBytes {
			return Event{}, false, errAt(ErrTooLarge, codeOther, d.off+int64(d.f.start), "end tag larger than the limit")
		}
		return Event{}, false, nil
	}
	end := d.f.pos + j + 1
	start := d.f.start
	ne, err := scanName(p[:end], start+2, d.off)
	if err != nil {
		return Event{}, false, err
	}
	if k := skipSpace(p, ne); k != end-1 {
		return Event{}, false, errAt(ErrNotWellFormed, codeOther, d.off+int64(k), "'>' expected in end tag")
	}
	if string(p[start+2:ne]) != d.rootQName {
		return Event{}, false, errAt(ErrNotWellFormed, codeOther, d.off+int64(start), "end tag </"+clip(p[start+2:ne])+"> does not match <"+clip([]byte(d.rootQName))+">")
	}
	d.r0 = end
	d.mode = modeNone
	d.state = stEnded
	return Event{Kind: StreamEnd}, true, nil
}

// builderPool holds the builders of elements being built: a builder is
// scratch for one element (see element), so decoders share them.
var builderPool = sync.Pool{New: func() any { return new(builder) }}

// putBuilder drops b's references into the element it built and pools it.
func putBuilder(b *builder) {
	b.release()
	builderPool.Put(b)
}

// bufPool holds the small read buffers of connections parked between
// elements (see Idle): a connection that wakes takes one, an idle one
// holds none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, minBuf); return &b }}

// Idle gives the read buffer back when no input is buffered and no element
// is in progress, so a connection that is idle between stanzas holds no
// buffer; the next read takes a fresh one. It is a no-op otherwise.
func (d *Decoder) Idle() {
	if d.r0 != d.w || d.mode != modeNone || d.rerr != nil || d.buf == nil {
		return
	}
	d.off += int64(d.r0)
	d.r0, d.w = 0, 0
	if len(d.buf) == minBuf {
		b := d.buf
		bufPool.Put(&b)
	}
	d.buf = nil
}

var errNegativeRead = errors.New("xmlstream: reader returned a bad count")

// fill reads more input, first making room: it moves unread bytes to the
// front, shrinks a buffer a large element left behind, and grows the buffer
// when the element being read fills it.
func (d *Decoder) fill() error {
	if d.rerr != nil {
		err := d.rerr
		d.rerr = nil
		return err
	}
	if d.r0 > 0 {
		n := copy(d.buf, d.buf[d.r0:d.w])
		shift := d.r0
		d.off += int64(shift)
		d.w, d.r0 = n, 0
		if d.mode != modeNone {
			d.f.shift(shift)
		}
	}
	if len(d.buf) > shrinkAbove && d.w <= minBuf/2 {
		nb := make([]byte, minBuf)
		copy(nb, d.buf[:d.w])
		d.buf = nb
	}
	if d.buf == nil {
		d.buf = (*bufPool.Get().(*[]byte))[:minBuf]
	}
	if d.w == len(d.buf) {
		limit := max(d.lim.MaxElementBytes, minBuf)
		if len(d.buf) >= limit {
			// The framer fails first; this is a backstop.
			return errAt(ErrTooLarge, codeOther, d.off, "element larger than the limit")
		}
		nb := make([]byte, min(2*len(d.buf), limit))
		copy(nb, d.buf[:d.w])
		d.buf = nb
	}
	n, err := d.r.Read(d.buf[d.w:])
	if n < 0 || n > len(d.buf)-d.w {
		return errNegativeRead
	}
	d.w += n
	if n > 0 {
		d.empties = 0
		d.rerr = err
		return nil
	}
	if err != nil {
		return err
	}
	if d.empties++; d.empties >= 100 {
		d.empties = 0
		return io.ErrNoProgress
	}
	return nil
}
