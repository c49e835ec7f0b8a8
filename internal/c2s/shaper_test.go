package c2s

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/xmlstream"
)

// shaped configures the per-session shaper for a test: small rates, so
// that timing slack on a loaded machine stays small next to them, and
// loopback not exempt (every test client is on loopback).
func shaped(stanzas, bytes int, burst, cut time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.Limits.ExemptLoopback = false
		c.Limits.StanzasPerSecond = stanzas
		c.Limits.BytesPerSecond = bytes
		c.Limits.ShaperBurst.Duration = burst
		c.Limits.FloodDisconnect.Duration = cut
	}
}

// flood writes n copies of stanza (with %d replaced by the count) to c's
// connection from a goroutine, ignoring errors: the server may stop
// reading (that is the point) or close the connection. The write deadline
// bounds it; the test's cleanup closes the connection.
func flood(c *client, n int, stanza string) {
	conn := c.Conn
	go func() {
		conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, stanza, i)
			if b.Len() > 16<<10 || i == n-1 {
				if _, err := io.WriteString(conn, b.String()); err != nil {
					return
				}
				b.Reset()
			}
		}
	}()
}

// answersWithin counts the iq results c receives until d has passed (or
// until all of them, if all > 0), and returns the stream error if the
// server sent one.
func answersWithin(c *client, d time.Duration, all int) (n int, streamErr *xmlstream.Element) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) && (all == 0 || n < all) {
		el, err := c.Read(time.Until(deadline))
		if err != nil {
			return n, nil
		}
		switch {
		case el.Name == "iq" && el.Attr("type") == "result":
			n++
		case el.Space == xmlstream.NSStream && el.Name == "error":
			return n, el
		}
	}
	return n, nil
}

const ping = "<iq type='get' id='p%d'><ping xmlns='urn:xmpp:ping'/></iq>"

// A burst far over the rate is slowed to the rate: over a window, what
// the server handles is the burst plus the rate times the window, not the
// 10,000 stanzas sent.
func TestShaperSlowsAFloodToTheRate(t *testing.T) {
	const rate, window = 50, 2 * time.Second
	srv := startServer(t, shaped(rate, 0, time.Second, 0))
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	start := time.Now()
	flood(alice, 10000, ping)
	n, se := answersWithin(alice, window, 0)
	if se != nil {
		t.Fatalf("cut although flood_disconnect is off: %v", se)
	}
	elapsed := time.Since(start).Seconds()
	burst := float64(rate) * 1 // shaper_burst 1s
	max := (burst + rate*elapsed) * 1.5
	min := rate * elapsed * 0.5
	t.Logf("%d stanzas handled in %.2fs (rate %d/s, burst %.0f)", n, elapsed, rate, burst)
	if float64(n) > max || float64(n) < min {
		t.Fatalf("%d stanzas handled in %.2fs; want between %.0f and %.0f (rate %d/s, burst %.0f)", n, elapsed, min, max, rate, burst)
	}
	if srv.svc.Shaper.Shaped.Load() != 1 {
		t.Fatalf("shaped sessions = %d, want 1", srv.svc.Shaper.Shaped.Load())
	}
}

// The byte rate alone slows a client sending few but large stanzas.
func TestShaperCountsBytes(t *testing.T) {
	const bytesRate, window = 20000, 2 * time.Second
	srv := startServer(t, shaped(0, bytesRate, time.Second, 0))
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	pad := strings.Repeat("x", 1000)
	start := time.Now()
	flood(alice, 2000, "<iq type='get' id='"+pad+"%d'><ping xmlns='urn:xmpp:ping'/></iq>")
	n, _ := answersWithin(alice, window, 0)
	elapsed := time.Since(start).Seconds()
	per := float64(len(pad) + 50)
	max := (bytesRate + bytesRate*elapsed) / per * 1.5
	t.Logf("%d stanzas of ~%.0f bytes handled in %.2fs (%d B/s)", n, per, elapsed, bytesRate)
	if float64(n) > max || n == 0 {
		t.Fatalf("%d stanzas of ~%.0f bytes handled in %.2fs; want at most %.0f at %d B/s", n, per, elapsed, max, bytesRate)
	}
}

// A client that stays over the limit is cut with policy-violation.
func TestShaperCutsAPersistentFlood(t *testing.T) {
	srv := startServer(t, shaped(50, 0, time.Second, time.Second))
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	start := time.Now()
	flood(alice, 10000, ping)
	n, se := answersWithin(alice, 10*time.Second, 0)
	if se == nil {
		t.Fatalf("not cut within 10s (%d stanzas handled)", n)
	}
	if se.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil || !strings.Contains(se.String(), "rate") {
		t.Fatalf("stream error = %v, want policy-violation explaining the rate", se)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 6*time.Second {
		t.Fatalf("cut after %v, want about flood_disconnect (1s) after the burst", d)
	}
	if srv.svc.Shaper.Cut.Load() != 1 {
		t.Fatalf("cut sessions = %d, want 1", srv.svc.Shaper.Cut.Load())
	}
	// Others are unaffected.
	bob := dial(t, srv.addr)
	bob.login("bob", "phone")
	bob.send("<iq type='get' id='b1'><ping xmlns='urn:xmpp:ping'/></iq>")
	bob.expect("iq")
}

// The defaults do not slow a normal client, even one catching up: a
// burst of 500 stanzas is handled at once.
func TestShaperDefaultsLeaveNormalClientsAlone(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Limits.ExemptLoopback = false })
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	start := time.Now()
	flood(alice, 500, ping)
	n, se := answersWithin(alice, 5*time.Second, 500)
	if se != nil || n != 500 {
		t.Fatalf("%d of 500 answered (stream error %v)", n, se)
	}
	t.Logf("500 stanzas answered in %v", time.Since(start))
	if srv.svc.Shaper.Shaped.Load() != 0 {
		t.Fatal("a burst within the defaults was shaped")
	}
}

// Loopback clients are exempt with limits.exempt_loopback (the default),
// so local benchmarks are not shaped.
func TestShaperExemptsLoopback(t *testing.T) {
	srv := startServer(t, func(c *config.Config) {
		c.Limits.StanzasPerSecond = 10
		c.Limits.ShaperBurst.Duration = time.Second
	})
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	flood(alice, 300, ping)
	if n, _ := answersWithin(alice, 5*time.Second, 300); n != 300 {
		t.Fatalf("%d of 300 answered from loopback with exempt_loopback", n)
	}
}
