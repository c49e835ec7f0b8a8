package c2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/auth"
	"bluetick/internal/config"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// countingStore counts the password checks made against one account: every
// SASL exchange that gets as far as checking a password (PLAIN or SCRAM)
// looks up the account's SCRAM-SHA-256 credential exactly once.
type countingStore struct {
	store.Store
	user   string
	checks atomic.Int64
}

func (s *countingStore) Credential(ctx context.Context, user, mechanism string) (store.Credential, error) {
	if user == s.user && mechanism == auth.SCRAMSHA256 {
		s.checks.Add(1)
	}
	return s.Store.Credential(ctx, user, mechanism)
}

// OfflineSeqBase passes on the SQLite store's, which the journal needs.
func (s *countingStore) OfflineSeqBase(ctx context.Context) (int64, error) {
	return s.Store.(interface {
		OfflineSeqBase(context.Context) (int64, error)
	}).OfflineSeqBase(ctx)
}

// dialGuesser connects from the loopback address src and does STARTTLS.
func dialGuesser(addr, src string) (*xmpptest.Guesser, error) {
	return xmpptest.DialGuesser(addr, "localhost", src)
}

// throttleBound is the most password checks the per-account throttle lets
// through from addresses an account never logged in from, within elapsed:
// the free failures, then one after each back-off delay (which double up
// to the cap) that fits in elapsed.
func throttleBound(l config.Limits, elapsed time.Duration) int {
	n := l.AccountLoginFailures
	var waited time.Duration
	for i := 0; ; i++ {
		d := l.AccountLoginBackoffMax.Duration
		if i < 30 {
			d = min(d, l.AccountLoginBackoff.Duration<<i)
		}
		if waited+d > elapsed {
			return n
		}
		waited += d
		n++
	}
}

// dialFrom connects a test client from the loopback address src.
func dialFrom(t *testing.T, addr, src string) *client {
	t.Helper()
	return &client{Client: xmpptest.DialFrom(t, addr, "localhost", src), t: t}
}

// Ten addresses guessing one account's password 300 times get only as many
// password checks as the per-account throttle allows, whatever the per-address
// limits (loopback is exempt from those here), and are refused fast with
// <temporary-auth-failure/>; meanwhile the owner, on an address the account
// logged in from before, logs in at once.
func TestAccountThrottleManyAddresses(t *testing.T) {
	var lim config.Limits
	cs := &countingStore{user: "alice"}
	srv := startServerWith(t, func(c *config.Config) {
		c.Limits.ExemptLoopback = true // per-address caps off: only the account limit can fire
		c.Limits.AccountLoginFailures = 5
		c.Limits.AccountLoginBackoff.Duration = 50 * time.Millisecond
		c.Limits.AccountLoginBackoffMax.Duration = 200 * time.Millisecond
		c.Limits.AccountLoginWindow.Duration = time.Hour
		lim = c.Limits
	}, func(s store.Store) store.Store { cs.Store = s; return cs })

	// The owner's phone has logged in from 127.0.0.1 before.
	owner := dialFrom(t, srv.addr, "127.0.0.1")
	owner.login("alice", "phone")
	owner.Conn.Close()
	ownerChecks := int64(1)

	// 300 guesses in about 1.2 s: 15,000 a minute if nothing slowed them.
	const addrs, perAddr, perConn, pace = 10, 30, 5, 40 * time.Millisecond
	var wrong, throttled atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for a := range addrs {
		src := fmt.Sprintf("127.0.0.%d", a+2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perAddr; {
				g, err := dialGuesser(srv.addr, src)
				if err != nil {
					t.Errorf("%s: %v", src, err)
					return
				}
				for k := 0; k < perConn && n < perAddr; k, n = k+1, n+1 {
					cond, text, err := g.Plain("alice", fmt.Sprintf("guess-%s-%d", src, n))
					switch {
					case err != nil:
						t.Errorf("%s guess %d: %v", src, n, err)
						g.Close()
						return
					case cond == "not-authorized":
						wrong.Add(1)
					case cond == "temporary-auth-failure" && strings.Contains(text, "retry"):
						throttled.Add(1)
					default:
						t.Errorf("%s guess %d answered %s %q", src, n, cond, text)
					}
					time.Sleep(pace)
				}
				g.Close()
			}
		}()
	}

	// Once the throttle is refusing guesses, the owner logs in on another
	// device from the known address, during the attack.
	for i := 0; (throttled.Load() == 0 || wrong.Load() == 0) && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if throttled.Load() == 0 {
		t.Error("no guess was throttled")
	} else {
		laptop := dialFrom(t, srv.addr, "127.0.0.1")
		laptop.login("alice", "laptop")
		ownerChecks++
		// Told of the failures since the phone's login.
		laptop.presence()
		n := noticeCount(t, laptop)
		if checked := cs.checks.Load() - ownerChecks; n < 1 || int64(n) > checked {
			t.Errorf("notice counts %d failures; %d wrong passwords were checked so far", n, checked)
		}
		delivered(t, srv, "alice")
		laptop.Conn.Close()
	}
	wg.Wait()
	elapsed := time.Since(start)

	checks := cs.checks.Load() - ownerChecks
	bound := throttleBound(lim, elapsed)
	t.Logf("%d guesses from %d addresses in %v: %d password checks (bound %d), %d wrong, %d throttled",
		addrs*perAddr, addrs, elapsed.Round(time.Millisecond), checks, bound, wrong.Load(), throttled.Load())
	if checks > int64(bound) {
		t.Errorf("%d password checks for the attacked account in %v; the throttle allows at most %d", checks, elapsed, bound)
	}
	if wrong.Load() != checks || wrong.Load()+throttled.Load() != addrs*perAddr {
		t.Errorf("%d wrong + %d throttled answers for %d guesses and %d checks", wrong.Load(), throttled.Load(), addrs*perAddr, checks)
	}

	// The operator's view: the failures since the laptop's login, the
	// last one from one of the guessing addresses. One more wrong guess
	// once the back-off is over makes sure there is at least one.
	time.Sleep(lim.AccountLoginBackoffMax.Duration + 50*time.Millisecond)
	g, err := dialGuesser(srv.addr, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	if cond, text, err := g.Plain("alice", "one-more"); err != nil || cond != "not-authorized" {
		t.Fatalf("guess after the back-off: %s %q %v", cond, text, err)
	}
	g.Close()
	if err := srv.svc.guard.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	ls, err := srv.im.Store().LoginStats(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if ls.Failed < 1 || ls.LastFailureAddr != "127.0.0.2" || ls.LastSuccessAddr != "127.0.0.1" || len(ls.Known) != 1 || ls.Known[0].Prefix != "127.0.0.1" {
		t.Errorf("operator's view: %+v", ls)
	}
	m := &srv.svc.guard.Metrics
	if n := counter(t, m, "bluetick_auth_throttled_total", "account"); n != float64(throttled.Load()) {
		t.Errorf("bluetick_auth_throttled_total{scope=account} = %v, want %d", n, throttled.Load())
	}
	if n := counter(t, m, "bluetick_auth_throttled_total", "address"); n != 0 {
		t.Errorf("bluetick_auth_throttled_total{scope=address} = %v, want 0 (loopback is exempt)", n)
	}
	if n := counter(t, m, "bluetick_auth_failures_total", ""); n != float64(wrong.Load()+1) {
		t.Errorf("bluetick_auth_failures_total = %v, want %d", n, wrong.Load()+1)
	}

	// The owner's next login is told exactly that count.
	phone := dialFrom(t, srv.addr, "127.0.0.1")
	phone.login("alice", "phone")
	phone.presence()
	if n := noticeCount(t, phone); n != ls.Failed {
		t.Errorf("notice counts %d failures, the store %d", n, ls.Failed)
	}
	delivered(t, srv, "alice")
}

// delivered waits until user's offline messages are gone from the store,
// acknowledged by the client's TCP. (Ending a session in the instant
// between that acknowledgement and the session noticing it deadlocks the
// router on main: Router.Unbind holds the user's lock while TakePending's
// Delivered hook calls Router.Drain, which takes it again.)
func delivered(t *testing.T, srv *testServer, user string) {
	t.Helper()
	for range 500 {
		n, err := srv.im.Store().CountOffline(context.Background(), user)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("offline messages never acknowledged")
}

// noticeCount reads until the server's failed-login notice and returns
// the count it gives.
func noticeCount(t *testing.T, c *client) int {
	t.Helper()
	for range 20 {
		m := c.expect("message")
		if m.Attr("from") != "localhost" {
			continue
		}
		var n int
		body := m.ChildText(xmlstream.NSClient, "body")
		t.Logf("notice: %s", body)
		if _, err := fmt.Sscanf(body, "%d failed login", &n); err != nil {
			t.Fatalf("notice %q: %v", body, err)
		}
		return n
	}
	t.Fatal("no failed-login notice")
	return 0
}

// Once an account is in back-off, every transport refuses attempts from
// addresses it never logged in from, the right password too, at once and
// before any password check, also with the per-address exemption for
// loopback off; the owner's known address still logs in.
func TestAccountThrottleEveryTransport(t *testing.T) {
	cs := &countingStore{user: "alice"}
	srv := startServerWith(t, func(c *config.Config) {
		c.Limits.ExemptLoopback = false
		c.Limits.AccountLoginFailures = 2
		c.Limits.AccountLoginBackoff.Duration = time.Hour
		c.Limits.AccountLoginBackoffMax.Duration = time.Hour
	}, func(s store.Store) store.Store { cs.Store = s; return cs })
	owner := dialFrom(t, srv.addr, "127.0.0.20")
	owner.login("alice", "phone")
	owner.Conn.Close()

	g, err := dialGuesser(srv.addr, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if cond, text, err := g.Plain("alice", "guess"); err != nil || cond != "not-authorized" {
			t.Fatalf("guess %d: %s %q %v", i, cond, text, err)
		}
	}
	g.Close()
	checks := cs.checks.Load()

	refused := func(what, cond, text string, took time.Duration) {
		t.Helper()
		if cond != "temporary-auth-failure" || !strings.Contains(text, "retry in") {
			t.Errorf("%s: %s %q, want temporary-auth-failure with a time to retry", what, cond, text)
		}
		if took > time.Second {
			t.Errorf("%s: refused after %v; a refusal must not wait for the back-off", what, took)
		}
	}
	for _, pw := range []string{"guess", "pw"} {
		g, err := dialGuesser(srv.addr, "127.0.0.3")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		cond, text, err := g.Plain("alice", pw)
		if err != nil {
			t.Fatal(err)
		}
		refused("TCP+STARTTLS, PLAIN with password "+pw, cond, text, time.Since(start))
		g.Close()
	}

	// Direct TLS (XEP-0368).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.svc.ServeTCP(ln, true)
	t.Cleanup(func() { ln.Close() })
	tc, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	d := xmpptest.NewGuesser(tc, "localhost")
	if err := d.Open(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cond, text, err := d.Plain("alice", "pw")
	if err != nil {
		t.Fatal(err)
	}
	refused("direct TLS, PLAIN", cond, text, time.Since(start))
	tc.Close()

	// WebSocket, SCRAM-SHA-256: refused at the first message, before the
	// salt is even looked up.
	wsl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.svc.WebSocketHandler()}
	go hs.Serve(wsl)
	t.Cleanup(func() { hs.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+wsl.Addr().String()+"/xmpp-websocket", &websocket.DialOptions{Subprotocols: []string{"xmpp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ws := &wsClient{t: t, c: c}
	ws.open()
	start = time.Now()
	ws.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-256'>" + base64.StdEncoding.EncodeToString([]byte("n,,n=alice,r=abcdefgh")) + "</auth>")
	f := ws.next()
	if f.Name != "failure" || len(f.Elements()) == 0 {
		t.Fatalf("WebSocket: %v", f)
	}
	refused("WebSocket, SCRAM-SHA-256", f.Elements()[0].Name, f.ChildText(nsSASL, "text"), time.Since(start))

	// BOSH, PLAIN with the right password.
	bs := httptest.NewTLSServer(srv.svc.BOSHHandler())
	defer bs.Close()
	bc := &boshClient{t: t, url: bs.URL, hc: bs.Client(), rid: 1000}
	b := bc.post("to='localhost' wait='2' hold='1' ver='1.6' xmpp:version='1.0' xmlns:xmpp='urn:xmpp:xbosh'", "")
	bc.sid = b.Attr("sid")
	start = time.Now()
	b = bc.post("", "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"+base64.StdEncoding.EncodeToString([]byte("\x00alice\x00pw"))+"</auth>")
	f = b.Child(nsSASL, "failure")
	if f == nil || len(f.Elements()) == 0 {
		t.Fatalf("BOSH: %v", b)
	}
	refused("BOSH, PLAIN", f.Elements()[0].Name, f.ChildText(nsSASL, "text"), time.Since(start))

	if n := cs.checks.Load() - checks; n != 0 {
		t.Errorf("%d password checks while the account was in back-off", n)
	}
	// The owner's known address is not in the strangers' back-off.
	owner = dialFrom(t, srv.addr, "127.0.0.20")
	owner.login("alice", "laptop")
}

// The nodes of a cluster share an account's strangers' streak through the
// store: failures on one node put the account in back-off on another (and
// on this one after a restart).
func TestAccountThrottleSharedThroughStore(t *testing.T) {
	srv := startServer(t, func(c *config.Config) {
		c.Limits.AccountLoginFailures = 2
		c.Limits.AccountLoginBackoff.Duration = time.Hour
		c.Limits.AccountLoginBackoffMax.Duration = time.Hour
	})
	other := New(srv.svc.cfg, srv.im, srv.svc.tls, srv.svc.log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go other.ServeTCP(ln, false)
	t.Cleanup(func() {
		ln.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		other.Shutdown(ctx)
	})

	g, err := dialGuesser(srv.addr, "127.0.0.2")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if cond, text, err := g.Plain("alice", "guess"); err != nil || cond != "not-authorized" {
			t.Fatalf("guess %d: %s %q %v", i, cond, text, err)
		}
	}
	g.Close()
	if err := srv.svc.guard.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	g, err = dialGuesser(ln.Addr().String(), "127.0.0.3")
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if cond, text, err := g.Plain("alice", "pw"); err != nil || cond != "temporary-auth-failure" {
		t.Fatalf("the other node answered %s %q %v, want temporary-auth-failure", cond, text, err)
	}
	// An account that does not exist gets the same answers.
	g2, err := dialGuesser(ln.Addr().String(), "127.0.0.4")
	if err != nil {
		t.Fatal(err)
	}
	defer g2.Close()
	for i, want := range []string{"not-authorized", "not-authorized", "temporary-auth-failure"} {
		if cond, text, err := g2.Plain("nobody", "guess"); err != nil || cond != want {
			t.Fatalf("guess %d for an absent account: %s %q %v, want %s", i, cond, text, err, want)
		}
	}
}

// counter gathers c and returns the counter name (with the label scope,
// if not "").
func counter(t *testing.T, c prometheus.Collector, name, scope string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := ""
			for _, l := range m.GetLabel() {
				if l.GetName() == "scope" {
					got = l.GetValue()
				}
			}
			if got == scope {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s{scope=%q}", name, scope)
	return 0
}
