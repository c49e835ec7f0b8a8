package auth

import (
	"context"
	"strings"
	"testing"
)

// BenchmarkSCRAMSHA256Exchange measures the server's cost of one full
// SCRAM-SHA-256 login at DefaultIterations. The client's PBKDF2 is done
// once outside the loop, as a client caching its salted password would;
// the server does no PBKDF2 for SCRAM, which is why this is cheap.
func BenchmarkSCRAMSHA256Exchange(b *testing.B) {
	ctx := context.Background()
	m := newMemStore()
	m.add(b, "juliet", "romeo", DefaultIterations)
	cfg := m.config()

	c := newTestClient(SCRAMSHA256, "juliet", "romeo")
	n := mustNegotiator(b, SCRAMSHA256, cfg)
	sf, _, err := n.Step(ctx, c.first())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := c.final(sf); err != nil { // computes c.salted once
		b.Fatal(err)
	}
	first := c.first()

	b.ReportAllocs()
	for b.Loop() {
		n := mustNegotiator(b, SCRAMSHA256, cfg)
		sf, _, err := n.Step(ctx, first)
		if err != nil {
			b.Fatal(err)
		}
		nonce := strings.SplitN(string(sf), ",", 2)[0]
		cf := c.finalWith(string(sf), "c=biws,"+nonce)
		if _, done, err := n.Step(ctx, cf); err != nil || !done {
			b.Fatalf("done=%v err=%v", done, err)
		}
	}
}

// BenchmarkPlain measures a PLAIN login, dominated by the server-side
// PBKDF2 at DefaultIterations; an unknown user costs the same.
func BenchmarkPlain(b *testing.B) {
	ctx := context.Background()
	m := newMemStore()
	m.add(b, "juliet", "romeo", DefaultIterations)
	cfg := m.config()
	for _, tc := range []struct{ name, msg string }{
		{"known", "\x00juliet\x00romeo"},
		{"unknown", "\x00nobody\x00romeo"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n := mustNegotiator(b, Plain, cfg)
				n.Step(ctx, []byte(tc.msg))
			}
		})
	}
}
