package c2s

import (
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// writeTimeout cuts a client that does not read: a write that cannot
// complete in this time means its socket buffer is full.
const writeTimeout = 30 * time.Second

// tcpTransport is an XMPP stream over a TCP (or TLS) connection.
type tcpTransport struct {
	raw    net.Conn
	conn   net.Conn // raw, or the TLS connection over it
	dec    *xmlstream.Decoder
	lim    xmlstream.Limits
	secure bool
	remote netip.Addr
	onRead func()

	wmu    sync.Mutex // serializes writes and Close
	closed bool

	parkState
}

// activityReader tells the idle watchdog about every read.
type activityReader struct {
	t *tcpTransport
}

func (r activityReader) Read(p []byte) (int, error) {
	n, err := r.t.conn.Read(p)
	if n > 0 && r.t.onRead != nil {
		r.t.onRead()
	}
	return n, err
}

func newTCPTransport(c net.Conn, secure bool, lim xmlstream.Limits) *tcpTransport {
	t := &tcpTransport{raw: c, conn: c, secure: secure, lim: lim}
	if ap, err := netip.ParseAddrPort(c.RemoteAddr().String()); err == nil {
		t.remote = ap.Addr().Unmap()
	}
	t.dec = xmlstream.NewDecoder(activityReader{t}, lim)
	return t
}

func (t *tcpTransport) Next() (xmlstream.Event, error) { return t.dec.Next() }
func (t *tcpTransport) Restart()                       { t.dec.Reset(activityReader{t}) }
func (t *tcpTransport) Secure() bool                   { return t.secure }
func (t *tcpTransport) CanStartTLS() bool              { return !t.secure }
func (t *tcpTransport) Remote() netip.Addr             { return t.remote }
func (t *tcpTransport) Kind() string {
	if t.secure {
		return "tls"
	}
	return "tcp"
}

func (t *tcpTransport) SendHeader(from, id, lang string) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	b := append(getBuf(), "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='"...)
	b = append(b, id...)
	b = append(b, "' from='"...)
	b = append(b, from...)
	b = append(b, "' version='1.0' xml:lang='"...)
	b = append(b, lang...)
	b = append(b, "'>"...)
	return t.flush(b)
}

func (t *tcpTransport) Write(els []*xmlstream.Element) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return net.ErrClosed
	}
	b := getBuf()
	for _, el := range els {
		b = appendTopLevel(b, el)
	}
	return t.flush(b)
}

// flush writes b in one call and returns the buffer to the shared pool: an
// idle connection holds no write buffer.
func (t *tcpTransport) flush(b []byte) error {
	t.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := t.conn.Write(b)
	putBuf(b)
	return err
}

// bufPool holds serialization buffers shared by all connections.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 2048); return &b }}

func getBuf() []byte { return (*bufPool.Get().(*[]byte))[:0] }

func putBuf(b []byte) {
	if cap(b) > 64<<10 {
		return // a rare huge batch: let it go rather than pin it
	}
	b = b[:0]
	bufPool.Put(&b)
}

// appendTopLevel serializes a direct child of the stream. Stream-namespace
// elements keep the conventional stream: prefix, which some clients match
// literally; everything else is written in the jabber:client scope.
func appendTopLevel(b []byte, el *xmlstream.Element) []byte {
	if el.Space != xmlstream.NSStream {
		return xmlstream.Append(b, el, xmlstream.NSClient)
	}
	b = append(b, "<stream:"...)
	b = append(b, el.Name...)
	b = append(b, '>')
	for _, c := range el.Children {
		if c.Elem != nil {
			b = xmlstream.Append(b, c.Elem, xmlstream.NSClient)
		}
	}
	b = append(b, "</stream:"...)
	b = append(b, el.Name...)
	return append(b, '>')
}

func (t *tcpTransport) Close(se *stanza.StreamError) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	var b []byte
	if se != nil {
		b = appendTopLevel(b, se.Element())
	}
	b = append(b, "</stream:stream>"...)
	t.conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
	t.conn.Write(b)
	// Half-close lets the client read our error before the socket goes.
	if tc, ok := t.conn.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	t.conn.Close()
	t.closing.Store(true)
	t.unpark() // a parked stream wakes, reads the error and ends
}

func (t *tcpTransport) StartTLS(cfg *tls.Config) error {
	if t.secure {
		return errors.New("c2s: TLS already active")
	}
	tc := tls.Server(t.raw, cfg)
	tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		return err
	}
	tc.SetDeadline(time.Time{})
	t.wmu.Lock()
	t.conn = tc
	t.secure = true
	t.wmu.Unlock()
	t.Restart()
	return nil
}
