package c2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/certs"
	"bluetick/internal/config"
	"bluetick/internal/server"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// testServer runs a c2s service on a loopback port over a fresh SQLite
// store, with users alice, bob and carol (password "pw").
type testServer struct {
	addr string
	svc  *Service
	im   *server.Server
}

func startServer(t *testing.T, mod func(*config.Config)) *testServer {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Limits.FailedAuthDelay.Duration = time.Millisecond
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob", "carol"} {
		creds, err := auth.NewCredentials("pw", 4096)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.CreateUser(context.Background(), u, creds); err != nil {
			t.Fatal(err)
		}
	}
	tlsConf, err := certs.Load("", "", dir, cfg.Domain)
	if err != nil {
		t.Fatal(err)
	}
	lvl := slog.LevelError
	if os.Getenv("BLUETICK_TEST_LOG") != "" {
		lvl = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
	im := server.New(cfg, st, log)
	svc := New(cfg, im, tlsConf, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.ServeTCP(ln, false)
	t.Cleanup(func() { ln.Close() })
	return &testServer{addr: ln.Addr().String(), svc: svc, im: im}
}

// client is a minimal raw XMPP client for driving the server in tests: it
// speaks STARTTLS and PLAIN and exposes the element stream.
type client struct {
	t    *testing.T
	conn net.Conn
	dec  *xmlstream.Decoder
	jid  string
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{t: t, conn: c}
	cl.dec = xmlstream.NewDecoder(c, xmlstream.Limits{MaxElementBytes: 1 << 20})
	return cl
}

func (c *client) send(s string) {
	c.t.Helper()
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.conn, s); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

func (c *client) open() *xmlstream.Element {
	c.t.Helper()
	c.dec.Reset(c.conn) // every stream starts a new document
	c.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>")
	ev := c.event()
	if ev.Kind != xmlstream.StreamStart {
		c.t.Fatalf("expected stream header, got %v", ev.Kind)
	}
	return c.next() // features
}

func (c *client) event() xmlstream.Event {
	c.t.Helper()
	c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	ev, err := c.dec.Next()
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return ev
}

// next returns the next element, skipping SM ack requests unless asked.
func (c *client) next() *xmlstream.Element {
	c.t.Helper()
	for {
		ev := c.event()
		if ev.Kind != xmlstream.ElementEvent {
			c.t.Fatalf("expected element, got event %v", ev.Kind)
		}
		if ev.Elem.Space == nsSM && ev.Elem.Name == "r" {
			continue
		}
		return ev.Elem
	}
}

// expect reads until an element named name arrives (skipping presence
// and roster noise) and returns it.
func (c *client) expect(name string) *xmlstream.Element {
	c.t.Helper()
	for i := 0; i < 50; i++ {
		el := c.next()
		if el.Name == name {
			return el
		}
	}
	c.t.Fatalf("no <%s/> in 50 elements", name)
	return nil
}

// login does STARTTLS, PLAIN and binds resource res.
func (c *client) login(user, res string) {
	c.t.Helper()
	c.auth(user)
	c.send(fmt.Sprintf("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>", res))
	el := c.expect("iq")
	c.jid = el.Child(nsBind, "bind").ChildText(nsBind, "jid")
	if !strings.HasPrefix(c.jid, user+"@localhost/") {
		c.t.Fatalf("bound %q", c.jid)
	}
}

// auth does STARTTLS and PLAIN and reopens the stream.
func (c *client) auth(user string) {
	c.t.Helper()
	f := c.open()
	if f.Child(nsTLS, "starttls") == nil {
		c.t.Fatalf("no starttls offered: %v", f)
	}
	c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if el := c.next(); el.Name != "proceed" {
		c.t.Fatalf("starttls: %v", el)
	}
	tc := tls.Client(c.conn, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	if err := tc.Handshake(); err != nil {
		c.t.Fatal(err)
	}
	c.conn = tc
	c.dec = xmlstream.NewDecoder(tc, xmlstream.Limits{MaxElementBytes: 1 << 20})
	c.open()
	c.send(fmt.Sprintf("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00pw"))))
	if el := c.next(); el.Name != "success" {
		c.t.Fatalf("auth: %v", el)
	}
	f = c.open()
	if f.Child(nsBind, "bind") == nil || f.Child(nsSM, "sm") == nil {
		c.t.Fatalf("post-auth features: %v", f)
	}
}

func (c *client) presence() {
	c.send("<presence/>")
}
