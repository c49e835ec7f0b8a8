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

// closeWriteTimeout bounds the write of the closing stream error, and
// what is left of a write in progress when Close is called: the kernel
// takes a few bytes at once unless the client stopped reading.
const closeWriteTimeout = 250 * time.Millisecond

// tcpTransport is an XMPP stream over a TCP (or TLS) connection.
type tcpTransport struct {
	raw    net.Conn
	cw     *countingConn // raw, counting what is written to it
	conn   net.Conn      // cw, or the TLS connection over it
	dec    *xmlstream.Decoder
	lim    xmlstream.Limits
	secure bool
	remote netip.Addr
	onRead func()
	// onStuck is told a write timed out: the client does not read.
	onStuck func()
	// writeTimeout cuts a client that does not read: a write that cannot
	// complete in this time means its socket buffers are full.
	writeTimeout time.Duration

	wmu    sync.Mutex // serializes writes and Close
	closed bool
	// ackedAtClose is Acked as the connection closed (-1: unknown).
	ackedAtClose atomic.Int64
	isClosed     atomic.Bool
	stopping     atomic.Bool // Close was called: writes get closeWriteTimeout

	parkState
}

// countingConn counts the bytes written to the socket (after TLS), so they
// can be compared with what the kernel still holds unsent.
type countingConn struct {
	net.Conn
	n atomic.Int64
	// served is the certificate the TLS handshake sent, when it came
	// from tls.Config.GetCertificate (see recordServed).
	served atomic.Pointer[tls.Certificate]
}

func (c *countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.n.Add(int64(n))
	return n, err
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

// newTCPTransport wraps a plain TCP connection (TLS comes with StartTLS,
// also for direct TLS).
func newTCPTransport(c net.Conn, lim xmlstream.Limits, writeTimeout time.Duration) *tcpTransport {
	cw := &countingConn{Conn: c}
	t := &tcpTransport{raw: c, cw: cw, conn: cw, lim: lim, writeTimeout: writeTimeout}
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
	t.conn.SetWriteDeadline(time.Now().Add(t.writeTimeout))
	if t.stopping.Load() {
		t.conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	}
	_, err := t.conn.Write(b)
	putBuf(b)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) && !t.stopping.Load() && t.onStuck != nil {
		t.onStuck()
	}
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

// Close never waits long, whoever calls it: a write blocked on a client
// that does not read is cut short (flush and Close share stopping, so the
// write in progress or the next one gets closeWriteTimeout). What the
// kernel still holds unsent is recorded for Acked, and discarded with a
// reset rather than sent after the session's messages have gone to the
// offline store.
func (t *tcpTransport) Close(se *stanza.StreamError) {
	t.stopping.Store(true)
	t.conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	msgEnd := t.cw.n.Load() // the session's bytes end here
	var b []byte
	if se != nil {
		b = appendTopLevel(b, se.Element())
	}
	b = append(b, "</stream:stream>"...)
	t.conn.SetWriteDeadline(time.Now().Add(closeWriteTimeout))
	_, err := t.conn.Write(b)
	// Half-close lets the client read our error before the socket goes.
	if tc, ok := t.conn.(*tls.Conn); ok && err == nil {
		tc.CloseWrite()
	}
	acked, ok := t.Acked()
	for wait := time.Millisecond; ok && err == nil && acked < msgEnd && wait < 64*time.Millisecond; wait *= 2 {
		time.Sleep(wait) // a reading client acknowledges within a round trip
		acked, ok = t.Acked()
	}
	switch {
	case !ok:
		acked = -1
	case acked < msgEnd:
		// Stanzas the client has not received go to the offline store:
		// a reset discards them here rather than deliver them twice.
		resetOnClose(t.raw)
	}
	t.ackedAtClose.Store(acked)
	t.isClosed.Store(true)
	t.conn.Close()
	t.wakeClosed() // a parked stream wakes, reads the error and ends
}

// Written implements session.Progress.
func (t *tcpTransport) Written() int64 { return t.cw.n.Load() }

// Acked implements session.Progress: the bytes written less those the
// kernel still holds unsent or unacknowledged.
func (t *tcpTransport) Acked() (int64, bool) {
	if t.isClosed.Load() {
		n := t.ackedAtClose.Load()
		return n, n >= 0
	}
	unsent, ok := sendQueue(t.raw)
	if !ok {
		return 0, false
	}
	return t.cw.n.Load() - int64(unsent), true
}

func (t *tcpTransport) StartTLS(cfg *tls.Config) error {
	if t.secure {
		return errors.New("c2s: TLS already active")
	}
	tc := tls.Server(t.cw, cfg)
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
