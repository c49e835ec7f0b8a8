package loadgen

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// XMPP over WebSocket (RFC 7395) for the client: the same client code runs
// over it through wsConn, which turns the byte stream the client writes
// and reads into one WebSocket text message per element and back. So every
// scenario can run over WebSocket (--transport websocket); TLS is the
// HTTPS connection's (wss://), never STARTTLS.

const nsFraming = "urn:ietf:params:xml:ns:xmpp-framing"

// WebSocketURL is the endpoint opt.Server names: a ws:// or wss:// URL
// as given, or host:port with Bluetick's path /xmpp-websocket (wss unless
// TLS is "none").
func (o *Options) WebSocketURL() string {
	if strings.Contains(o.Server, "://") {
		return o.Server
	}
	scheme := "wss"
	if o.TLS == "none" {
		scheme = "ws"
	}
	return scheme + "://" + o.Server + "/xmpp-websocket"
}

// dialWebSocket opens the WebSocket (TCP from the next source address, TLS
// for wss with the same curves as the TCP transport) with the "xmpp"
// subprotocol. raw is the TCP connection, for deadlines and drops.
func dialWebSocket(ctx context.Context, opt *Options) (*wsConn, error) {
	u := opt.WebSocketURL()
	var raw net.Conn
	tr := &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := opt.dialer().DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			raw = c
			return countConn{c, opt}, nil
		},
		TLSClientConfig:    &tls.Config{ServerName: opt.Domain, InsecureSkipVerify: true, CurvePreferences: opt.Curves, NextProtos: []string{"http/1.1"}},
		TLSNextProto:       map[string]func(string, *tls.Conn) http.RoundTripper{}, // HTTP/1.1 only: the upgrade needs it
		DisableKeepAlives:  true,
		DisableCompression: true,
	}
	dctx, cancel := context.WithTimeout(ctx, opt.timeout())
	defer cancel()
	c, resp, err := websocket.Dial(dctx, u, &websocket.DialOptions{
		HTTPClient:   &http.Client{Transport: tr},
		Subprotocols: []string{"xmpp"},
	})
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%s: HTTP %s", u, resp.Status)
		}
		return nil, err
	}
	if c.Subprotocol() != "xmpp" {
		c.CloseNow()
		return nil, fmt.Errorf("%s: the server did not accept the xmpp subprotocol", u)
	}
	c.SetReadLimit(1 << 20)
	w := &wsConn{c: c, raw: raw}
	if resp != nil && resp.TLS != nil {
		w.tls = resp.TLS
	}
	return w, nil
}

// wsConn is a net.Conn over one WebSocket: each Write is one message
// (the client flushes one element at a time), a stream header written is
// sent as <open/> and the stream's end tag as <close/>; on reading, the
// server's <open/> becomes a stream header and its <close/> the end tag,
// so the client's stream reader works unchanged.
type wsConn struct {
	c       *websocket.Conn
	raw     net.Conn
	tls     *tls.ConnectionState
	pending []byte
}

var streamHeaderIn = []byte("<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>")

func (w *wsConn) Read(p []byte) (int, error) {
	for len(w.pending) == 0 {
		typ, data, err := w.c.Read(context.Background())
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return 0, errStreamEnd
			}
			return 0, err
		}
		if typ != websocket.MessageText {
			continue
		}
		w.pending = translateIn(data)
	}
	n := copy(p, w.pending)
	w.pending = w.pending[n:]
	return n, nil
}

// translateIn maps the framing elements to the stream they stand for.
func translateIn(data []byte) []byte {
	t := bytes.TrimSpace(data)
	if !bytes.Contains(t, []byte(nsFraming)) {
		return data
	}
	switch {
	case bytes.HasPrefix(t, []byte("<open")):
		return streamHeaderIn
	case bytes.HasPrefix(t, []byte("<close")):
		return []byte("</stream:stream>")
	}
	return data
}

func (w *wsConn) Write(p []byte) (int, error) { return w.WriteString(string(p)) }

// WriteString sends s as one message (bufio.Writer hands a large string
// from an empty buffer straight here, so it is not split).
func (w *wsConn) WriteString(s string) (int, error) {
	for _, m := range translateOut(s) {
		if err := w.c.Write(context.Background(), websocket.MessageText, []byte(m)); err != nil {
			return 0, err
		}
	}
	return len(s), nil
}

// translateOut turns a stream header (and anything sent with it) into
// <open/> (and the rest as its own message), and the end tag into <close/>.
func translateOut(s string) []string {
	if s == "</stream:stream>" {
		return []string{"<close xmlns='" + nsFraming + "'/>"}
	}
	rest, ok := strings.CutPrefix(s, "<?xml version='1.0'?>")
	if !ok || !strings.HasPrefix(rest, "<stream:stream ") {
		return []string{qualify(s)}
	}
	end := strings.IndexByte(rest, '>')
	if end < 0 {
		return []string{s}
	}
	open := "<open xmlns='" + nsFraming + "'"
	for _, a := range []string{"to", "from", "version", "xml:lang"} {
		if v, ok := attrOf(rest[:end], a); ok {
			open += " " + a + "='" + v + "'"
		}
	}
	out := []string{open + "/>"}
	if early := rest[end+1:]; early != "" {
		out = append(out, early)
	}
	return out
}

// qualify puts a stanza in jabber:client: over WebSocket no stream root
// declares it (RFC 7395 §3.3.3), and Prosody refuses a stanza without it.
func qualify(s string) string {
	for _, name := range []string{"<iq", "<message", "<presence"} {
		rest, ok := strings.CutPrefix(s, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '>' && rest[0] != '/') {
			continue
		}
		end := strings.IndexByte(rest, '>')
		if end >= 0 && strings.Contains(rest[:end], "xmlns=") {
			return s
		}
		return name + " xmlns='jabber:client'" + rest
	}
	return s
}

// attrOf finds name='value' in a start tag the client wrote itself.
func attrOf(tag, name string) (string, bool) {
	i := strings.Index(tag, " "+name+"='")
	if i < 0 {
		return "", false
	}
	v := tag[i+len(name)+3:]
	j := strings.IndexByte(v, '\'')
	if j < 0 {
		return "", false
	}
	return v[:j], true
}

func (w *wsConn) Close() error {
	return w.c.CloseNow()
}

func (w *wsConn) LocalAddr() net.Addr                { return w.raw.LocalAddr() }
func (w *wsConn) RemoteAddr() net.Addr               { return w.raw.RemoteAddr() }
func (w *wsConn) SetDeadline(t time.Time) error      { return w.raw.SetDeadline(t) }
func (w *wsConn) SetReadDeadline(t time.Time) error  { return w.raw.SetReadDeadline(t) }
func (w *wsConn) SetWriteDeadline(t time.Time) error { return w.raw.SetWriteDeadline(t) }
