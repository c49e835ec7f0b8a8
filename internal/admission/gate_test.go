package admission

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
)

func limits(perIP int, exempt bool) config.Limits {
	l := config.Default().Limits
	l.ConnectionsPerIP = perIP
	l.ExemptLoopback = exempt
	return l
}

func TestGateCapsAddressAndBudget(t *testing.T) {
	g := newGate(limits(1000, false), 264, slog.New(slog.DiscardHandler))
	if g.Budget() != 200 || g.PerAddress() != 50 {
		t.Fatalf("budget %d, per address %d; want 200 (264 less 64) and 50 (a quarter)", g.Budget(), g.PerAddress())
	}
	a := netip.MustParseAddr("192.0.2.1")
	for i := 0; i < 50; i++ {
		if r := g.admit(a); r != "" {
			t.Fatalf("connection %d refused: %s", i, r)
		}
	}
	if r := g.admit(a); r != ReasonPerAddress {
		t.Fatalf("51st from one address: %q, want %s", r, ReasonPerAddress)
	}
	g.release(a)
	if r := g.admit(a); r != "" {
		t.Fatalf("after a release: %q", r)
	}
	for i := 0; i < 150; i++ {
		if r := g.admit(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})); r != "" {
			t.Fatalf("other address %d refused: %s", i, r)
		}
	}
	if r := g.admit(netip.MustParseAddr("203.0.113.9")); r != ReasonLowFDs {
		t.Fatalf("past the budget: %q, want %s", r, ReasonLowFDs)
	}
}

func TestGateLoopbackExemptFromAddressCapsOnly(t *testing.T) {
	g := newGate(limits(2, true), 1000, slog.New(slog.DiscardHandler))
	lo := netip.MustParseAddr("127.0.0.1")
	for i := 0; i < g.Budget(); i++ {
		if r := g.admit(lo); r != "" {
			t.Fatalf("loopback connection %d refused: %s", i, r)
		}
	}
	if r := g.admit(lo); r != ReasonLowFDs {
		t.Fatalf("loopback past the budget: %q, want %s", r, ReasonLowFDs)
	}
}

// A refused HTTP connection gets a 503 that says why; closing a
// connection gives its place back.
func TestListenerRefusesWith503(t *testing.T) {
	g := newGate(limits(1, false), 1000, slog.New(slog.DiscardHandler))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
	go srv.Serve(g.Listener(ln, "http", true))
	defer srv.Close()
	first, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(first, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	first.SetReadDeadline(time.Now().Add(2 * time.Second))
	first.Read(make([]byte, 100))
	second, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	second.SetReadDeadline(time.Now().Add(2 * time.Second))
	b, _ := io.ReadAll(second)
	if !strings.HasPrefix(string(b), "HTTP/1.1 503") || !strings.Contains(string(b), "too many connections from your address") {
		t.Fatalf("second connection from the address got %q", b)
	}
	first.Close()
	deadline := time.Now().Add(2 * time.Second)
	for g.Open() != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if g.Open() != 0 || g.Refused("http", ReasonPerAddress) != 1 {
		t.Fatalf("open %d, refused %d; want 0 and 1", g.Open(), g.Refused("http", ReasonPerAddress))
	}
}
