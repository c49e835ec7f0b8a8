package component

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

const secret = "sixteen-chars-or-more"

type env struct {
	im    *server.Server
	addr  string
	alice *session.Session
	sink  *xmpptest.Sink
}

func start(t testing.TB) *env {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Components = []config.Component{{Domain: "bot.localhost", Secret: secret}}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateUser(context.Background(), "alice", nil); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	im := server.New(cfg, st, log)
	svc := New(cfg, im, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go svc.Serve(ln)
	s := session.New(server.NewID(), jid.MustParse("alice@localhost/pc"), 1000, im.Hooks())
	w := &xmpptest.Sink{}
	s.Attach(w)
	im.Bound(context.Background(), s)
	im.Handle(context.Background(), s, xmlstream.New(xmlstream.NSClient, "presence"))
	return &env{im: im, addr: ln.Addr().String(), alice: s, sink: w}
}

func (e *env) aliceSends(t *testing.T, raw string) {
	t.Helper()
	el, err := xmlstream.Parse([]byte(raw), xmlstream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	e.im.Handle(context.Background(), e.alice, el)
}

// comp is a raw component connection.
type comp struct {
	t   *testing.T
	c   net.Conn
	dec *xmlstream.Decoder
}

// dial opens a component stream for domain and answers the handshake with
// secret; it returns the server's answer to the handshake.
func dial(t *testing.T, addr, domain, sec string) (*comp, *xmlstream.Element) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "<stream:stream xmlns='jabber:component:accept' xmlns:stream='http://etherx.jabber.org/streams' to='%s'>", domain)
	k := &comp{t: t, c: c, dec: xmlstream.NewDecoder(c, xmlstream.Limits{})}
	ev, err := k.dec.Next()
	if err != nil || ev.Kind != xmlstream.StreamStart || ev.DefaultNS != NS {
		t.Fatalf("stream header: %v %v", ev, err)
	}
	fmt.Fprintf(c, "<handshake>%s</handshake>", handshakeDigest(ev.Elem.Attr("id"), sec))
	return k, k.next()
}

func (k *comp) next() *xmlstream.Element {
	k.t.Helper()
	ev, err := k.dec.Next()
	if err != nil {
		k.t.Fatalf("component read: %v", err)
	}
	return ev.Elem
}

func TestComponentExchangesWithUsers(t *testing.T) {
	e := start(t)
	// Not connected yet: the user learns it at once.
	e.aliceSends(t, "<message xmlns='jabber:client' to='echo@bot.localhost' id='m0'><body>anyone?</body></message>")
	e.sink.WaitFor(t, "service-unavailable while the component is away", func(el *xmlstream.Element) bool {
		return el.Attr("id") == "m0" && el.Attr("type") == "error" && strings.Contains(el.String(), "service-unavailable")
	})

	k, hs := dial(t, e.addr, "bot.localhost", secret)
	if hs.Name != "handshake" || hs.Space != NS {
		t.Fatalf("handshake answer: %v", hs)
	}
	e.aliceSends(t, "<message xmlns='jabber:client' to='echo@bot.localhost' type='chat' id='m1'><body>hi bot</body></message>")
	m := k.next()
	if m.Name != "message" || m.Space != NS || m.Attr("from") != "alice@localhost/pc" || m.ChildText(NS, "body") != "hi bot" {
		t.Fatalf("component got %v", m)
	}
	fmt.Fprint(k.c, "<message from='echo@bot.localhost' to='alice@localhost' type='chat' id='r1'><body>hi alice</body></message>")
	r := e.sink.WaitFor(t, "the component's reply", func(el *xmlstream.Element) bool { return el.Attr("id") == "r1" })
	if r.Attr("from") != "echo@bot.localhost" || r.ChildText(xmlstream.NSClient, "body") != "hi alice" {
		t.Fatalf("alice got %v", r)
	}
	// To a user who does not exist: bounced to the component.
	fmt.Fprint(k.c, "<iq from='bot.localhost' to='nobody@localhost/x' type='get' id='q1'><ping xmlns='urn:xmpp:ping'/></iq>")
	if b := k.next(); b.Attr("id") != "q1" || b.Attr("type") != "error" {
		t.Fatalf("bounce: %v", b)
	}
	// Spoofing another domain ends the stream.
	fmt.Fprint(k.c, "<message from='mallory@localhost' to='alice@localhost'><body>x</body></message>")
	if se := k.next(); se.Name != "error" || se.Child("urn:ietf:params:xml:ns:xmpp-streams", "invalid-from") == nil {
		t.Fatalf("spoofed from: %v", se)
	}
}

func TestComponentAuthentication(t *testing.T) {
	e := start(t)
	_, hs := dial(t, e.addr, "bot.localhost", "wrong secret, long enough")
	if hs.Name != "error" || hs.Child("urn:ietf:params:xml:ns:xmpp-streams", "not-authorized") == nil {
		t.Fatalf("wrong secret: %v", hs)
	}
	_, hs = dial(t, e.addr, "other.localhost", secret)
	if hs.Name != "error" || hs.Child("urn:ietf:params:xml:ns:xmpp-streams", "host-unknown") == nil {
		t.Fatalf("unknown domain: %v", hs)
	}
	// A second connection replaces the first, which is told so.
	first, _ := dial(t, e.addr, "bot.localhost", secret)
	dial(t, e.addr, "bot.localhost", secret)
	if se := first.next(); se.Name != "error" || se.Child("urn:ietf:params:xml:ns:xmpp-streams", "conflict") == nil {
		t.Fatalf("replaced connection: %v", se)
	}
}

func FuzzComponentStream(f *testing.F) {
	f.Add([]byte("<message from='a@bot.localhost' to='alice@localhost'><body>x</body></message>"))
	f.Add([]byte("<iq from='bot.localhost' to='localhost' type='get' id='1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>"))
	f.Add([]byte("<presence from='bot.localhost' to='alice@localhost'/>"))
	f.Add([]byte("<foo/>"))
	e := start(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		el, err := xmlstream.Parse(data, xmlstream.Limits{})
		if err != nil {
			return
		}
		ep := &endpoint{svc: &Service{im: e.im, log: slog.New(slog.NewTextHandler(io.Discard, nil))}, domain: "bot.localhost"}
		c := &conn{ep: ep, nc: discardConn{}}
		ep.svc.route(c, el) // must not panic
	})
}

// discardConn is a net.Conn that swallows writes.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error)      { return len(b), nil }
func (discardConn) SetWriteDeadline(time.Time) error { return nil }
