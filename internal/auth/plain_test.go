package auth

import (
	"context"
	"strings"
	"testing"

	"bluetick/internal/store"
)

func plainStep(t *testing.T, cfg Config, msg string) (Negotiator, bool, error) {
	t.Helper()
	n := mustNegotiator(t, Plain, cfg)
	out, done, err := n.Step(context.Background(), []byte(msg))
	if out != nil {
		t.Fatalf("PLAIN returned data %q", out)
	}
	if done && err != nil {
		t.Fatal("done with an error")
	}
	return n, done, err
}

func TestPlain(t *testing.T) {
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	cfg := m.config()

	ok := []string{
		"\x00juliet\x00romeo",
		"\x00Juliet\x00romeo", // PrepareUser canonicalizes
		"juliet@example.com\x00juliet\x00romeo",
		"JULIET@example.com/r\x00juliet\x00romeo",
	}
	for _, msg := range ok {
		n, done, err := plainStep(t, cfg, msg)
		if err != nil || !done {
			t.Errorf("%q: done=%v err=%v", msg, done, err)
			continue
		}
		if n.Username() != "juliet" {
			t.Errorf("%q: Username = %q", msg, n.Username())
		}
		_, _, err = n.Step(context.Background(), []byte(msg))
		wantFailure(t, err, "malformed-request")
	}

	bad := []struct{ msg, cond string }{
		{"\x00juliet\x00tybalt", "not-authorized"},
		{"\x00juliet\x00Romeo", "not-authorized"},
		{"\x00nobody\x00romeo", "not-authorized"},
		{"\x00jul@iet\x00romeo", "not-authorized"},
		{"\x00juliet\x00bell\a", "not-authorized"}, // OpaqueString refuses it
		{"romeo@example.com\x00juliet\x00romeo", "invalid-authzid"},
		{"example.com\x00juliet\x00romeo", "invalid-authzid"},
		{"juliet\x00romeo", "malformed-request"},
		{"juliet", "malformed-request"},
		{"\x00\x00romeo", "malformed-request"},
		{"\x00juliet\x00", "malformed-request"},
		{"\x00juliet\x00romeo\x00", "malformed-request"},
		{"\x00juliet\x00ro\xffmeo", "malformed-request"},
		{"\x00juliet\x00" + strings.Repeat("x", 5000), "malformed-request"},
	}
	for _, tc := range bad {
		n, done, err := plainStep(t, cfg, tc.msg)
		if done {
			t.Errorf("%q: done", tc.msg)
			continue
		}
		wantFailure(t, err, tc.cond)
		if n.Username() != "" {
			t.Errorf("%q: Username = %q", tc.msg, n.Username())
		}
		_, _, err = n.Step(context.Background(), []byte("\x00juliet\x00romeo"))
		wantFailure(t, err, "malformed-request")
	}
}

// TestPlainUnknownUser checks that an unknown user fails exactly like a
// wrong password and costs the same store queries.
func TestPlainUnknownUser(t *testing.T) {
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	_, _, err := plainStep(t, m.config(), "\x00juliet\x00wrong")
	known := wantFailure(t, err, "not-authorized")
	knownLookups := m.lookups
	m.lookups = 0
	_, _, err = plainStep(t, m.config(), "\x00nobody\x00wrong")
	unknown := wantFailure(t, err, "not-authorized")
	if *known != *unknown {
		t.Errorf("failures differ: %v vs %v", known, unknown)
	}
	if m.lookups != knownLookups {
		t.Errorf("store lookups: %d for unknown, %d for known", m.lookups, knownLookups)
	}
}

// TestPlainSHA1Fallback checks that an account with only a SCRAM-SHA-1
// credential can still log in with PLAIN, and that SCRAM-SHA-256 wins when
// both exist.
func TestPlainSHA1Fallback(t *testing.T) {
	creds, err := NewCredentials("romeo", testIterations)
	if err != nil {
		t.Fatal(err)
	}
	m := newMemStore()
	for _, c := range creds {
		if c.Mechanism == SCRAMSHA1 {
			m.put("juliet", c)
		}
	}
	if _, done, err := plainStep(t, m.config(), "\x00juliet\x00romeo"); err != nil || !done {
		t.Fatalf("SHA-1 only: done=%v err=%v", done, err)
	}
	_, _, err = plainStep(t, m.config(), "\x00juliet\x00tybalt")
	wantFailure(t, err, "not-authorized")

	// Both present but the SHA-1 one holds another password: SHA-256 decides.
	other, _ := NewCredentials("other", testIterations)
	for _, c := range creds {
		if c.Mechanism == SCRAMSHA256 {
			m.put("juliet", c)
		}
	}
	for _, c := range other {
		if c.Mechanism == SCRAMSHA1 {
			m.put("juliet", c)
		}
	}
	if _, done, err := plainStep(t, m.config(), "\x00juliet\x00romeo"); err != nil || !done {
		t.Fatalf("SHA-256 preferred: done=%v err=%v", done, err)
	}
	_, _, err = plainStep(t, m.config(), "\x00juliet\x00other")
	wantFailure(t, err, "not-authorized")
}

func TestPlainEmptyInitialResponse(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	n := mustNegotiator(t, Plain, m.config())
	out, done, err := n.Step(ctx, []byte{})
	if err != nil || done || out == nil || len(out) != 0 {
		t.Fatalf("out=%q done=%v err=%v", out, done, err)
	}
	if _, done, err := n.Step(ctx, []byte("\x00juliet\x00romeo")); err != nil || !done {
		t.Fatalf("done=%v err=%v", done, err)
	}

	n = mustNegotiator(t, Plain, m.config())
	n.Step(ctx, nil)
	_, _, err = n.Step(ctx, nil)
	wantFailure(t, err, "malformed-request")
}

func TestPlainCorruptCredential(t *testing.T) {
	m := newMemStore()
	m.put("juliet", store.Credential{Mechanism: SCRAMSHA256, Salt: []byte("salt"), Iterations: 0, StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)})
	_, _, err := plainStep(t, m.config(), "\x00juliet\x00romeo")
	wantFailure(t, err, "temporary-auth-failure")
}
