package c2s

import (
	"bufio"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/xmlstream"
)

// rawWS is a WebSocket client written down to the frame, so tests can
// send what browsers send — pings, fragments, Close frames — at any
// moment, split anywhere.
type rawWS struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
	// domain and pass default to the test server's.
	domain, pass string
	jid          string // bound by login
}

func (w *rawWS) boundJID() string { return w.jid }

// dialRawWS opens a WebSocket with the xmpp subprotocol on addr, over TLS
// when tc is not nil.
func dialRawWS(t testing.TB, addr string, tc *tls.Config) *rawWS {
	t.Helper()
	var c net.Conn
	var err error
	if tc != nil {
		c, err = tls.Dial("tcp", addr, tc)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	kb := make([]byte, 16)
	rand.Read(kb)
	key := base64.StdEncoding.EncodeToString(kb)
	io.WriteString(c, "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: "+key+"\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha1.Sum([]byte(key + wsGUID))
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != base64.StdEncoding.EncodeToString(sum[:]) ||
		resp.Header.Get("Sec-WebSocket-Protocol") != "xmpp" {
		t.Fatalf("handshake: %s %v", resp.Status, resp.Header)
	}
	return &rawWS{t: t, c: c, br: br, domain: "localhost", pass: "pw"}
}

func (w *rawWS) write(b []byte) {
	w.t.Helper()
	w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.c.Write(b); err != nil {
		w.t.Fatal(err)
	}
}

func (w *rawWS) frame(fin bool, op byte, p []byte) []byte {
	var key [4]byte
	rand.Read(key[:])
	return clientFrame(fin, op, p, key)
}

func (w *rawWS) send(s string) { w.t.Helper(); w.write(w.frame(true, wsOpText, []byte(s))) }

// read returns the next server frame (the server never fragments).
func (w *rawWS) read() (op byte, payload []byte) {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(w.br, h[:]); err != nil {
		w.t.Fatal(err)
	}
	if h[0]&0x80 == 0 || h[1]&0x80 != 0 {
		w.t.Fatalf("server frame header %x: fragmented or masked", h)
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var x [2]byte
		io.ReadFull(w.br, x[:])
		n = uint64(binary.BigEndian.Uint16(x[:]))
	case 127:
		var x [8]byte
		io.ReadFull(w.br, x[:])
		n = binary.BigEndian.Uint64(x[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(w.br, payload); err != nil {
		w.t.Fatal(err)
	}
	return h[0] & 0x0f, payload
}

// next returns the next element, skipping stream management requests.
func (w *rawWS) next() *xmlstream.Element {
	w.t.Helper()
	for {
		op, p := w.read()
		if op != wsOpText {
			w.t.Fatalf("want a text frame, got opcode %x %q", op, p)
		}
		el, err := xmlstream.Parse(p, xmlstream.Limits{})
		if err != nil {
			w.t.Fatalf("frame %q: %v", p, err)
		}
		if el.Name == "r" && el.Space == nsSM {
			continue
		}
		return el
	}
}

// expectClose reads up to the server's Close frame and returns its code.
func (w *rawWS) expectClose() uint16 {
	w.t.Helper()
	for {
		op, p := w.read()
		if op == wsOpClose {
			if len(p) < 2 {
				return 0
			}
			return binary.BigEndian.Uint16(p)
		}
	}
}

// login authenticates, binds resource res and sends initial presence.
func (w *rawWS) login(user, res string) {
	w.t.Helper()
	open := "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='" + w.domain + "' version='1.0'/>"
	w.send(open)
	w.next()
	w.next()
	scramOver(w.t, w.send, w.next, user, w.pass)
	w.send(open)
	w.next()
	w.next()
	w.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + res + "</resource></bind></iq>")
	el := w.next()
	if el.Child(nsBind, "bind") == nil {
		w.t.Fatalf("bind: %v", el)
	}
	w.jid = el.Child(nsBind, "bind").ChildText(nsBind, "jid")
	w.send("<presence xmlns='jabber:client'/>")
	if el := w.next(); el.Name != "presence" {
		w.t.Fatalf("own presence: %v", el)
	}
}

// startWS serves the WebSocket endpoint of srv on loopback, over TLS
// (as listen.https does) when secure.
func startWS(t *testing.T, srv *testServer, secure bool) (addr string, tc *tls.Config) {
	t.Helper()
	if !srv.svc.park {
		t.Skip("parking needs epoll")
	}
	srv.svc.parkAfter = 50 * time.Millisecond
	hs := httptest.NewUnstartedServer(srv.svc.WebSocketHandler())
	if secure {
		hs.TLS = srv.svc.tls.Clone()
		hs.TLS.NextProtos = []string{"http/1.1"}
		hs.StartTLS()
		tc = insecureTLS(0)
	} else {
		hs.Start()
	}
	t.Cleanup(hs.Close)
	return hs.Listener.Addr().String(), tc
}

// An idle WebSocket session gives its goroutine up, over ws and wss, and
// wakes on input, on a message routed to it (no wake needed: the session
// writer writes), on a ping (answered with its payload), and on a frame
// cut in the middle by the park.
func TestWebSocketParksAndWakes(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := "ws"
		if secure {
			name = "wss"
		}
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, nil)
			addr, tc := startWS(t, srv, secure)
			bob := dial(t, srv.addr)
			bob.login("bob", "phone")
			bob.presence()
			bob.expect("presence")
			ws := dialRawWS(t, addr, tc)
			ws.login("alice", "web")
			waitFor(t, "both parked", func() bool { return srv.svc.Parked() == 2 })

			// Input.
			ws.send("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='w1'><body>from a parked browser</body></message>")
			if m := bob.expect("message"); m.Attr("id") != "w1" || m.Attr("from") != "alice@localhost/web" {
				t.Fatalf("bob got %v", m)
			}
			waitFor(t, "parked again", func() bool { return srv.svc.Parked() == 2 })

			// A message routed to the parked session.
			bob.send("<message to='alice@localhost/web' type='chat' id='b1'><body>to a parked browser</body></message>")
			if m := ws.next(); m.Name != "message" || m.Attr("id") != "b1" {
				t.Fatalf("alice got %v", m)
			}

			// A ping.
			waitFor(t, "parked before the ping", func() bool { return srv.svc.Parked() == 2 })
			ws.write(ws.frame(true, wsOpPing, []byte("are you there")))
			if op, p := ws.read(); op != wsOpPong || string(p) != "are you there" {
				t.Fatalf("ping answered with opcode %x %q", op, p)
			}
			waitFor(t, "parked after the ping", func() bool { return srv.svc.Parked() == 2 })

			// A fragmented message whose header is cut by a park.
			f1 := ws.frame(false, wsOpText, []byte("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='w2'><bo"))
			f2 := ws.frame(true, wsOpCont, []byte("dy>split</body></message>"))
			ws.write(f1)
			ws.write(f2[:3])
			waitFor(t, "parked mid-frame", func() bool { return srv.svc.Parked() == 2 })
			ws.write(f2[3:])
			if m := bob.expect("message"); m.Attr("id") != "w2" || m.ChildText("jabber:client", "body") != "split" {
				t.Fatalf("bob got %v", m)
			}
		})
	}
}

// The client's Close frame wakes a parked session: the server answers
// with the same code, the connection is counted out and the session ends
// (or hibernates, when resumable).
func TestParkedWebSocketClosedByClient(t *testing.T) {
	srv := startServer(t, nil)
	addr, _ := startWS(t, srv, false)
	ws := dialRawWS(t, addr, nil)
	ws.login("alice", "web")
	waitFor(t, "parked", func() bool { return srv.svc.Parked() == 1 })
	ws.write(ws.frame(true, wsOpClose, []byte{0x03, 0xe9})) // 1001 going away
	if code := ws.expectClose(); code != 1001 {
		t.Fatalf("close answered with %d, want the client's 1001", code)
	}
	waitFor(t, "connection counted out", func() bool { return srv.svc.Active() == 0 && srv.svc.Parked() == 0 })
	waitFor(t, "session ended", func() bool { return !srv.im.Router.Online(jid.MustParse("alice@localhost")) })
	// The server closed the TCP connection after its Close frame.
	ws.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := ws.br.ReadByte(); err == nil {
		t.Fatal("connection still open after the closing handshake")
	}
}

// A client that drops the TCP connection of a parked session is noticed
// at once.
func TestParkedWebSocketDropped(t *testing.T) {
	srv := startServer(t, nil)
	addr, _ := startWS(t, srv, true)
	ws := dialRawWS(t, addr, insecureTLS(0))
	ws.login("alice", "web")
	waitFor(t, "parked", func() bool { return srv.svc.Parked() == 1 })
	ws.c.Close()
	waitFor(t, "connection counted out", func() bool { return srv.svc.Active() == 0 && srv.svc.Parked() == 0 })
	waitFor(t, "session ended", func() bool { return !srv.im.Router.Online(jid.MustParse("alice@localhost")) })
}

// The server closing a parked session (here: a new login of the same
// resource replaces it) sends the stream error, <close/> and a Close
// frame, and the parked stream wakes and ends.
func TestParkedWebSocketClosedByServer(t *testing.T) {
	srv := startServer(t, nil)
	addr, _ := startWS(t, srv, false)
	old := dialRawWS(t, addr, nil)
	old.login("alice", "web")
	waitFor(t, "parked", func() bool { return srv.svc.Parked() == 1 })
	repl := dial(t, srv.addr)
	repl.login("alice", "web")
	if e := old.next(); e.Name != "error" || e.Child("urn:ietf:params:xml:ns:xmpp-streams", "conflict") == nil {
		t.Fatalf("old connection got %v, want <conflict/>", e)
	}
	if e := old.next(); e.Name != "close" || e.Space != xmlstream.NSFraming {
		t.Fatalf("want <close/>, got %v", e)
	}
	if code := old.expectClose(); code != wsCloseNormal {
		t.Fatalf("Close frame code %d", code)
	}
	waitFor(t, "old connection counted out", func() bool { return srv.svc.Active() == 1 })
}

// A client breaking RFC 6455 on a parked connection gets a Close frame
// with 1002 and nothing else.
func TestParkedWebSocketProtocolError(t *testing.T) {
	srv := startServer(t, nil)
	addr, _ := startWS(t, srv, false)
	ws := dialRawWS(t, addr, nil)
	ws.login("alice", "web")
	waitFor(t, "parked", func() bool { return srv.svc.Parked() == 1 })
	f := ws.frame(true, wsOpText, []byte("<presence xmlns='jabber:client'/>"))
	f[1] &^= 0x80 // unmasked: the key bytes become payload
	ws.write(f)
	if op, p := ws.read(); op != wsOpClose || binary.BigEndian.Uint16(p) != wsCloseProtocol || !strings.Contains(string(p), "masked") {
		t.Fatalf("got opcode %x %q, want Close 1002", op, p)
	}
	waitFor(t, "connection counted out", func() bool { return srv.svc.Active() == 0 })
}

// Parked WebSocket sessions hold no goroutine: the count does not grow
// with them.
func TestParkedWebSocketsHoldNoGoroutine(t *testing.T) {
	srv := startServer(t, nil)
	addr, _ := startWS(t, srv, true)
	// One first, so the poller and the pools exist before the baseline.
	first := dialRawWS(t, addr, insecureTLS(0))
	first.login("carol", "0")
	waitFor(t, "first parked", func() bool { return srv.svc.Parked() == 1 })
	settled := func() int {
		runtime.GC()
		return runtime.NumGoroutine()
	}
	base := settled()
	const n = 20
	for i := range n {
		user := []string{"alice", "bob", "carol"}[i%3]
		dialRawWS(t, addr, insecureTLS(0)).login(user, "r"+string(rune('a'+i)))
	}
	waitFor(t, "all parked", func() bool { return srv.svc.Parked() == n+1 })
	var extra int
	waitFor(t, "goroutines back to the baseline", func() bool { extra = settled() - base; return extra <= 2 })
	t.Logf("%d parked WebSocket sessions, %d goroutines more than one", n, extra)
}

// A message over limits.max_stanza_bytes, even in fragments split by a
// park, ends the stream with policy-violation and a Close frame 1009
// before the server buffers it.
func TestWebSocketMessageTooBig(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Limits.MaxStanzaBytes = 10000 })
	addr, _ := startWS(t, srv, false)
	ws := dialRawWS(t, addr, nil)
	ws.login("alice", "web")
	waitFor(t, "parked", func() bool { return srv.svc.Parked() == 1 })
	ws.write(ws.frame(false, wsOpText, []byte("<message xmlns='jabber:client'><body>"+strings.Repeat("x", 6000))))
	waitFor(t, "parked mid-message", func() bool { return srv.svc.Parked() == 1 })
	ws.write(ws.frame(true, wsOpCont, []byte(strings.Repeat("x", 5000)+"</body></message>")))
	if e := ws.next(); e.Name != "error" || e.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
		t.Fatalf("got %v, want a policy-violation stream error", e)
	}
	if e := ws.next(); e.Name != "close" {
		t.Fatalf("want <close/>, got %v", e)
	}
	if code := ws.expectClose(); code != wsCloseTooBig {
		t.Fatalf("Close frame code %d, want %d", code, wsCloseTooBig)
	}
	waitFor(t, "connection counted out", func() bool { return srv.svc.Active() == 0 })
}

// Frames sent in the same packet as the upgrade request (read by the HTTP
// server before the hijack) are not lost.
func TestWebSocketFramesWithTheUpgrade(t *testing.T) {
	srv := startServer(t, nil)
	addr, _ := startWS(t, srv, false)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	req := "GET /xmpp-websocket HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, xmpp\r\n\r\n"
	open := clientFrame(true, wsOpText, []byte("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"), [4]byte{7, 7, 7, 7})
	c.Write(append([]byte(req), open...))
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The RFC 6455 §1.3 example key and its answer.
	if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake: %s %v", resp.Status, resp.Header)
	}
	w := &rawWS{t: t, c: c, br: br}
	if el := w.next(); el.Name != "open" {
		t.Fatalf("want <open/>, got %v", el)
	}
}

// Requests that are not WebSocket upgrades get an HTTP error that says
// what is wrong.
func TestWebSocketHandshakeErrors(t *testing.T) {
	srv := startServer(t, nil)
	h := srv.svc.WebSocketHandler()
	for _, c := range []struct {
		method string
		hdr    map[string]string
		code   int
	}{
		{"POST", nil, http.StatusMethodNotAllowed},
		{"GET", nil, http.StatusUpgradeRequired},
		{"GET", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "8", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}, http.StatusUpgradeRequired},
		{"GET", map[string]string{"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "short"}, http.StatusBadRequest},
	} {
		r := httptest.NewRequest(c.method, "/xmpp-websocket", nil)
		for k, v := range c.hdr {
			r.Header.Set(k, v)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.code || w.Body.Len() == 0 {
			t.Errorf("%s %v: %d %q, want %d with a reason", c.method, c.hdr, w.Code, w.Body.String(), c.code)
		}
	}
}
