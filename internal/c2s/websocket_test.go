package c2s

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"bluetick/internal/xmlstream"
)

// wsClient drives the RFC 7395 endpoint with SCRAM-SHA-256 (PLAIN is not
// offered without TLS).
type wsClient struct {
	t *testing.T
	c *websocket.Conn
}

func (w *wsClient) send(s string) {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		w.t.Fatal(err)
	}
}

func (w *wsClient) next() *xmlstream.Element {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, data, err := w.c.Read(ctx)
		if err != nil {
			w.t.Fatal(err)
		}
		el, err := xmlstream.Parse(data, xmlstream.Limits{})
		if err != nil {
			w.t.Fatalf("frame %q: %v", data, err)
		}
		if el.Name == "r" && el.Space == nsSM {
			continue
		}
		return el
	}
}

func (w *wsClient) open() *xmlstream.Element {
	w.send("<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>")
	if el := w.next(); el.Name != "open" || el.Space != xmlstream.NSFraming {
		w.t.Fatalf("want <open/>, got %v", el)
	}
	return w.next()
}

func hmac256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// scramLogin runs SCRAM-SHA-256 as a client (RFC 5802 §3).
func (w *wsClient) scramLogin(user, pass string) {
	w.t.Helper()
	scramOver(w.t, w.send, w.next, user, pass)
}

// scramOver runs SCRAM-SHA-256 over any framing's send and next.
func scramOver(t testing.TB, send func(string), next func() *xmlstream.Element, user, pass string) {
	t.Helper()
	w := struct {
		t    testing.TB
		send func(string)
		next func() *xmlstream.Element
	}{t, send, next}
	nb := make([]byte, 18)
	rand.Read(nb)
	cnonce := base64.RawStdEncoding.EncodeToString(nb)
	bare := "n=" + user + ",r=" + cnonce
	w.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" + base64.StdEncoding.EncodeToString([]byte("n,,"+bare)) + "</auth>")
	ch := w.next()
	sf, _ := base64.StdEncoding.DecodeString(ch.Text())
	var nonce, salt string
	var iter int
	for _, f := range strings.Split(string(sf), ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt = f[2:]
		case strings.HasPrefix(f, "i="):
			iter, _ = strconv.Atoi(f[2:])
		}
	}
	saltB, _ := base64.StdEncoding.DecodeString(salt)
	salted := saltedPassword(pass, saltB, iter)
	ck := hmac256(salted, []byte("Client Key"))
	stored := sha256.Sum256(ck)
	final := "c=biws,r=" + nonce
	sig := hmac256(stored[:], []byte(bare+","+string(sf)+","+final))
	proof := make([]byte, len(ck))
	for i := range ck {
		proof[i] = ck[i] ^ sig[i]
	}
	w.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString([]byte(final+",p="+base64.StdEncoding.EncodeToString(proof))) + "</response>")
	if el := w.next(); el.Name != "success" {
		w.t.Fatalf("SCRAM over WebSocket: %v", el)
	}
}

func TestWebSocketLoginAndChat(t *testing.T) {
	srv := startServer(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.svc.WebSocketHandler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/xmpp-websocket", &websocket.DialOptions{Subprotocols: []string{"xmpp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ws := &wsClient{t: t, c: c}
	f := ws.open()
	if f.Child(nsTLS, "starttls") != nil {
		t.Error("STARTTLS offered over WebSocket")
	}
	ws.scramLogin("alice", "pw")
	ws.open()
	ws.send("<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>web</resource></bind></iq>")
	if el := ws.next(); el.Child(nsBind, "bind").ChildText(nsBind, "jid") != "alice@localhost/web" {
		t.Fatalf("bind: %v", el)
	}

	bob := dial(t, srv.addr)
	bob.login("bob", "phone")
	bob.presence()
	bob.expect("presence")
	ws.send("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='w1'><body>from the browser</body></message>")
	if m := bob.expect("message"); m.Attr("from") != "alice@localhost/web" || m.ChildText("", "body") != "from the browser" {
		t.Fatalf("bob got %v", m)
	}
	bob.send("<message to='alice@localhost/web' type='chat' id='w2'><body>hi browser</body></message>")
	m := ws.next()
	if m.Name != "message" || m.Space != xmlstream.NSClient || m.Attr("id") != "w2" {
		t.Fatalf("ws got %v", m)
	}
	ws.send("<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>")
	if el := ws.next(); el.Name != "close" {
		t.Fatalf("want <close/> answer, got %v", el)
	}
}

// saltedPasswords caches PBKDF2 results, as real clients do: a driver
// logging thousands of users in with one password pays it once per salt.
var saltedPasswords sync.Map

func saltedPassword(pass string, salt []byte, iter int) []byte {
	key := pass + "\x00" + string(salt) + "\x00" + strconv.Itoa(iter)
	if v, ok := saltedPasswords.Load(key); ok {
		return v.([]byte)
	}
	salted, _ := pbkdf2.Key(sha256.New, pass, salt, iter, 32)
	saltedPasswords.Store(key, salted)
	return salted
}
