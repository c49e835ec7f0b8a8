package fast

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"testing"
	"unicode/utf8"

	"bluetick/internal/auth"
)

// FuzzParseInitial checks the HT initial-response parser against its
// definition: whatever it accepts is exactly authcid NUL mac with a
// non-empty UTF-8 authcid free of NUL and a 32-byte mac, and it accepts
// every such input (within the size bound).
func FuzzParseInitial(f *testing.F) {
	f.Add(InitialResponse("alice", "token", nil))
	f.Add(InitialResponse("j\u00fcrgen", "t", cb32()))
	f.Add([]byte("alice"))
	f.Add([]byte{0})
	f.Add(append([]byte("a\x00"), bytes.Repeat([]byte{0}, 33)...))
	f.Add(append([]byte("\xff\x00"), bytes.Repeat([]byte{1}, 32)...))
	f.Fuzz(func(t *testing.T, in []byte) {
		user, mac, err := parseInitial(in)
		i := bytes.IndexByte(in, 0)
		valid := len(in) <= maxInitial && i > 0 && utf8.Valid(in[:i]) && len(in)-i-1 == sha256.Size
		if valid != (err == nil) {
			t.Fatalf("parseInitial(%q): err %v, but valid = %v", in, err, valid)
		}
		if err != nil {
			if user != "" || mac != nil {
				t.Fatalf("parseInitial(%q) failed but returned %q, %x", in, user, mac)
			}
			return
		}
		if user == "" || bytes.IndexByte([]byte(user), 0) >= 0 || len(mac) != sha256.Size {
			t.Fatalf("parseInitial(%q) = %q, %x", in, user, mac)
		}
		if !bytes.Equal(append(append([]byte(user), 0), mac...), in) {
			t.Fatalf("parseInitial(%q) = %q, %x: does not rebuild the input", in, user, mac)
		}
	})
}

// FuzzStep feeds arbitrary initial responses to a real negotiator over a
// store holding one token: it must never panic, succeed only with the
// token's own message, and fail only with an *auth.Failure.
func FuzzStep(f *testing.F) {
	e := newEnv(f)
	tok := e.issue("alice", phone, HTSHA256None)
	good := InitialResponse("alice", tok.Token, nil)
	f.Add(good)
	f.Add(InitialResponse("bob", tok.Token, nil))
	f.Add([]byte("alice\x00"))
	f.Fuzz(func(t *testing.T, in []byte) {
		n, err := e.svc.NewNegotiator(HTSHA256None, Params{AgentID: phone.AgentID})
		if err != nil {
			t.Fatal(err)
		}
		out, done, err := n.Step(context.Background(), in)
		if done {
			// Only the token's own message, under any spelling of the
			// name that prepares to alice.
			if n.Username() != "alice" || !bytes.Equal(in[len(in)-32:], good[len(good)-32:]) || !bytes.Equal(out, ServerFinal(tok.Token, nil)) {
				t.Fatalf("Step(%q) succeeded as %q", in, n.Username())
			}
			return
		}
		var fl *auth.Failure
		if !errors.As(err, &fl) || n.Username() != "" || n.Reason() == ReasonNone {
			t.Fatalf("Step(%q): %v, user %q, reason %q", in, err, n.Username(), n.Reason())
		}
	})
}
