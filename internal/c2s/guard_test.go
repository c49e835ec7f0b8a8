package c2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// guesser is a raw client for attack loops on other goroutines: it returns
// errors instead of failing the test.
type guesser struct {
	conn net.Conn
	dec  *xmlstream.Decoder
}

// dialGuesser connects from the loopback address src and does STARTTLS, so
// PLAIN is offered.
func dialGuesser(addr, src string) (*guesser, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := &guesser{conn: c}
	fail := func(err error) (*guesser, error) { c.Close(); return nil, err }
	if err := g.open(); err != nil {
		return fail(err)
	}
	if err := g.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
		return fail(err)
	}
	if el, err := g.next(); err != nil || el.Name != "proceed" {
		return fail(fmt.Errorf("starttls: %v %v", el, err))
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return fail(err)
	}
	g.conn = tc
	if err := g.open(); err != nil {
		return fail(err)
	}
	return g, nil
}

func (g *guesser) send(s string) error {
	g.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(g.conn, s)
	return err
}

func (g *guesser) next() (*xmlstream.Element, error) {
	g.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	ev, err := g.dec.Next()
	if err != nil {
		return nil, err
	}
	if ev.Kind != xmlstream.ElementEvent {
		return nil, fmt.Errorf("unexpected stream event %v", ev.Kind)
	}
	return ev.Elem, nil
}

// open starts a stream and reads the header and the features.
func (g *guesser) open() error {
	g.dec = xmlstream.NewDecoder(g.conn, xmlstream.Limits{MaxElementBytes: 1 << 20})
	if err := g.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0'>"); err != nil {
		return err
	}
	g.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if ev, err := g.dec.Next(); err != nil || ev.Kind != xmlstream.StreamStart {
		return fmt.Errorf("stream header: %v", err)
	}
	_, err := g.next()
	return err
}

// plain tries one password with PLAIN and returns the SASL condition:
// "success", or the <failure/>'s condition and text.
func (g *guesser) plain(user, pw string) (cond, text string, err error) {
	if err := g.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pw)) + "</auth>"); err != nil {
		return "", "", err
	}
	el, err := g.next()
	if err != nil {
		return "", "", err
	}
	if el.Name == "success" {
		return "success", "", nil
	}
	if el.Name != "failure" || len(el.Elements()) == 0 {
		return "", "", fmt.Errorf("answer to <auth/>: %v", el)
	}
	return el.Elements()[0].Name, el.ChildText(nsSASL, "text"), nil
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

	const addrs, perAddr, perConn = 10, 30, 5
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
					cond, text, err := g.plain("alice", fmt.Sprintf("guess-%s-%d", src, n))
					switch {
					case err != nil:
						t.Errorf("%s guess %d: %v", src, n, err)
						g.conn.Close()
						return
					case cond == "not-authorized":
						wrong.Add(1)
					case cond == "temporary-auth-failure" && strings.Contains(text, "retry"):
						throttled.Add(1)
					default:
						t.Errorf("%s guess %d answered %s %q", src, n, cond, text)
					}
				}
				g.conn.Close()
			}
		}()
	}

	// Once the throttle is refusing guesses, the owner logs in on another
	// device from the known address, during the attack.
	for i := 0; throttled.Load() == 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if throttled.Load() == 0 {
		t.Error("no guess was throttled")
	} else {
		laptop := dialFrom(t, srv.addr, "127.0.0.1")
		laptop.login("alice", "laptop")
		ownerChecks++
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
}
