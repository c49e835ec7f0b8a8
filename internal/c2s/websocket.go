package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/coder/websocket"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// wsTransport is an XMPP stream over WebSocket (RFC 7395): every message is
// one complete element; <open/> and <close/> in the framing namespace
// replace the stream header and end tag.
type wsTransport struct {
	c      *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc
	lim    xmlstream.Limits
	secure bool
	tls    *tls.ConnectionState // of the HTTPS request, for channel binding; nil on plain HTTP
	remote netip.Addr
	onRead func()
	// onStuck is told a write timed out: the client does not read.
	onStuck func()
	// writeTimeout cuts a client that does not read (see tcpTransport).
	writeTimeout time.Duration

	wmu    sync.Mutex
	closed bool
}

func newWSTransport(c *websocket.Conn, r *http.Request, lim xmlstream.Limits, writeTimeout time.Duration) *wsTransport {
	ctx, cancel := context.WithCancel(context.Background())
	t := &wsTransport{c: c, ctx: ctx, cancel: cancel, lim: lim, secure: r.TLS != nil, tls: r.TLS, writeTimeout: writeTimeout}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		t.remote = ap.Addr().Unmap()
	}
	c.SetReadLimit(int64(lim.MaxElementBytes))
	return t
}

func (t *wsTransport) Next() (xmlstream.Event, error) {
	for {
		typ, data, err := t.c.Read(t.ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) && ce.Code == websocket.StatusMessageTooBig {
				return xmlstream.Event{}, xmlstream.ErrTooLarge
			}
			return xmlstream.Event{}, err
		}
		if t.onRead != nil {
			t.onRead()
		}
		if typ != websocket.MessageText {
			return xmlstream.Event{}, &stanza.StreamError{Condition: "bad-format", Text: "XMPP over WebSocket uses text messages"}
		}
		el, err := xmlstream.Parse(data, t.lim)
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

func (t *wsTransport) Restart()           {}
func (t *wsTransport) Secure() bool       { return t.secure }
func (t *wsTransport) CanStartTLS() bool  { return false }
func (t *wsTransport) Remote() netip.Addr { return t.remote }
func (t *wsTransport) Kind() string       { return "websocket" }
func (t *wsTransport) StartTLS(cfg *tls.Config) error {
	return errors.New("c2s: no STARTTLS on WebSocket")
}

func (t *wsTransport) SendHeader(from, id, lang string) error {
	return t.write([]byte("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='" + from + "' id='" + id + "' version='1.0' xml:lang='" + lang + "'/>"))
}

func (t *wsTransport) write(b []byte) error {
	ctx, cancel := context.WithTimeout(t.ctx, t.writeTimeout)
	defer cancel()
	err := t.c.Write(ctx, websocket.MessageText, b)
	if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) && t.onStuck != nil {
		t.onStuck()
	}
	return err
}

// Write sends each element as its own message, as RFC 7395 §3.3.3
// requires.
func (t *wsTransport) Write(els []*xmlstream.Element) error {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	if t.closed {
		return errors.New("c2s: closed")
	}
	var b []byte
	for _, el := range els {
		b = appendFrame(b[:0], el)
		if err := t.write(b); err != nil {
			return err
		}
	}
	return nil
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

func (t *wsTransport) Close(se *stanza.StreamError) {
	if !t.wmu.TryLock() {
		// A write is in progress: it gets closeWriteTimeout to finish;
		// one blocked on a client that does not read is then cut (the
		// connection goes with it) rather than waited for.
		locked := make(chan struct{})
		go func() { t.wmu.Lock(); close(locked) }()
		select {
		case <-locked:
		case <-time.After(closeWriteTimeout):
			t.cancel()
			<-locked
		}
	}
	defer t.wmu.Unlock()
	if t.closed {
		return
	}
	t.closed = true
	if se != nil {
		t.write(appendFrame(nil, se.Element()))
	}
	t.write([]byte("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"))
	go func() {
		// Close waits for the client's close frame; do not hold the
		// caller (possibly a router delivering to someone else).
		t.c.Close(websocket.StatusNormalClosure, "")
		time.Sleep(time.Second)
		t.cancel()
	}()
}

// isWSClosed reports whether err is a WebSocket close.
func isWSClosed(err error) bool { return websocket.CloseStatus(err) != -1 }
