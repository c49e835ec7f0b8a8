package loadgen_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"bluetick/internal/loadgen"
)

// The reconnect scenario against an in-process Bluetick over direct TLS:
// the legacy mode resumes every time, with 7 round trips (TCP, TLS 1.3,
// features, the two SCRAM steps, the restart's features, <resume/>);
// the sasl2 mode (SASL2, Bind2, a FAST token, inline resumption, the
// <authenticate/> sent with the stream header) with 3; the full mode
// binds a new session each time, with 9 (SCRAM's 6 to the restart's
// features, bind, <enable/>, the roster).
func TestReconnectScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	addr := startBluetick(t, true)
	cfg := &loadgen.Config{
		Opt:   &loadgen.Options{Server: addr, Domain: "bench.local", TLS: "direct", Mech: "SCRAM-SHA-1", Timeout: 10 * time.Second},
		Label: "bluetick", Users: "ruser%d", Password: "benchpass", Register: true,
		Scenario: "reconnect", Duration: time.Minute, Concurrency: 4,
		ReconnectClients: 4, Reconnects: 3, ReconnectMode: "all",
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
	// One round trip after TLS: TCP, TLS, and the stream header with an
	// <authenticate/> carrying the token, answered by the features and
	// <success><resumed/>.
	if s2 := res.Reconnect[loadgen.ModeSASL2]; s2 == nil || s2.Unsupported != "" || s2.OK != 12 || s2.Failed != 0 || s2.Resumed != 12 || s2.RoundTrips != 3 {
		t.Errorf("sasl2: %+v; errors %v", s2, res.Errors)
	}
	if full := res.Reconnect[loadgen.ModeFull]; full == nil || full.Unsupported != "" || full.OK != 12 || full.Failed != 0 || full.Resumed != 0 || full.RoundTrips != 9 {
		t.Errorf("full: %+v; errors %v", full, res.Errors)
	}
	md := res.Markdown()
	for _, want := range []string{"| reconnects_per_s | reconnects/s |", "| round_trips | median | 9.00 | 7.00 | 3.00 |", "| failed |  | 0 |"} {
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
