package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"reflect"
	"strings"
	"testing"

	"bluetick/internal/store"
)

// rfcCredential builds the stored credential the RFC examples imply:
// user "user", password "pencil", the given salt and 4096 iterations.
func rfcCredential(t *testing.T, h *scramHash, saltB64 string) store.Credential {
	t.Helper()
	salt, err := base64.StdEncoding.DecodeString(saltB64)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := deriveCredential(h, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	return cred
}

// TestRFCVectors replays the example exchanges of RFC 5802 §5 and RFC 7677
// §3 byte for byte, with the server nonce pinned through the test hook.
func TestRFCVectors(t *testing.T) {
	tests := []struct {
		name        string
		h           *scramHash
		salt        string
		snonce      string
		clientFirst string
		serverFirst string
		clientFinal string
		serverFinal string
	}{
		{
			name:        "RFC 5802 SCRAM-SHA-1",
			h:           hashSHA1,
			salt:        "QSXCR+Q6sek8bf92",
			snonce:      "3rfcNHYJY1ZVvWVs7j",
			clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
			serverFirst: "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
			clientFinal: "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
			serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
		},
		{
			name:        "RFC 7677 SCRAM-SHA-256",
			h:           hashSHA256,
			salt:        "W22ZaJ0SNY7soEsUEjb6gQ==",
			snonce:      "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
			clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
			serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
			clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
			serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			m := newMemStore()
			m.put("user", rfcCredential(t, tc.h, tc.salt))
			n := mustNegotiator(t, tc.h.mech, m.config())
			n.(*scram).fixedNonce = tc.snonce

			out, done, err := n.Step(ctx, []byte(tc.clientFirst))
			if err != nil || done {
				t.Fatalf("client-first: done=%v err=%v", done, err)
			}
			if string(out) != tc.serverFirst {
				t.Fatalf("server-first = %q, want %q", out, tc.serverFirst)
			}
			if n.Username() != "" {
				t.Fatalf("Username before done = %q", n.Username())
			}
			out, done, err = n.Step(ctx, []byte(tc.clientFinal))
			if err != nil || !done {
				t.Fatalf("client-final: done=%v err=%v", done, err)
			}
			if string(out) != tc.serverFinal {
				t.Fatalf("server-final = %q, want %q", out, tc.serverFinal)
			}
			if n.Username() != "user" {
				t.Fatalf("Username = %q", n.Username())
			}
			// Single use: nothing more is accepted.
			_, _, err = n.Step(ctx, []byte(tc.clientFinal))
			wantFailure(t, err, "malformed-request")
		})
	}
}

// TestIndependentClient checks NewCredentials and the server against a
// client implemented separately in the tests, for both mechanisms.
func TestIndependentClient(t *testing.T) {
	m := newMemStore()
	m.add(t, "juliet", "r0m€o & ünicode", testIterations)
	for _, mech := range []string{SCRAMSHA256, SCRAMSHA1} {
		t.Run(mech, func(t *testing.T) {
			// The client sends the name in another case: PrepareUser
			// canonicalizes it.
			c := newTestClient(mech, "Juliet", "r0m€o & ünicode")
			n, err := exchange(t, mech, m.config(), c)
			if err != nil {
				t.Fatal(err)
			}
			if n.Username() != "juliet" {
				t.Fatalf("Username = %q", n.Username())
			}
		})
	}
}

func TestNewCredentials(t *testing.T) {
	creds, err := NewCredentials("pencil", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != 2 {
		t.Fatalf("got %d credentials", len(creds))
	}
	seen := map[string]bool{}
	for _, c := range creds {
		seen[c.Mechanism] = true
		if len(c.Salt) != 16 || c.Iterations != 100 {
			t.Errorf("%s: salt %d bytes, %d iterations", c.Mechanism, len(c.Salt), c.Iterations)
		}
		h := hashSHA1
		if c.Mechanism == SCRAMSHA256 {
			h = hashSHA256
		}
		if !validCredential(h, c) {
			t.Errorf("%s: invalid credential %+v", c.Mechanism, c)
		}
		// The keys must be what the RFC derivation gives.
		want, err := deriveCredential(h, "pencil", c.Salt, 100)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(c, want) {
			t.Errorf("%s: keys differ from the RFC derivation", c.Mechanism)
		}
	}
	if !seen[SCRAMSHA1] || !seen[SCRAMSHA256] {
		t.Errorf("mechanisms %v", seen)
	}
	if bytes.Equal(creds[0].Salt, creds[1].Salt) {
		t.Error("the two credentials share a salt")
	}
	again, _ := NewCredentials("pencil", 100)
	if bytes.Equal(again[0].Salt, creds[0].Salt) {
		t.Error("salt is not fresh")
	}

	for _, bad := range []string{"", "bell\a", "tab\there"} {
		if _, err := NewCredentials(bad, 100); err == nil {
			t.Errorf("NewCredentials(%q) accepted", bad)
		}
	}
	for _, it := range []int{0, -1, maxIterations + 1} {
		if _, err := NewCredentials("pencil", it); err == nil {
			t.Errorf("iterations %d accepted", it)
		}
	}
}

func TestPRECISPreparedPassword(t *testing.T) {
	// "Å" as A + combining ring (NFD) and as the precomposed character:
	// OpaqueString normalizes to NFC, so both are the same password.
	m := newMemStore()
	m.add(t, "nfc", "\u00c5ngstr\u00f6m", testIterations)
	c := newTestClient(SCRAMSHA256, "nfc", "\u00c5ngstr\u00f6m")
	if _, err := exchange(t, SCRAMSHA256, m.config(), c); err != nil {
		t.Fatal(err)
	}
	p := mustNegotiator(t, Plain, m.config())
	if _, done, err := p.Step(context.Background(), []byte("\x00nfc\x00A\u030angstro\u0308m")); err != nil || !done {
		t.Fatalf("PLAIN with NFD password: done=%v err=%v", done, err)
	}
}

func TestWrongPassword(t *testing.T) {
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	for _, mech := range []string{SCRAMSHA256, SCRAMSHA1} {
		c := newTestClient(mech, "juliet", "tybalt")
		n, err := exchange(t, mech, m.config(), c)
		wantFailure(t, err, "not-authorized")
		if n.Username() != "" {
			t.Errorf("Username after failure = %q", n.Username())
		}
		_, _, err = n.Step(context.Background(), []byte("c=biws"))
		wantFailure(t, err, "malformed-request")
	}
}

// TestUnknownUser checks that an unknown user goes through the same steps,
// with the same message shapes, as a known user with a wrong password.
func TestUnknownUser(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	for _, mech := range []string{SCRAMSHA256, SCRAMSHA1} {
		t.Run(mech, func(t *testing.T) {
			serverFirst := func(user string) (string, []string) {
				n := mustNegotiator(t, mech, m.config())
				c := newTestClient(mech, user, "wrong")
				sf, _, err := n.Step(ctx, c.first())
				if err != nil {
					t.Fatalf("%s: client-first: %v", user, err)
				}
				cf, err := c.final(sf)
				if err != nil {
					t.Fatal(err)
				}
				_, _, err = n.Step(ctx, cf)
				f := wantFailure(t, err, "not-authorized")
				return f.Text, strings.Split(string(sf), ",")
			}
			knownText, known := serverFirst("juliet")
			unknownText, unknown := serverFirst("nobody")
			if knownText != unknownText {
				t.Errorf("failure text differs: %q vs %q", knownText, unknownText)
			}
			if len(known) != 3 || len(unknown) != 3 {
				t.Fatalf("server-first shapes %q vs %q", known, unknown)
			}
			for i := range known {
				if known[i][:2] != unknown[i][:2] || len(known[i]) != len(unknown[i]) {
					t.Errorf("attribute %d: %q vs %q", i, known[i], unknown[i])
				}
			}
			// Same iteration count as the real account.
			if known[2] != unknown[2] {
				t.Errorf("iterations %q vs %q", known[2], unknown[2])
			}
			// The fake salt is stable per user and differs between users.
			_, again := serverFirst("nobody")
			if again[1] != unknown[1] {
				t.Errorf("fake salt not deterministic: %q vs %q", unknown[1], again[1])
			}
			_, other := serverFirst("somebody")
			if other[1] == unknown[1] {
				t.Error("two unknown users share a fake salt")
			}
		})
	}

	// Even a proof that matched the stand-in credential must fail for an
	// unknown user. Finding one is infeasible, so plant a credential whose
	// password we know in place of the fake one.
	n := mustNegotiator(t, SCRAMSHA256, m.config()).(*scram)
	c := newTestClient(SCRAMSHA256, "ghost", "boo")
	sf, _, err := n.Step(ctx, c.first())
	if err != nil {
		t.Fatal(err)
	}
	if n.known {
		t.Fatal("ghost is known")
	}
	planted, err := deriveCredential(hashSHA256, "boo", n.cred.Salt, n.cred.Iterations)
	if err != nil {
		t.Fatal(err)
	}
	n.cred = planted
	cf, err := c.final(sf)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = n.Step(ctx, cf)
	wantFailure(t, err, "not-authorized")
}

func TestTampering(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	cases := []struct {
		name   string
		tamper func(c *testClient, serverFirst, withoutProof string) []byte
		cond   string
	}{
		{"channel binding flag", func(c *testClient, sf, wp string) []byte {
			// Claims "y,," in c= although the header said "n,,".
			wp = strings.Replace(wp, "c=biws", "c="+base64.StdEncoding.EncodeToString([]byte("y,,")), 1)
			return c.finalWith(sf, wp)
		}, "not-authorized"},
		{"channel binding data", func(c *testClient, sf, wp string) []byte {
			wp = strings.Replace(wp, "c=biws", "c="+base64.StdEncoding.EncodeToString([]byte("n,,extra")), 1)
			return c.finalWith(sf, wp)
		}, "not-authorized"},
		{"nonce", func(c *testClient, sf, wp string) []byte {
			return c.finalWith(sf, wp+"x")
		}, "not-authorized"},
		{"nonce prefix only", func(c *testClient, sf, wp string) []byte {
			return c.finalWith(sf, "c=biws,r="+c.cnonce)
		}, "not-authorized"},
		{"proof bit", func(c *testClient, sf, wp string) []byte {
			msg := c.finalWith(sf, wp)
			i := bytes.LastIndex(msg, []byte(",p=")) + 3
			proof, _ := base64.StdEncoding.DecodeString(string(msg[i:]))
			proof[0] ^= 1
			return append(msg[:i], base64.StdEncoding.EncodeToString(proof)...)
		}, "not-authorized"},
		{"proof length", func(c *testClient, sf, wp string) []byte {
			return []byte(wp + ",p=" + base64.StdEncoding.EncodeToString(make([]byte, 20)))
		}, "malformed-request"},
		{"proof base64", func(c *testClient, sf, wp string) []byte {
			return []byte(wp + ",p=!!!!")
		}, "malformed-request"},
		{"proof not last", func(c *testClient, sf, wp string) []byte {
			msg := c.finalWith(sf, wp)
			return append(msg, ",x=y"...)
		}, "malformed-request"},
		{"missing c", func(c *testClient, sf, wp string) []byte {
			return c.finalWith(sf, strings.TrimPrefix(wp, "c=biws,"))
		}, "malformed-request"},
		{"extension accepted", func(c *testClient, sf, wp string) []byte {
			return c.finalWith(sf, wp+",x=ignored")
		}, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := mustNegotiator(t, SCRAMSHA256, m.config())
			c := newTestClient(SCRAMSHA256, "juliet", "romeo")
			sf, _, err := n.Step(ctx, c.first())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.final(sf); err != nil { // sets c.salted
				t.Fatal(err)
			}
			nonce := strings.SplitN(string(sf), ",", 2)[0]
			wp := "c=biws," + nonce
			out, done, err := n.Step(ctx, tc.tamper(c, string(sf), wp))
			if tc.cond == "" {
				if err != nil || !done {
					t.Fatalf("done=%v err=%v", done, err)
				}
				if err := c.verify(out); err != nil {
					t.Fatal(err)
				}
				return
			}
			wantFailure(t, err, tc.cond)
			if done || out != nil || n.Username() != "" {
				t.Fatalf("failure with done=%v out=%q user=%q", done, out, n.Username())
			}
			// After a failure the exchange is over, even for a good message.
			_, _, err = n.Step(ctx, c.finalWith(string(sf), wp))
			wantFailure(t, err, "malformed-request")
		})
	}
}

func TestSCRAMClientFirstErrors(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	cases := []struct {
		msg  string
		cond string
	}{
		{"p=tls-unique,,n=juliet,r=abc", "malformed-request"},
		{"p=tls-exporter,a=juliet@example.com,n=juliet,r=abc", "malformed-request"},
		{"x,,n=juliet,r=abc", "malformed-request"},
		{"n", "malformed-request"},
		{"n,", "malformed-request"},
		{"n,,", "malformed-request"},
		{"n,,n=juliet", "malformed-request"},
		{"n,,r=abc,n=juliet", "malformed-request"},
		{"n,,n=,r=abc", "malformed-request"},
		{"n,,n=juliet,r=", "malformed-request"},
		{"n,,n=juliet,r=a\x7fb", "malformed-request"},
		{"n,,n=juliet,r=abc,bad", "malformed-request"},
		{"n,,m=ext,n=juliet,r=abc", "malformed-request"},
		{"n,juliet,n=juliet,r=abc", "malformed-request"},
		{"n,a=,n=juliet,r=abc", "malformed-request"},
		{"n,,n=jul=2Xiet,r=abc", "malformed-request"},
		{"n,,n=juliet=,r=abc", "malformed-request"},
		{"n,,n=juliet=2,r=abc", "malformed-request"},
		{"n,,n=juliet=2c,r=abc", "malformed-request"},
		{"n,,n=jul\x00iet,r=abc", "malformed-request"},
		{"n,,n=jul\xffiet,r=abc", "malformed-request"},
		{"n,,n=" + strings.Repeat("a", 5000) + ",r=abc", "malformed-request"},
		{"n,,n=jul@iet,r=abc", "not-authorized"}, // PrepareUser refuses it
		{"n,a=romeo@example.com,n=juliet,r=abc", "invalid-authzid"},
		{"n,a=example.com,n=juliet,r=abc", "invalid-authzid"},
		{"n,a=@example.com,n=juliet,r=abc", "invalid-authzid"},
	}
	for _, tc := range cases {
		n := mustNegotiator(t, SCRAMSHA1, m.config())
		_, done, err := n.Step(ctx, []byte(tc.msg))
		if done {
			t.Errorf("%q: done", tc.msg)
		}
		var f *Failure
		if !errors.As(err, &f) || f.Condition != tc.cond {
			t.Errorf("%q: err = %v, want %s", tc.msg, err, tc.cond)
		}
	}
	// Channel binding refusal says why.
	n := mustNegotiator(t, SCRAMSHA1, m.config())
	_, _, err := n.Step(ctx, []byte("p=tls-unique,,n=juliet,r=abc"))
	if f := wantFailure(t, err, "malformed-request"); !strings.Contains(f.Text, "channel binding") {
		t.Errorf("text %q", f.Text)
	}
}

func TestAuthzid(t *testing.T) {
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	for _, az := range []string{"juliet@example.com", "JULIET@example.com", "juliet@example.com/balcony"} {
		c := newTestClient(SCRAMSHA256, "juliet", "romeo")
		c.authzid = az
		n, err := exchange(t, SCRAMSHA256, m.config(), c)
		if err != nil {
			t.Fatalf("authzid %q: %v", az, err)
		}
		if n.Username() != "juliet" {
			t.Fatalf("Username = %q", n.Username())
		}
	}
	// The "y" flag is fine: we offer no -PLUS, so it is no downgrade.
	c := newTestClient(SCRAMSHA256, "juliet", "romeo")
	c.flag = "y"
	if _, err := exchange(t, SCRAMSHA256, m.config(), c); err != nil {
		t.Fatalf("flag y: %v", err)
	}
}

// TestEscaping checks ',' and '=' in usernames and authzids (RFC 5802
// §5.1: "=2C" and "=3D").
func TestEscaping(t *testing.T) {
	m := newMemStore()
	cfg := Config{Lookup: m.lookup} // identity PrepareUser
	const user = "a,b=c,=="
	m.add(t, user, "secret", testIterations)

	c := newTestClient(SCRAMSHA256, user, "secret")
	c.authzid = user + "@example.com"
	first := string(c.first())
	if want := "n,a=a=2Cb=3Dc=2C=3D=3D@example.com,n=a=2Cb=3Dc=2C=3D=3D,r="; !strings.HasPrefix(first, want) {
		t.Fatalf("client-first %q, want prefix %q", first, want)
	}
	n, err := exchange(t, SCRAMSHA256, cfg, c)
	if err != nil {
		t.Fatal(err)
	}
	if n.Username() != user {
		t.Fatalf("Username = %q, want %q", n.Username(), user)
	}

	for in, want := range map[string]string{
		"plain":        "plain",
		"=2C":          ",",
		"=3D":          "=",
		"a=3D2C":       "a=2C",
		"=3D=2C=3D":    "=,=",
		"x=2Cy=3Dz=2C": "x,y=z,",
	} {
		got, err := unescapeSASLName(in)
		if err != nil || got != want {
			t.Errorf("unescape(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"", "=", "a=", "=2", "=3", "=2c", "=3d", "=41", "a=2Xb"} {
		if got, err := unescapeSASLName(in); err == nil {
			t.Errorf("unescape(%q) = %q, want error", in, got)
		}
	}
}

func TestEmptyInitialResponse(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)

	n := mustNegotiator(t, SCRAMSHA1, m.config())
	out, done, err := n.Step(ctx, nil)
	if err != nil || done || out == nil || len(out) != 0 {
		t.Fatalf("empty initial response: out=%q done=%v err=%v", out, done, err)
	}
	c := newTestClient(SCRAMSHA1, "juliet", "romeo")
	sf, _, err := n.Step(ctx, c.first())
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := c.final(sf)
	if _, done, err := n.Step(ctx, cf); err != nil || !done {
		t.Fatalf("done=%v err=%v", done, err)
	}

	// A second empty message is a protocol error.
	n = mustNegotiator(t, SCRAMSHA1, m.config())
	n.Step(ctx, nil)
	_, _, err = n.Step(ctx, nil)
	wantFailure(t, err, "malformed-request")
}

func TestStoreErrors(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	m.err = errors.New("disk on fire")
	n := mustNegotiator(t, SCRAMSHA256, m.config())
	_, _, err := n.Step(ctx, []byte("n,,n=juliet,r=abc"))
	f := wantFailure(t, err, "temporary-auth-failure")
	if strings.Contains(f.Text, "fire") {
		t.Errorf("store error leaked to the client: %q", f.Text)
	}
	p := mustNegotiator(t, Plain, m.config())
	_, _, err = p.Step(ctx, []byte("\x00juliet\x00romeo"))
	wantFailure(t, err, "temporary-auth-failure")

	// A corrupt credential is a server problem, not a wrong password.
	m = newMemStore()
	m.put("juliet", store.Credential{Mechanism: SCRAMSHA256, Salt: []byte("s"), Iterations: 1, StoredKey: []byte("short")})
	n = mustNegotiator(t, SCRAMSHA256, m.config())
	_, _, err = n.Step(ctx, []byte("n,,n=juliet,r=abc"))
	wantFailure(t, err, "temporary-auth-failure")
}

func TestNewNegotiator(t *testing.T) {
	m := newMemStore()
	for _, mech := range []string{"SCRAM-SHA-1-PLUS", "scram-sha-1", "DIGEST-MD5", "", "X-OAUTH2"} {
		_, err := NewNegotiator(mech, m.config())
		wantFailure(t, err, "invalid-mechanism")
	}
	_, err := NewNegotiator(SCRAMSHA1, Config{})
	wantFailure(t, err, "temporary-auth-failure")
}

func TestMechanisms(t *testing.T) {
	if got := Mechanisms(false); !reflect.DeepEqual(got, []string{SCRAMSHA256, SCRAMSHA1}) {
		t.Errorf("Mechanisms(false) = %v", got)
	}
	if got := Mechanisms(true); !reflect.DeepEqual(got, []string{SCRAMSHA256, SCRAMSHA1, Plain}) {
		t.Errorf("Mechanisms(true) = %v", got)
	}
	// Callers may modify the result.
	Mechanisms(true)[0] = "x"
	if Mechanisms(true)[0] != SCRAMSHA256 {
		t.Error("Mechanisms returns shared storage")
	}
}

func TestFailureError(t *testing.T) {
	if got := (&Failure{Condition: "aborted"}).Error(); got != "sasl: aborted" {
		t.Errorf("%q", got)
	}
	if got := (&Failure{Condition: "not-authorized", Text: "nope"}).Error(); got != "sasl: not-authorized: nope" {
		t.Errorf("%q", got)
	}
}
