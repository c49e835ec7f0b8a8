package c2s

import (
	"bytes"
	"log/slog"
	"net/netip"
	"runtime"
	"strings"
	"testing"
)

// The lazy handler writes what the text handler would have written: With
// attributes first, in order, then the record's, levels filtered the same.
func TestStreamLoggerOutput(t *testing.T) {
	var lazy, eager bytes.Buffer
	opts := &slog.HandlerOptions{Level: slog.LevelInfo, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	lb := slog.New(slog.NewTextHandler(&lazy, opts)).With("component", "c2s")
	eb := slog.New(slog.NewTextHandler(&eager, opts)).With("component", "c2s")
	l := newStreamLogger(lb, testStream())
	e := eb.With("conn", "c1", "transport", "tls", "remote", "127.0.0.1")
	l2, e2 := l.With("user", "alice"), e.With("user", "alice")
	l3, e3 := l2.With("jid", "alice@example.com/phone"), e2.With("jid", "alice@example.com/phone")
	for _, p := range []struct{ l, e *slog.Logger }{{l, e}, {l2, e2}, {l3, e3}} {
		p.l.Info("hello", "n", 1)
		p.e.Info("hello", "n", 1)
		p.l.Debug("filtered")
		p.e.Debug("filtered")
		p.l.WithGroup("g").Warn("grouped", "k", "v")
		p.e.WithGroup("g").Warn("grouped", "k", "v")
	}
	if lazy.String() != eager.String() {
		t.Fatalf("lazy handler wrote\n%s\nthe text handler\n%s", lazy.String(), eager.String())
	}
	if !strings.Contains(lazy.String(), "jid=alice@example.com/phone") {
		t.Fatalf("no jid in %s", lazy.String())
	}
	// The first logger is unchanged by the later With calls.
	lazy.Reset()
	l.Info("again")
	if strings.Contains(lazy.String(), "user=") {
		t.Fatalf("With changed its parent: %s", lazy.String())
	}
}

// BenchmarkStreamLogger: the live heap a connection's logger holds after
// the three With calls of a login (connection, user, JID).
func BenchmarkStreamLogger(b *testing.B) {
	base := slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil)).With("component", "c2s")
	st := testStream()
	st.id = "abcdefgh"
	for _, tc := range []struct {
		name string
		mk   func() *slog.Logger
	}{
		{"lazy", func() *slog.Logger {
			return newStreamLogger(base, st)
		}},
		{"text", func() *slog.Logger { return base.With("conn", "abcdefgh", "transport", "tls", "remote", "127.0.0.1") }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			held := make([]*slog.Logger, 0, 1024)
			var m0, m1 runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&m0)
			n := 0
			for b.Loop() {
				held = append(held, tc.mk().With("user", "alice").With("jid", "alice@example.com/phone"))
				n++
			}
			b.StopTimer()
			runtime.GC()
			runtime.ReadMemStats(&m1)
			b.ReportMetric(max(float64(m1.HeapAlloc)-float64(m0.HeapAlloc)-float64(cap(held))*8, 0)/float64(n), "retained-B/op")
			runtime.KeepAlive(held)
		})
	}
}

// testStream is a stream over a TLS transport from 127.0.0.1, id c1.
func testStream() *stream {
	return &stream{id: "c1", t: &tcpTransport{secure: true, remote: netip.MustParseAddr("127.0.0.1")}}
}
