package turn

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	pionturn "github.com/pion/turn/v4"

	"bluetick/internal/config"
)

const testSecret = "test-secret-0123456789"

func startTest(t *testing.T, allowLoopback bool) *Server {
	t.Helper()
	cfg := config.Default().TURN
	cfg.Enabled = true
	cfg.Listen = "127.0.0.1:0"
	cfg.RelayMinPort, cfg.RelayMaxPort = 50000, 59999
	cfg.AllowLoopbackPeers = allowLoopback
	// Port 0 differs per transport, so each gets its own listener address.
	s, err := Start(cfg, "localhost", testSecret, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// echoPeer is a UDP peer on loopback that sends every datagram back, until
// the test ends.
func echoPeer(t *testing.T) net.Addr {
	t.Helper()
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
	return pc.LocalAddr()
}

// client connects a pion TURN client over transport ("udp" or "tcp").
func client(t *testing.T, s *Server, transport, user, pass string) *pionturn.Client {
	t.Helper()
	var conn net.PacketConn
	var addr string
	if transport == "tcp" {
		addr = s.TCPAddr().String()
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conn = pionturn.NewSTUNConn(c)
	} else {
		addr = s.UDPAddr().String()
		pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		conn = pc
	}
	c, err := pionturn.NewClient(&pionturn.ClientConfig{
		STUNServerAddr: addr, TURNServerAddr: addr, Conn: conn,
		Username: user, Password: pass, Realm: "localhost", RTO: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); conn.Close() })
	return c
}

// relayRoundTrip sends n datagrams through relay to the echo peer and
// checks each comes back from the peer.
func relayRoundTrip(t *testing.T, relay net.PacketConn, peer net.Addr, n int) {
	t.Helper()
	buf := make([]byte, 1500)
	for i := 0; i < n; i++ {
		msg := []byte(fmt.Sprintf("bluetick-relay-%d", i))
		if _, err := relay.WriteTo(msg, peer); err != nil {
			t.Fatalf("write to peer via relay: %v", err)
		}
		relay.SetReadDeadline(time.Now().Add(3 * time.Second))
		m, from, err := relay.ReadFrom(buf)
		if err != nil {
			t.Fatalf("datagram %d: no echo through the relay: %v", i, err)
		}
		if !bytes.Equal(buf[:m], msg) || from.String() != peer.String() {
			t.Fatalf("datagram %d: got %q from %v, want %q from %v", i, buf[:m], from, msg, peer)
		}
	}
}

func TestRelayWithIssuedCredentials(t *testing.T) {
	s := startTest(t, true)
	peer := echoPeer(t)
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			cr := Issue(testSecret, "alice@localhost", time.Now(), time.Hour)
			c := client(t, s, tr, cr.Username, cr.Password)
			// STUN: the server reflects our address.
			mapped, err := c.SendBindingRequest()
			if err != nil || !mapped.(*net.UDPAddr).IP.IsLoopback() {
				t.Fatalf("STUN binding: %v, %v", mapped, err)
			}
			relay, err := c.Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer relay.Close()
			if ra := relay.LocalAddr().(*net.UDPAddr); !ra.IP.Equal(net.IPv4(127, 0, 0, 1)) || ra.Port < 50000 || ra.Port > 59999 {
				t.Fatalf("relay address %v outside 127.0.0.1:50000-59999", ra)
			}
			relayRoundTrip(t, relay, peer, 5)
		})
	}
}

func TestRefusedCredentials(t *testing.T) {
	s := startTest(t, true)
	now := time.Now()
	good := Issue(testSecret, "alice@localhost", now, time.Hour)
	expired := Issue(testSecret, "alice@localhost", now.Add(-2*time.Hour), time.Hour)
	later := Issue(testSecret, "alice@localhost", now, 48*time.Hour)
	cases := []struct{ name, user, pass string }{
		{"expired", expired.Username, expired.Password},
		{"other_secret", good.Username, Issue("another-secret-42", "alice@localhost", now, time.Hour).Password},
		{"expiry_extended_by_client", later.Username, good.Password},
		{"user_changed", fmt.Sprintf("%d:bob@localhost", good.Expires.Unix()), good.Password},
		{"no_expiry", "alice@localhost", Password(testSecret, "alice@localhost")},
	}
	for _, c := range cases {
		for _, tr := range []string{"udp", "tcp"} {
			t.Run(c.name+"_"+tr, func(t *testing.T) {
				cl := client(t, s, tr, c.user, c.pass)
				if relay, err := cl.Allocate(); err == nil {
					relay.Close()
					t.Fatalf("allocation granted with %s credentials", c.name)
				}
			})
		}
	}
	if n := s.Allocations(); n != 0 {
		t.Fatalf("%d allocations after refused requests", n)
	}
}

func TestLoopbackPeersDeniedByDefault(t *testing.T) {
	s := startTest(t, false)
	peer := echoPeer(t)
	cr := Issue(testSecret, "alice@localhost", time.Now(), time.Hour)
	c := client(t, s, "udp", cr.Username, cr.Password)
	relay, err := c.Allocate()
	if err != nil {
		t.Fatalf("allocate: %v", err)
	}
	defer relay.Close()
	if err := c.CreatePermission(peer); err == nil {
		t.Fatal("permission to a loopback peer granted with allow_loopback_peers off")
	}
}

func TestQuotaPerUser(t *testing.T) {
	s := startTest(t, true)
	var relays []net.PacketConn
	defer func() {
		for _, r := range relays {
			r.Close()
		}
	}()
	// Fresh credentials each time: the cap is per account, not per username.
	for i := 0; i < MaxAllocationsPerUser; i++ {
		cr := Issue(testSecret, "alice@localhost", time.Now(), time.Hour+time.Duration(i)*time.Second)
		r, err := client(t, s, "udp", cr.Username, cr.Password).Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
		relays = append(relays, r)
	}
	cr := Issue(testSecret, "alice@localhost", time.Now(), 2*time.Hour)
	if r, err := client(t, s, "udp", cr.Username, cr.Password).Allocate(); err == nil {
		r.Close()
		t.Fatalf("allocation %d granted over the per-user cap", MaxAllocationsPerUser+1)
	}
	cr = Issue(testSecret, "bob@localhost", time.Now(), time.Hour)
	r, err := client(t, s, "udp", cr.Username, cr.Password).Allocate()
	if err != nil {
		t.Fatalf("another user is capped too: %v", err)
	}
	r.Close()
}

func TestSecretKept(t *testing.T) {
	dir := t.TempDir()
	a, err := LoadOrCreateSecret(dir)
	if err != nil || len(a) < 32 {
		t.Fatalf("generated %q, %v", a, err)
	}
	b, err := LoadOrCreateSecret(dir)
	if err != nil || a != b {
		t.Fatalf("second load %q, %v; want %q", b, err, a)
	}
}
