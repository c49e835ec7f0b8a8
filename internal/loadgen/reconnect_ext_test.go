package loadgen_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"bluetick/internal/c2s"
	"bluetick/internal/certs"
	"bluetick/internal/config"
	"bluetick/internal/loadgen"
	"bluetick/internal/server"
	"bluetick/internal/store/sqlite"
)

// startBluetickDirectTLS runs Bluetick in this process with its c2s on a
// loopback direct-TLS (XEP-0368) port, open registration, over a fresh
// SQLite store, and returns that port's address.
func startBluetickDirectTLS(t *testing.T) string {
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
	svc := c2s.New(cfg, im, tlsConf, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go svc.ServeTCP(ln, true)
	t.Cleanup(func() { ln.Close(); svc.Shutdown(context.Background()) })
	return ln.Addr().String()
}

// The reconnect scenario against an in-process Bluetick over direct TLS:
// the legacy mode resumes every time, with 7 round trips (TCP, TLS 1.3,
// features, the two SCRAM steps, the restart's features, <resume/>);
// the sasl2 mode runs when the server offers SASL2 and says clearly that
// it does not otherwise.
func TestReconnectScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	addr := startBluetickDirectTLS(t)
	cfg := &loadgen.Config{
		Opt:   &loadgen.Options{Server: addr, Domain: "bench.local", TLS: "direct", Mech: "SCRAM-SHA-1", Timeout: 10 * time.Second},
		Label: "bluetick", Users: "ruser%d", Password: "benchpass", Register: true,
		Scenario: "reconnect", Duration: time.Minute, Concurrency: 4,
		ReconnectClients: 4, Reconnects: 3, ReconnectMode: "both",
	}
	res, err := loadgen.Run(context.Background(), cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	leg := res.Reconnect[loadgen.ModeLegacy]
	if leg == nil || leg.Unsupported != "" || leg.Logins != 4 || leg.OK != 12 || leg.Failed != 0 || leg.Resumed != 12 {
		t.Fatalf("legacy: %+v; errors %v, notes %v", leg, res.Errors, res.Notes)
	}
	if leg.RoundTrips != 7 || leg.RoundTripsBy[7] != 12 {
		t.Errorf("legacy round trips: median %v, %v", leg.RoundTrips, leg.RoundTripsBy)
	}
	if leg.Time.N != 12 || leg.Time.P50 <= 0 || leg.PerSecond <= 0 {
		t.Errorf("legacy time %+v, %v/s", leg.Time, leg.PerSecond)
	}
	s2 := res.Reconnect[loadgen.ModeSASL2]
	switch {
	case s2 == nil:
		t.Fatal("no sasl2 result")
	case s2.Unsupported != "":
		if !strings.Contains(s2.Unsupported, "server does not offer SASL2") && !strings.Contains(s2.Unsupported, "server offers SASL2 but not") {
			t.Errorf("sasl2: %q", s2.Unsupported)
		}
		if !strings.Contains(res.Markdown(), s2.Unsupported) {
			t.Errorf("markdown does not say why sasl2 did not run:\n%s", res.Markdown())
		}
	default: // once the server has SASL2, Bind 2 and FAST
		if s2.OK != 12 || s2.Failed != 0 || s2.Resumed != 12 || s2.RoundTrips != 4 {
			t.Errorf("sasl2: %+v", s2)
		}
	}
	md := res.Markdown()
	for _, want := range []string{"| reconnects_per_s | reconnects/s |", "| round_trips | median | 7.00 |", "| failed |  | 0 |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	for _, name := range []string{"legacy_reconnects_per_s", "legacy_reconnect_p50", "legacy_reconnect_p99", "legacy_round_trips", "legacy_failed"} {
		if _, ok := res.Metric(name); !ok {
			t.Errorf("no metric %s", name)
		}
	}
}
