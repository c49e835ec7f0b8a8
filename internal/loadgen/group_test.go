package loadgen_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"bluetick/internal/c2s"
	"bluetick/internal/certs"
	"bluetick/internal/config"
	"bluetick/internal/fast"
	"bluetick/internal/loadgen"
	"bluetick/internal/muc"
	"bluetick/internal/server"
	"bluetick/internal/store/sqlite"
)

// startBluetick runs Bluetick in this process — c2s on a loopback port,
// with STARTTLS or, if directTLS, direct TLS (XEP-0368); open
// registration; the group service on groups.<domain>; FAST login tokens —
// over a fresh SQLite store, and returns the c2s address.
func startBluetick(t *testing.T, directTLS bool) string {
	t.Helper()
	addr, _, _ := startBluetickService(t, directTLS)
	return addr
}

// startBluetickService is startBluetick that also returns the c2s service
// (for its WebSocket handler) and the server's TLS configuration.
func startBluetickService(t *testing.T, directTLS bool) (string, *c2s.Service, *tls.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DataDir = dir
	cfg.Domain = "bench.local"
	cfg.Registration = "open"
	cfg.Limits.ConnectionsPerIPPerMinute = 1 << 20
	cfg.Limits.LoginsPerIPPerMinute = 1 << 20
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tlsConf, err := certs.Load("", "", dir, cfg.Domain)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	im := server.New(cfg, st, log)
	groups, err := muc.New(context.Background(), cfg.MUCDomain(), cfg.MUC, st, im, log)
	if err != nil {
		t.Fatal(err)
	}
	im.RegisterService(cfg.MUCDomain(), "Groups", groups)
	svc := c2s.New(cfg, im, tlsConf, log)
	svc.EnableFAST(fast.New(fast.Config{Fast: cfg.Fast}, st, log))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.ServeTCP(ln, directTLS)
	t.Cleanup(func() { ln.Close(); svc.Shutdown(context.Background()) })
	return ln.Addr().String(), svc, tlsConf
}

func groupConfig(addr string, members, senders, messages int) *loadgen.Config {
	return &loadgen.Config{
		Opt:   &loadgen.Options{Server: addr, Domain: "bench.local", TLS: "starttls", Mech: "SCRAM-SHA-1", Timeout: 10 * time.Second},
		Label: "bluetick", Users: "guser%d", Password: "benchpass", Register: true,
		Scenario: "group", Duration: time.Minute, Concurrency: 8, Window: 3, BodySize: 16,
		GroupMembers: members, GroupSenders: senders, GroupMessages: messages,
	}
}

// The group scenario against an in-process Bluetick: 8 members, 2 senders,
// 10 messages each: every member (the senders too: the room reflects their
// messages) gets all 20 messages once.
func TestGroupScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	addr := startBluetick(t, false)
	cfg := groupConfig(addr, 8, 2, 10)
	res, err := loadgen.Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MUCService != "groups.bench.local" {
		t.Errorf("default MUC service %q", cfg.MUCService)
	}
	if res.OK != 8 || res.Failed != 0 || res.Dropped != 0 || res.TimedOut {
		t.Fatalf("logins %d ok, %d failed, %d dropped, timed out %v, errors %v, notes %v", res.OK, res.Failed, res.Dropped, res.TimedOut, res.Errors, res.Notes)
	}
	if res.Sent != 20 || res.Expected != 160 || res.Received != 160 || res.Duplicates != 0 || res.MsgErrors != 0 {
		t.Fatalf("sent %d, deliveries %d/%d, duplicates %d, message errors %d; notes %v",
			res.Sent, res.Received, res.Expected, res.Duplicates, res.MsgErrors, res.Notes)
	}
	if res.Latency.N != 160 {
		t.Errorf("%d latency samples, want 160", res.Latency.N)
	}
	want := map[string]float64{"lost": 0, "duplicates": 0, "failed": 0}
	for name, v := range want {
		m, ok := res.Metric(name)
		if !ok || m.Value != v {
			t.Errorf("metric %s = %+v (present %v), want %v", name, m, ok, v)
		}
	}
	if m, ok := res.Metric("deliveries_per_s"); !ok || m.Value <= 0 {
		t.Errorf("deliveries_per_s = %+v", m)
	}
	md := res.Markdown()
	if !strings.Contains(md, "| deliveries_per_s |") || !strings.Contains(md, "deliveries 160/160 received, 0 duplicates") {
		t.Errorf("markdown:\n%s", md)
	}

	// A second run in the same room, which now exists (persistent, with
	// the first run's messages in its history): the owner only configures
	// it again, and the first run's messages are not counted.
	cfg2 := groupConfig(addr, 8, 2, 10)
	cfg2.Room = cfg.Room // the same room: existing, persistent, with history
	res2, err := loadgen.Run(context.Background(), cfg2, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if res2.Received != 160 || res2.Expected != 160 || res2.Duplicates != 0 || res2.Failed != 0 {
		t.Fatalf("rerun in the existing room: deliveries %d/%d, duplicates %d, failed %d, errors %v, notes %v",
			res2.Received, res2.Expected, res2.Duplicates, res2.Failed, res2.Errors, res2.Notes)
	}
}

func TestGroupConfigValidation(t *testing.T) {
	cfg := groupConfig("127.0.0.1:1", 4, 5, 1)
	if err := cfg.Validate(); err == nil {
		t.Error("more senders than members accepted")
	}
	cfg = groupConfig("127.0.0.1:1", 4, 2, 1)
	cfg.T0 = time.Unix(1700000000, 0)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Room != "bench-"+cfg.RunID() || cfg.MUCService != "groups.bench.local" {
		t.Errorf("room %q, service %q", cfg.Room, cfg.MUCService)
	}
}
