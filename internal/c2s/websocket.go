package c2s

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// wsTransport is an XMPP stream over WebSocket (RFC 7395): every message is
// one complete element; <open/> and <close/> in the framing namespace
// replace the stream header and end tag.
//
// It owns the hijacked connection and reads frames itself (wsframe.go), so
// an idle WebSocket is parked like an idle TCP stream: no goroutine, no
// read buffer, only the frame reader's fixed state (park.go).
type wsTransport struct {
	raw    net.Conn // the socket, for the poller and the send queue
	conn   net.Conn // raw, or the TLS connection over it (wss)
	lim    xmlstream.Limits
	secure bool
	remote netip.Addr
	onRead func()
	// onStuck is told a write timed out: the client does not read.
	onStuck func()
	// writeTimeout cuts a client that does not read (see tcpTransport).
	writeTimeout time.Duration

	// Owned by the reading goroutine (one at a time, parked or not).
	fr     wsReader
	buf    []byte // read buffer, nil while idle
	r0, w  int    // unread bytes are buf[r0:w]
	rerr   error  // a read error that came with data, returned next
	ending *wsEnd // set once the client closed or broke the protocol

	wmu      sync.Mutex // serializes writes and Close
	closed   bool
	stopping atomic.Bool // Close was called: writes get closeWriteTimeout
	// end is how Close ends the WebSocket: set by the reader when the
	// client sent a Close frame or broke RFC 6455, nil for a normal end.
	end atomic.Pointer[wsEnd]

	parkState
}

// wsEnd is the Close frame the server sends last.
type wsEnd struct {
	code   uint16 // 0: a Close frame with no status (answering one without)
	reason string
	echo   bool // answering the client's Close: no XMPP-level close first
}

// errWSClosed is the client's Close frame: the stream ends like a broken
// connection (a resumable session hibernates).
var errWSClosed = errors.New("c2s: WebSocket closed by the client")

// isWSClosed reports whether err is the client's Close frame.
func isWSClosed(err error) bool { return errors.Is(err, errWSClosed) }

// wsReadBufSize is the read buffer a WebSocket takes while it reads; idle
// connections hold none.
const wsReadBufSize = 4 << 10

var wsReadBufs = sync.Pool{New: func() any { b := make([]byte, wsReadBufSize); return &b }}

func newWSTransport(c net.Conn, remote string, lim xmlstream.Limits, writeTimeout time.Duration) *wsTransport {
	raw := c
	tc, secure := c.(*tls.Conn)
	if secure {
		raw = tc.NetConn()
	}
	t := &wsTransport{raw: raw, conn: c, lim: lim, secure: secure, writeTimeout: writeTimeout}
	// A message is one element: the element limit bounds it.
	t.fr.max = lim.MaxElementBytes
	if t.fr.max <= 0 {
		t.fr.max = xmlstream.DefaultMaxElementBytes
	}
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		t.remote = ap.Addr().Unmap()
	}
	return t
}

// preload hands the transport bytes the HTTP server read past the
// handshake.
func (t *wsTransport) preload(p []byte) {
	if len(p) == 0 {
		return
	}
	t.buf = make([]byte, max(len(p), wsReadBufSize))
	t.w = copy(t.buf, p)
}

func (t *wsTransport) Next() (xmlstream.Event, error) {
	for {
		f, err := t.frame()
		if err != nil {
			return xmlstream.Event{}, err
		}
		switch f.op {
		case wsOpPing:
			t.control(wsOpPong, f.payload)
			continue
		case wsOpPong:
			continue
		case wsOpClose:
			e := &wsEnd{echo: true}
			if len(f.payload) >= 2 {
				e.code = uint16(f.payload[0])<<8 | uint16(f.payload[1])
			}
			t.ending = e
			t.end.Store(e)
			return xmlstream.Event{}, errWSClosed
		case wsOpBinary:
			return xmlstream.Event{}, &stanza.StreamError{Condition: "bad-format", Text: "XMPP over WebSocket uses text messages"}
		}
		el, err := xmlstream.Parse(f.payload, t.lim)
		if err != nil {
			return xmlstream.Event{}, err
		}
		if el.Space == xmlstream.NSFraming {
			switch el.Name {
			case "open":
				return xmlstream.Event{Kind: xmlstream.StreamStart, Elem: el, DefaultNS: xmlstream.NSClient}, nil
			case "close":
				return xmlstream.Event{Kind: xmlstream.StreamEnd}, nil
			}
		}
		return xmlstream.Event{Kind: xmlstream.ElementEvent, Elem: el}, nil
	}
}

// frame reads until the next complete message or control frame.
func (t *wsTransport) frame() (wsFrame, error) {
	if t.ending != nil {
		return wsFrame{}, errWSClosed // nothing is read after a Close
	}
	for {
		if t.r0 < t.w {
			n, f, ok, err := t.fr.feed(t.buf[t.r0:t.w])
			t.r0 += n
			if err != nil {
				var we *wsError
				if errors.As(err, &we) {
					e := &wsEnd{code: we.code, reason: we.text}
					t.ending = e
					t.end.Store(e)
					if we.code == wsCloseTooBig {
						return wsFrame{}, xmlstream.ErrTooLarge
					}
				}
				return wsFrame{}, err
			}
			if ok {
				return f, nil
			}
			continue
		}
		if t.rerr != nil {
			err := t.rerr
			t.rerr = nil
			return wsFrame{}, err
		}
		if t.buf == nil {
			t.buf = *wsReadBufs.Get().(*[]byte)
		}
		t.r0, t.w = 0, 0
		n, err := t.conn.Read(t.buf)
		if n > 0 {
			t.w = n
			if t.onRead != nil {
				t.onRead()
			}
		}
		if err != nil {
			if n == 0 {
				return wsFrame{}, err
			}
			t.rerr = err
		}
	}
}

// control answers a ping from the reading goroutine.
func (t *wsTransport) control(op byte, payload []byte) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return
	}
	b := appendWSHeader(getBuf(), op, len(payload))
	t.flush(append(b, payload...))
}

func (t *wsTransport) armIdle(d time.Duration) { t.armDeadline(t.raw, d) }

// idle: as for TCP, a read that timed out left everything consistent
// (crypto/tls keeps a partial record; the frame reader resumes mid-frame).
func (t *wsTransport) idle(err error) bool {
	return t.ending == nil && errors.Is(err, os.ErrDeadlineExceeded)
}

func (t *wsTransport) park(wake func()) bool {
	if t.r0 == t.w && t.buf != nil {
		if len(t.buf) == wsReadBufSize {
			b := t.buf
			wsReadBufs.Put(&b)
		}
		t.buf, t.r0, t.w = nil, 0, 0
	}
	t.fr.idle()
	if tc, ok := t.conn.(*tls.Conn); ok {
		releaseTLSReadBuffers(tc)
	}
	return t.parkConn(t.raw, wake)
}

func (t *wsTransport) Restart()           {}
func (t *wsTransport) Secure() bool       { return t.secure }
func (t *wsTransport) CanStartTLS() bool  { return false }
func (t *wsTransport) Remote() netip.Addr { return t.remote }
func (t *wsTransport) Kind() string       { return "websocket" }
func (t *wsTransport) StartTLS(cfg *tls.Config) error {
	return errors.New("c2s: no STARTTLS on WebSocket")
}

func (t *wsTransport) SendHeader(from, id, lang string) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return net.ErrClosed
	}
	open := "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='" + from + "' id='" + id + "' version='1.0' xml:lang='" + lang + "'/>"
	b := appendWSHeader(getBuf(), wsOpText, len(open))
	return t.flush(append(b, open...))
}

// Write sends each element as its own message, as RFC 7395 §3.3.3
// requires, all in one write.
func (t *wsTransport) Write(els []*xmlstream.Element) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return net.ErrClosed
	}
	b, el := getBuf(), getBuf()
	for _, e := range els {
		el = appendFrame(el[:0], e)
		b = appendWSHeader(b, wsOpText, len(el))
		b = append(b, el...)
	}
	putBuf(el)
	return t.flush(b)
}

// flush writes b in one call and returns it to the shared pool (see
// tcpTransport.flush).
func (t *wsTransport) flush(b []byte) error {
	return flushConn(t.conn, b, t.writeTimeout, &t.stopping, t.onStuck)
}

// appendFrame serializes one element as a standalone document. Stream
// features and errors keep the stream: prefix as in the RFC's examples.
func appendFrame(b []byte, el *xmlstream.Element) []byte {
	if el.Space != xmlstream.NSStream {
		return xmlstream.Append(b, el, "")
	}
	b = append(b, "<stream:"...)
	b = append(b, el.Name...)
	b = append(b, " xmlns:stream='http://etherx.jabber.org/streams'>"...)
	for _, c := range el.Children {
		if c.Elem != nil {
			b = xmlstream.Append(b, c.Elem, "")
		}
	}
	b = append(b, "</stream:"...)
	b = append(b, el.Name...)
	return append(b, '>')
}

// Close ends the stream with the stream error (if any) and <close/>, then
// the WebSocket with a Close frame — or, when the client sent a Close
// frame or broke RFC 6455, with only the Close frame that answers it.
// Like tcpTransport.Close it never waits long: a write blocked on a client
// that does not read is cut short, and the socket closes once the kernel
// has delivered what was written (or after 64 ms).
func (t *wsTransport) Close(se *stanza.StreamError) {
	t.stopping.Store(true)
	t.conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	b := getBuf()
	e := t.end.Load()
	if e == nil || (!e.echo && e.code == wsCloseTooBig) {
		if se != nil {
			el := appendFrame(nil, se.Element())
			b = append(appendWSHeader(b, wsOpText, len(el)), el...)
		}
		const closeEl = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"
		b = append(appendWSHeader(b, wsOpText, len(closeEl)), closeEl...)
	}
	switch {
	case e == nil:
		b = appendWSClose(b, wsCloseNormal, "")
	default:
		b = appendWSClose(b, e.code, e.reason)
	}
	t.conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	_, err := t.conn.Write(b)
	putBuf(b)
	// RFC 6455 §7.1.1: the server closes the TCP connection first; what
	// was just written reaches the client before the socket goes.
	for wait := time.Millisecond; err == nil && wait < 64*time.Millisecond; wait *= 2 {
		if n, ok := sendQueue(t.raw); !ok || n == 0 {
			break
		}
		time.Sleep(wait)
	}
	t.conn.Close()
	t.wakeClosed() // a parked stream wakes, reads the error and ends
}
