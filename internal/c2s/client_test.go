package c2s

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/certs"
	"bluetick/internal/config"
	"bluetick/internal/fast"
	"bluetick/internal/server"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// testServer runs a c2s service on a loopback port over a fresh SQLite
// store, with users alice, bob and carol (password "pw").
type testServer struct {
	addr string
	svc  *Service
	im   *server.Server
}

func startServer(t testing.TB, mod func(*config.Config)) *testServer {
	t.Helper()
	return startServerWith(t, mod, nil)
}

// startServerWith is startServer with the store wrapped by wrap (nil: as
// is), for tests that watch what the server asks of it.
func startServerWith(t testing.TB, mod func(*config.Config), wrap func(store.Store) store.Store) *testServer {
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
	var ss store.Store = st
	if wrap != nil {
		ss = wrap(st)
	}
	im := server.New(cfg, ss, log)
	if cfg.DurableDelivery() {
		if err := im.Offline.UseLog(context.Background(), filepath.Join(dir, "journal")); err != nil {
			t.Fatal(err)
		}
	}
	svc := New(cfg, im, tlsConf, log)
	svc.EnableFAST(fast.New(fast.Config{Fast: cfg.Fast}, ss, log))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.ServeTCP(ln, false)
	t.Cleanup(func() {
		// As serve does: sessions end, the journal writes, then the
		// store (an earlier cleanup) closes.
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		svc.Shutdown(ctx)
		im.Offline.Close()
	})
	return &testServer{addr: ln.Addr().String(), svc: svc, im: im}
}

// client adapts xmpptest.Client to this package's tests, with users'
// password fixed to "pw".
type client struct {
	*xmpptest.Client
	t *testing.T
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	return &client{Client: xmpptest.Dial(t, addr, "localhost"), t: t}
}

func (c *client) send(s string)                      { c.t.Helper(); c.Send(s) }
func (c *client) open() *xmlstream.Element           { c.t.Helper(); return c.Open() }
func (c *client) next() *xmlstream.Element           { c.t.Helper(); return c.Next() }
func (c *client) expect(n string) *xmlstream.Element { c.t.Helper(); return c.Expect(n) }
func (c *client) auth(user string)                   { c.t.Helper(); c.Auth(user, "pw") }
func (c *client) login(user, res string)             { c.t.Helper(); c.Login(user, "pw", res) }
func (c *client) presence()                          { c.Send("<presence/>") }

// online logs in with stream management (resumable if resume) and initial
// presence, and returns once its own presence came back.
func (c *client) online(user, res string, resume bool) {
	c.t.Helper()
	c.login(user, res)
	if resume {
		c.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	} else {
		c.send("<enable xmlns='urn:xmpp:sm:3'/>")
	}
	c.expect("enabled")
	c.presence()
	c.expect("presence")
}
