package fault_test

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bluetick/internal/natstest"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// TestLoginThrottleManyAddresses: ten loopback addresses (exempt from the
// per-address limits) guess s01's password 300 times in about a second
// and a half. The server checks no more passwords than the per-account
// back-off allows in that time, refuses the rest at once with
// <temporary-auth-failure/>, and meanwhile the owner logs in from the
// address s01 logged in from before and is told how many attempts
// failed; `bluetick user info` shows the operator the same count, the
// metrics count checks and refusals, and the log says the account went
// into back-off.
func TestLoginThrottleManyAddresses(t *testing.T) {
	const (
		failures            = 5
		backoff, backoffMax = 50 * time.Millisecond, 200 * time.Millisecond
		addrs, perAddr      = 10, 30
		perConn, pace       = 5, 40 * time.Millisecond
	)
	metrics := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	// failed_auth_delay, the per-connection delay, is cut to 1 ms: only
	// the per-account limit is under test.
	s := startServer(t, fmt.Sprintf("[listen]\nmetrics = %q\n[limits]\nexempt_loopback = true\nfailed_auth_delay = \"1ms\"\naccount_login_failures = %d\n"+
		"account_login_backoff = %q\naccount_login_backoff_max = %q\n", metrics, failures, backoff.String(), backoffMax.String()))

	// The owner's phone logged in from 127.0.0.1 before.
	phone := xmpptest.DialFrom(t, s.c2s, "localhost", "127.0.0.1")
	phone.Login("s01", password, "phone")
	phone.Conn.Close()

	var wrong, throttled atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for a := range addrs {
		src := fmt.Sprintf("127.0.0.%d", a+2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; n < perAddr; {
				g, err := xmpptest.DialGuesser(s.c2s, "localhost", src)
				if err != nil {
					t.Errorf("%s: %v", src, err)
					return
				}
				for k := 0; k < perConn && n < perAddr; k, n = k+1, n+1 {
					cond, text, err := g.Plain("s01", fmt.Sprintf("guess-%s-%d", src, n))
					switch {
					case err != nil:
						t.Errorf("%s guess %d: %v", src, n, err)
						g.Close()
						return
					case cond == "not-authorized":
						wrong.Add(1)
					case cond == "temporary-auth-failure" && strings.Contains(text, "retry in"):
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

	// During the attack, with the account in back-off, the owner's laptop
	// logs in from the known address and is told of the failures.
	for i := 0; (throttled.Load() == 0 || wrong.Load() == 0) && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if throttled.Load() == 0 {
		t.Error("no guess was throttled")
	} else {
		laptop := xmpptest.DialFrom(t, s.c2s, "localhost", "127.0.0.1")
		laptop.Login("s01", password, "laptop")
		laptop.Send("<presence/>")
		if n := notice(t, laptop); n < 1 || int64(n) > wrong.Load()+addrs {
			t.Errorf("the notice counts %d failed attempts; %d were answered so far", n, wrong.Load())
		}
		settleThenClose(laptop)
	}
	wg.Wait()
	elapsed := time.Since(start)

	checks := int64(scrape(t, metrics, "bluetick_auth_failures_total"))
	bound := backoffBound(failures, backoff, backoffMax, elapsed)
	t.Logf("%d guesses from %d addresses in %v (%.0f a minute): %d password checks (the throttle allows %d), %d refused at once",
		addrs*perAddr, addrs, elapsed.Round(time.Millisecond), float64(addrs*perAddr)/elapsed.Minutes(), checks, bound, throttled.Load())
	if checks > int64(bound) {
		t.Errorf("%d password checks of s01 in %v; the per-account throttle allows %d", checks, elapsed, bound)
	}
	if checks != wrong.Load() || wrong.Load()+throttled.Load() != addrs*perAddr {
		t.Errorf("%d checks, %d wrong and %d throttled answers for %d guesses", checks, wrong.Load(), throttled.Load(), addrs*perAddr)
	}
	if n := scrape(t, metrics, "bluetick_auth_throttled_total", "scope", "account"); n != float64(throttled.Load()) {
		t.Errorf("bluetick_auth_throttled_total{scope=account} = %v, want %d", n, throttled.Load())
	}

	// The operator's view, once the server has written the outcomes (at
	// most a second after each): the same answer twice in a row.
	time.Sleep(1500 * time.Millisecond)
	var failed int
	var last []byte
	re := regexp.MustCompile(`failed logins since then: +(\d+)`)
	for i := 0; i < 20; i++ {
		out, err := exec.Command(binary, "user", "info", "s01", "--data", s.dir, "--config", s.config).CombinedOutput()
		if err != nil {
			t.Fatalf("bluetick user info: %v\n%s", err, out)
		}
		if string(out) == string(last) {
			break
		}
		last = out
		time.Sleep(300 * time.Millisecond)
	}
	t.Logf("bluetick user info s01:\n%s", last)
	if m := re.FindSubmatch(last); m != nil {
		failed, _ = strconv.Atoi(string(m[1]))
	}
	if failed == 0 || !strings.Contains(string(last), "known addresses (logged in from before):\n    127.0.0.1 ") {
		t.Fatal("bluetick user info shows no failed logins, or not the owner's address")
	}
	// The owner's next login is told exactly what the operator sees.
	phone = xmpptest.DialFrom(t, s.c2s, "localhost", "127.0.0.1")
	phone.Login("s01", password, "phone")
	phone.Send("<presence/>")
	if n := notice(t, phone); n != failed {
		t.Errorf("the notice counts %d failed attempts, bluetick user info %d", n, failed)
	}
	settleThenClose(phone)

	log, _ := os.ReadFile(s.logPath)
	if !regexp.MustCompile(`login throttle: account in back-off.* user=s01`).Match(log) {
		t.Error("no log line says s01 went into back-off")
	}
}

// notice reads until the server's failed-login notice and returns the
// count it gives.
func notice(t *testing.T, c *xmpptest.Client) int {
	t.Helper()
	for range 20 {
		m := c.Expect("message")
		if m.Attr("from") != "localhost" {
			continue
		}
		var n int
		body := m.ChildText(xmlstream.NSClient, "body")
		if _, err := fmt.Sscanf(body, "%d failed login", &n); err != nil {
			t.Fatalf("notice %q: %v", body, err)
		}
		t.Logf("notice: %s", body)
		return n
	}
	t.Fatal("no failed-login notice")
	return 0
}

// settleThenClose closes c once the server has seen its TCP acknowledge
// what it was sent (it checks 50 ms after a write). Closing in that
// instant deadlocks the user on main: Router.Unbind holds the user's lock
// while TakePending's Delivered hook calls Router.Drain, which takes it
// again.
func settleThenClose(c *xmpptest.Client) {
	time.Sleep(500 * time.Millisecond)
	c.Conn.Close()
}

// backoffBound is the most password checks of one account the throttle
// allows within elapsed: the free failures, then one after each back-off
// delay (doubling up to the cap) that fits.
func backoffBound(failures int, backoff, max, elapsed time.Duration) int {
	n := failures
	var waited time.Duration
	for i := 0; ; i++ {
		d := max
		if i < 30 {
			d = min(d, backoff<<i)
		}
		if waited+d > elapsed {
			return n
		}
		waited += d
		n++
	}
}
