package loadgen_test

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"bluetick/internal/loadgen"
)

// The conns scenario with --wake, over TCP (STARTTLS) and over WebSocket
// (wss on an HTTPS listener), against an in-process Bluetick: every
// session logs in, and after the hold (long enough for idle TCP streams to
// park) a message reaches each of the chosen sessions twice, timed.
func TestConnsWake(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	addr, svc, tlsConf := startBluetickService(t, false)
	hs := httptest.NewUnstartedServer(svc.WebSocketHandler())
	hs.TLS = tlsConf.Clone()
	hs.TLS.NextProtos = []string{"http/1.1"}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	wss := "wss://" + strings.TrimPrefix(hs.URL, "https://") + "/xmpp-websocket"
	for _, tc := range []struct{ name, server, transport, tls string }{
		{"tcp", addr, "tcp", "starttls"},
		{"websocket", wss, "websocket", "direct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &loadgen.Config{
				Opt:   &loadgen.Options{Server: tc.server, Transport: tc.transport, Domain: "bench.local", TLS: tc.tls, Mech: "SCRAM-SHA-1", Timeout: 10 * time.Second},
				Label: "bluetick", Users: "wuser%d", Password: "benchpass", Register: true,
				Scenario: "conns", Duration: time.Minute, Concurrency: 8,
				Conns: 12, Hold: 3 * time.Second, Wake: 8,
			}
			res, err := loadgen.Run(context.Background(), cfg, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			if res.OK != 12 || res.Failed != 0 || res.Dropped != 0 {
				t.Fatalf("logins %d ok, %d failed, %d dropped; errors %v, notes %v", res.OK, res.Failed, res.Dropped, res.Errors, res.Notes)
			}
			if res.TLS["TLS1.3/X25519MLKEM768"]+res.TLS["TLS1.3/X25519"] != 12 {
				t.Errorf("TLS of the sessions: %v", res.TLS)
			}
			if res.WakeParked.N != 8 || res.WakeActive.N != 8 {
				t.Fatalf("wake samples: %d parked, %d awake, want 8 each; notes %v", res.WakeParked.N, res.WakeActive.N, res.Notes)
			}
			for _, m := range []string{"wake_parked_p99", "wake_active_p99", "wake_p99_cost"} {
				if _, ok := res.Metric(m); !ok {
					t.Errorf("no metric %s", m)
				}
			}
		})
	}
}
