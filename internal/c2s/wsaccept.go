package c2s

import (
	"crypto/sha1"
	"encoding/base64"
	"net"
	"net/http"
	"strings"
	"time"
)

// wsGUID is the constant of the opening handshake (RFC 6455 §1.3).
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// WebSocketHandler serves RFC 7395 at the path it is mounted on.
func (s *Service) WebSocketHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.admit(r.RemoteAddr) {
			http.Error(w, "too many connections", http.StatusServiceUnavailable)
			return
		}
		c, early, proto, ok := wsAccept(w, r)
		if !ok {
			return // wsAccept has answered the HTTP request
		}
		s.active.Add(1)
		t := newWSTransport(c, r.RemoteAddr, s.lim, s.cfg.Limits.WriteTimeout.Duration)
		t.preload(early)
		if proto != "xmpp" {
			// Browsers show the Close frame's reason, not an HTTP status.
			t.end.Store(&wsEnd{code: wsClosePolicy, reason: "the xmpp subprotocol is required (RFC 7395 §3.2)"})
			t.Close(nil)
			s.active.Add(-1)
			return
		}
		st := newStream(s, t)
		t.onRead = st.touch
		t.onStuck = st.stuck
		st.done = func() { s.active.Add(-1) }
		// The handler's goroutine goes on as the stream's until it parks;
		// the HTTP server forgot the connection when it was hijacked.
		st.run()
	})
}

// wsAccept runs the server's opening handshake (RFC 6455 §4.2) and takes
// the connection from the HTTP server. It accepts the xmpp subprotocol
// (RFC 7395 §3.1) and no extension. early is what the client sent after
// its request that the HTTP server had read already.
func wsAccept(w http.ResponseWriter, r *http.Request) (c net.Conn, early []byte, proto string, ok bool) {
	h := w.Header()
	switch {
	case r.Method != http.MethodGet:
		h.Set("Allow", "GET")
		http.Error(w, "XMPP over WebSocket (RFC 7395): open a WebSocket here", http.StatusMethodNotAllowed)
		return nil, nil, "", false
	case !r.ProtoAtLeast(1, 1) || !hasToken(r.Header, "Connection", "upgrade") || !hasToken(r.Header, "Upgrade", "websocket"):
		h.Set("Upgrade", "websocket")
		http.Error(w, "XMPP over WebSocket (RFC 7395): this endpoint needs a WebSocket upgrade (HTTP/1.1, Connection: Upgrade, Upgrade: websocket)", http.StatusUpgradeRequired)
		return nil, nil, "", false
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		h.Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported Sec-WebSocket-Version: 13 is required", http.StatusUpgradeRequired)
		return nil, nil, "", false
	}
	key := r.Header.Get("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(key); err != nil || len(k) != 16 {
		http.Error(w, "Sec-WebSocket-Key must be 16 bytes in base64", http.StatusBadRequest)
		return nil, nil, "", false
	}
	if hasToken(r.Header, "Sec-WebSocket-Protocol", "xmpp") {
		proto = "xmpp"
	}
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "WebSocket is not available on this connection (HTTP/2?): use HTTP/1.1", http.StatusInternalServerError)
		return nil, nil, "", false
	}
	if n := brw.Reader.Buffered(); n > 0 {
		p, _ := brw.Reader.Peek(n)
		early = append([]byte(nil), p...)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n"
	if proto != "" {
		resp += "Sec-WebSocket-Protocol: " + proto + "\r\n"
	}
	// The HTTP server's deadlines were for the request.
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte(resp + "\r\n")); err != nil {
		c.Close()
		return nil, nil, "", false
	}
	c.SetDeadline(time.Time{})
	return c, early, proto, true
}

// hasToken reports whether the comma-separated header name lists token
// (case-insensitively, as RFC 6455 §4.2.1 compares them).
func hasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
