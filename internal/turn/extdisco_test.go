package turn

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// im is a server core with alice bound, and TURN registered when dir is set.
type im struct {
	srv  *server.Server
	sess *session.Session
	out  *xmpptest.Sink
}

func newIM(t *testing.T, cfg config.Config, dir *Directory) *im {
	t.Helper()
	cfg.DataDir = t.TempDir()
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(context.Background(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	srv := server.New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if dir != nil {
		dir.Register(srv.Mux())
	}
	s := session.New(server.NewID(), jid.MustParse("alice@localhost/phone"), 1000, srv.Hooks())
	w := &xmpptest.Sink{}
	s.Attach(w)
	t.Cleanup(s.Detach)
	srv.Bound(context.Background(), s)
	return &im{srv: srv, sess: s, out: w}
}

// iq sends an IQ get with payload to 'to' and returns the one answer.
func (m *im) iq(t *testing.T, to string, payload *xmlstream.Element) *xmlstream.Element {
	t.Helper()
	m.srv.Handle(context.Background(), m.sess, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "q1", "to", to).Append(payload))
	for i := 0; i < 100; i++ {
		for _, el := range m.out.Take() {
			if el.Name == "iq" {
				return el
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no iq answer")
	return nil
}

func errCondition(el *xmlstream.Element) string {
	if el.Attr("type") != "error" {
		return ""
	}
	for _, c := range el.Child("", "error").Elements() {
		if c.Space == stanza.NSStanzas {
			return c.Name
		}
	}
	return "?"
}

func hasFeature(q *xmlstream.Element, f string) bool {
	for _, el := range q.Elements() {
		if el.Name == "feature" && el.Attr("var") == f {
			return true
		}
	}
	return false
}

func turnConfig() config.Config {
	cfg := config.Default()
	cfg.TURN.Enabled = true
	cfg.TURN.Listen = "127.0.0.1:0"
	cfg.TURN.RelayMinPort, cfg.TURN.RelayMaxPort = 50000, 59999
	cfg.TURN.AllowLoopbackPeers = true
	return cfg
}

func TestExtDiscoOnlyAdvertisedWhenEnabled(t *testing.T) {
	off := newIM(t, config.Default(), nil)
	q := off.iq(t, "localhost", xmlstream.New(server.NSDiscoInfo, "query"))
	if hasFeature(q.Child(server.NSDiscoInfo, "query"), NSExtDisco) {
		t.Fatal("extdisco advertised with TURN off")
	}
	if c := errCondition(off.iq(t, "localhost", xmlstream.New(NSExtDisco, "services"))); c != "service-unavailable" {
		t.Fatalf("services with TURN off: %q, want service-unavailable", c)
	}
	on := newIM(t, turnConfig(), NewDirectory(turnConfig(), testSecret, startTest(t, true)))
	q = on.iq(t, "localhost", xmlstream.New(server.NSDiscoInfo, "query"))
	if !hasFeature(q.Child(server.NSDiscoInfo, "query"), NSExtDisco) {
		t.Fatalf("extdisco not advertised: %v", q)
	}
}

// TestServicesGiveWorkingCredentials: the XEP-0215 answer lists STUN and
// TURN on UDP and TCP at the built-in server's real address, and the TURN
// credentials in it allocate a relay that carries data to a peer.
func TestServicesGiveWorkingCredentials(t *testing.T) {
	ts := startTest(t, true)
	cfg := turnConfig()
	m := newIM(t, cfg, NewDirectory(cfg, testSecret, ts))
	res := m.iq(t, "localhost", xmlstream.New(NSExtDisco, "services"))
	svcs := res.Child(NSExtDisco, "services")
	if res.Attr("type") != "result" || svcs == nil {
		t.Fatalf("services: %v", res)
	}
	seen := map[string]*xmlstream.Element{}
	for _, s := range svcs.Elements() {
		seen[s.Attr("type")+"/"+s.Attr("transport")] = s
		if s.Attr("host") != "127.0.0.1" {
			t.Errorf("host %q, want 127.0.0.1", s.Attr("host"))
		}
	}
	for _, k := range []string{"stun/udp", "stun/tcp", "turn/udp", "turn/tcp"} {
		if seen[k] == nil {
			t.Fatalf("no %s service in %v", k, svcs)
		}
	}
	if seen["stun/udp"].Attr("username") != "" {
		t.Fatal("STUN service carries credentials")
	}
	peer := echoPeer(t)
	for _, tr := range []string{"udp", "tcp"} {
		s := seen["turn/"+tr]
		want := ts.UDPAddr()
		if tr == "tcp" {
			want = ts.TCPAddr()
		}
		if _, p, _ := net.SplitHostPort(want.String()); s.Attr("port") != p {
			t.Fatalf("turn/%s port %s, want %s", tr, s.Attr("port"), p)
		}
		exp, err := time.Parse(time.RFC3339, s.Attr("expires"))
		if err != nil || exp.Sub(time.Now()) < 23*time.Hour || exp.Sub(time.Now()) > 25*time.Hour || s.Attr("restricted") != "1" {
			t.Fatalf("turn/%s expires=%q restricted=%q", tr, s.Attr("expires"), s.Attr("restricted"))
		}
		if _, user, err := ParseUsername(s.Attr("username")); err != nil || user != "alice@localhost" {
			t.Fatalf("username %q", s.Attr("username"))
		}
		relay, err := client(t, ts, tr, s.Attr("username"), s.Attr("password")).Allocate()
		if err != nil {
			t.Fatalf("allocate with XEP-0215 credentials over %s: %v", tr, err)
		}
		relayRoundTrip(t, relay, peer, 3)
		relay.Close()
	}

	// Filtered by type.
	for typ, n := range map[string]int{"turn": 2, "stun": 2, "ftp": 0} {
		res := m.iq(t, "localhost", xmlstream.New(NSExtDisco, "services", "type", typ))
		svcs := res.Child(NSExtDisco, "services")
		if svcs == nil || len(svcs.Elements()) != n || svcs.Attr("type") != typ {
			t.Fatalf("type=%s: %v", typ, res)
		}
		for _, s := range svcs.Elements() {
			if s.Attr("type") != typ {
				t.Fatalf("type=%s gave %v", typ, s)
			}
		}
	}
}

func TestCredentialsRequest(t *testing.T) {
	cfg := turnConfig()
	cfg.TURN.Listen = "127.0.0.1:3478" // not started: only the directory is tested
	m := newIM(t, cfg, NewDirectory(cfg, testSecret, nil))
	cred := func(attrs ...string) *xmlstream.Element {
		return xmlstream.New(NSExtDisco, "credentials").Append(xmlstream.New(NSExtDisco, "service", attrs...))
	}
	res := m.iq(t, "localhost", cred("host", "127.0.0.1", "type", "turn"))
	c := res.Child(NSExtDisco, "credentials")
	if c == nil || len(c.Elements()) != 2 {
		t.Fatalf("credentials: %v", res)
	}
	for _, s := range c.Elements() {
		if pw, err := Check(testSecret, s.Attr("username"), time.Now()); err != nil || pw != s.Attr("password") {
			t.Fatalf("credentials do not check: %v (%v)", s, err)
		}
	}
	res = m.iq(t, "localhost", cred("host", "127.0.0.1", "type", "turn", "port", "3478"))
	if c := res.Child(NSExtDisco, "credentials"); c == nil || len(c.Elements()) != 2 {
		t.Fatalf("credentials with port: %v", res)
	}
	bad := []struct {
		payload *xmlstream.Element
		to      string
		want    string
	}{
		{xmlstream.New(NSExtDisco, "credentials"), "localhost", "bad-request"},
		{cred("type", "turn"), "localhost", "bad-request"},
		{cred("host", "127.0.0.1"), "localhost", "bad-request"},
		{cred("host", "127.0.0.1", "type", "turn", "port", "x"), "localhost", "bad-request"},
		{cred("host", "127.0.0.1", "type", "turn", "port", "99999"), "localhost", "bad-request"},
		{cred("host", "127.0.0.1", "type", "turn", "port", "5349"), "localhost", "item-not-found"},
		{cred("host", "turn.elsewhere.example", "type", "turn"), "localhost", "item-not-found"},
		{cred("host", "127.0.0.1", "type", "stun"), "localhost", "item-not-found"},
		{cred("host", "127.0.0.1", "type", "turn"), "bob@localhost", "service-unavailable"},
		{xmlstream.New(NSExtDisco, "services"), "bob@localhost", "service-unavailable"},
	}
	for i, b := range bad {
		if got := errCondition(m.iq(t, b.to, b.payload)); got != b.want {
			t.Errorf("case %d (%v to %s): %q, want %q", i, b.payload, b.to, got, b.want)
		}
	}
	// A set is not a way to push services to the server.
	m.srv.Handle(context.Background(), m.sess, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "s1", "to", "localhost").Append(xmlstream.New(NSExtDisco, "services")))
	time.Sleep(20 * time.Millisecond)
	got := m.out.Take()
	if len(got) != 1 || errCondition(got[0]) != "service-unavailable" {
		t.Fatalf("iq set services: %v", got)
	}
}

func TestDirectoryExternalMode(t *testing.T) {
	cfg := config.Default()
	cfg.TURN.Enabled, cfg.TURN.External = true, true
	cfg.TURN.Host, cfg.TURN.Secret = "turn.example.com", "coturn-static-auth-secret"
	cfg.TURN.Transports = []string{"udp"}
	d := NewDirectory(cfg, cfg.TURN.Secret, nil)
	if d.host != "turn.example.com" || len(d.endpoints) != 1 || d.endpoints[0] != (endpoint{"udp", 3478}) {
		t.Fatalf("external directory %+v", d)
	}
	m := newIM(t, cfg, d)
	svcs := m.iq(t, "localhost", xmlstream.New(NSExtDisco, "services", "type", "turn")).Child(NSExtDisco, "services")
	if svcs == nil || len(svcs.Elements()) != 1 {
		t.Fatalf("services %v", svcs)
	}
	s := svcs.Elements()[0]
	if s.Attr("host") != "turn.example.com" || s.Attr("port") != strconv.Itoa(3478) || s.Attr("password") != Password(cfg.TURN.Secret, s.Attr("username")) {
		t.Fatalf("external turn service %v", s)
	}
}
