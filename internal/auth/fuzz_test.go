package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// checkResult enforces the Step contract on arbitrary input: either a
// *Failure with no data and not done, or no error.
func checkResult(t *testing.T, out []byte, done bool, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var f *Failure
	if !errors.As(err, &f) {
		t.Fatalf("error %v (%T) is not a *Failure", err, err)
	}
	if f.Condition == "" {
		t.Fatal("failure without condition")
	}
	if done || out != nil {
		t.Fatalf("failure with done=%v out=%q", done, out)
	}
}

func fuzzStore(t testing.TB) *memStore {
	m := newMemStore()
	m.add(t, "juliet", "romeo", 16)
	m.add(t, "a,b=c", "romeo", 16)
	return m
}

func FuzzSCRAMClientFirst(f *testing.F) {
	for _, s := range []string{
		"n,,n=juliet,r=fyko+d2lbbFgONRv9qkxdawL",
		"y,,n=juliet,r=abc",
		"n,a=juliet@example.com,n=juliet,r=abc",
		"n,,n=a=2Cb=3Dc,r=abc,x=ext",
		"p=tls-unique,,n=juliet,r=abc",
		"n,,m=x,n=juliet,r=abc",
		"n,,n=nobody,r=abc",
		"n,,n==2X,r=abc",
		"",
		",,,",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	m := fuzzStore(f)
	f.Fuzz(func(t *testing.T, in []byte, sha1 bool) {
		mech := SCRAMSHA256
		if sha1 {
			mech = SCRAMSHA1
		}
		n := mustNegotiator(t, mech, Config{Lookup: m.lookup})
		out, done, err := n.Step(context.Background(), in)
		checkResult(t, out, done, err)
		if done {
			t.Fatal("done after client-first-message")
		}
		if err != nil || len(in) == 0 {
			return
		}
		// A challenge must be a well-formed server-first-message
		// echoing the client nonce: nothing the client sent may break
		// its structure.
		attrs := strings.Split(string(out), ",")
		if len(attrs) != 3 || !strings.HasPrefix(attrs[0], "r=") || !strings.HasPrefix(attrs[1], "s=") || !strings.HasPrefix(attrs[2], "i=") {
			t.Fatalf("server-first-message %q", out)
		}
		if !strings.Contains(string(in), ",r="+attrs[0][2:len(attrs[0])-32]) {
			t.Fatalf("nonce %q not from %q", attrs[0], in)
		}
	})
}

// fuzzFinalSetup starts an exchange for juliet with a pinned server nonce
// and returns the negotiator and the valid client-final-message.
func fuzzFinalSetup(t testing.TB, m *memStore, mech string) (Negotiator, []byte) {
	n := mustNegotiator(t, mech, m.config())
	n.(*scram).fixedNonce = "3rfcNHYJY1ZVvWVs7j"
	c := newTestClient(mech, "juliet", "romeo")
	sf, _, err := n.Step(context.Background(), c.first())
	if err != nil {
		t.Fatal(err)
	}
	cf, err := c.final(sf)
	if err != nil {
		t.Fatal(err)
	}
	return n, cf
}

func FuzzSCRAMClientFinal(f *testing.F) {
	m := fuzzStore(f)
	for _, mech := range []string{SCRAMSHA256, SCRAMSHA1} {
		_, valid := fuzzFinalSetup(f, m, mech)
		sha1 := mech == SCRAMSHA1
		f.Add(valid, sha1)
		f.Add(append(valid[:len(valid):len(valid)], ",x=y"...), sha1)
		f.Add([]byte(strings.Replace(string(valid), ",p=", ",x=y,p=", 1)), sha1)
		f.Add([]byte("c=biws,r=rOprNGfwEbeRWgbNEkqO3rfcNHYJY1ZVvWVs7j,p="), sha1)
		f.Add([]byte("c=,r=,p="), sha1)
		f.Add([]byte(""), sha1)
	}
	f.Fuzz(func(t *testing.T, in []byte, sha1 bool) {
		mech := SCRAMSHA256
		if sha1 {
			mech = SCRAMSHA1
		}
		n, valid := fuzzFinalSetup(t, m, mech)
		out, done, err := n.Step(context.Background(), in)
		checkResult(t, out, done, err)
		if err == nil {
			if !done || !strings.HasPrefix(string(out), "v=") || n.Username() != "juliet" {
				t.Fatalf("success with done=%v out=%q user=%q", done, out, n.Username())
			}
			// Only the genuine message (possibly with extra optional
			// extensions, which the proof covers) may succeed.
			if !strings.HasSuffix(string(in), string(valid[strings.LastIndex(string(valid), ",p="):])) {
				t.Fatalf("accepted a message with another proof: %q", in)
			}
		} else if n.Username() != "" {
			t.Fatal("Username set after failure")
		}
		_, _, err = n.Step(context.Background(), valid)
		wantFailure(t, err, "malformed-request")
	})
}

func FuzzPlain(f *testing.F) {
	for _, s := range []string{
		"\x00juliet\x00romeo",
		"juliet@example.com\x00juliet\x00romeo",
		"\x00a,b=c\x00romeo",
		"\x00nobody\x00romeo",
		"\x00juliet\x00wrong",
		"\x00\x00",
		"",
		"\x00juliet\x00romeo\x00",
	} {
		f.Add([]byte(s))
	}
	m := fuzzStore(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		n := mustNegotiator(t, Plain, Config{Lookup: m.lookup})
		out, done, err := n.Step(context.Background(), in)
		checkResult(t, out, done, err)
		switch {
		case len(in) == 0:
			if err != nil || done || out == nil {
				t.Fatalf("empty message: out=%q done=%v err=%v", out, done, err)
			}
		case done:
			if u := n.Username(); u != "juliet" && u != "a,b=c" {
				t.Fatalf("authenticated as %q with %q", u, in)
			}
		case err == nil:
			t.Fatal("neither done nor failed")
		}
	})
}
