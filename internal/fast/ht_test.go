package fast

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"
)

// cb32 is the channel-binding data of the vectors: bytes 1..32.
func cb32() []byte {
	b := make([]byte, 32)
	for i := range b {
		b[i] = byte(i + 1)
	}
	return b
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHTVectors checks the HT-SHA-256 messages against values computed
// independently (Python's hmac module: hmac.new(token, b"Initiator" + cb,
// sha256)); the draft has no test vectors. The first token is the one of
// XEP-0484's example (36 characters: used as the HMAC key as is), the
// second is longer than the 64-byte block, as Bluetick's tokens are.
func TestHTVectors(t *testing.T) {
	for _, v := range []struct {
		token                string
		cb                   []byte
		initiator, responder string
	}{
		{"WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm", nil,
			"9097787461a184e0fa84ec00c1381190b6c4d16a8ec4453c7b2ac5e7fcf935ed",
			"4e513409631474863b986c9f3e8c1e27ca29d1d7ab9ed4097e7afd6007bf9c62"},
		{"WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm", cb32(),
			"d5868ce69cefe00fece0015a1c756dc07f26bd9091dcac34fe489444afd9c759",
			"26d5cb492a3c45de64a1a40d92c63d17ad64f297509705d07ce1d4d25637794f"},
		{"R3VyIHpiZmcgbnl2aXIgdmYgZ3VyIGp2eXFyZmcuR3VyIHpiZmcgbnl2aXIgdmYgZ3VyIGp2eXFyZmcu", nil,
			"18ca24170891857c354d9908f20ff258797107f4de669e3c764453fca4ca54ac",
			"58ac37c060bf9da2e51207e8c284f9c14d12783080138f1caef4cc7fcab72c87"},
		{"R3VyIHpiZmcgbnl2aXIgdmYgZ3VyIGp2eXFyZmcuR3VyIHpiZmcgbnl2aXIgdmYgZ3VyIGp2eXFyZmcu", cb32(),
			"3a18e721190a0dd79391e50a0f19a6567957df16c513fdc3ae1ab7ca7f16aa2d",
			"6a12eac216a086e4494292d279c313af6db4668fdb3e91a9bab42ba7fb3591e6"},
	} {
		in := InitialResponse("juliet", v.token, v.cb)
		want := append([]byte("juliet\x00"), unhex(t, v.initiator)...)
		if !bytes.Equal(in, want) {
			t.Errorf("InitialResponse(%.6s..., cb %d bytes) = %x, want %x", v.token, len(v.cb), in, want)
		}
		if got := ServerFinal(v.token, v.cb); !bytes.Equal(got, unhex(t, v.responder)) {
			t.Errorf("ServerFinal(%.6s..., cb %d bytes) = %x, want %s", v.token, len(v.cb), got, v.responder)
		}
		if len(v.token) > 64 {
			// The server's side, from the stored hash only.
			if got := htMAC(hashToken(v.token), initiator, v.cb); !bytes.Equal(got, unhex(t, v.initiator)) {
				t.Errorf("initiator MAC from the stored hash = %x, want %s", got, v.initiator)
			}
			if got := htMAC(hashToken(v.token), responder, v.cb); !bytes.Equal(got, unhex(t, v.responder)) {
				t.Errorf("responder MAC from the stored hash = %x, want %s", got, v.responder)
			}
		}
	}
}

// TestStoredHashIsHMACKey is the property the store relies on: for every
// token Bluetick issues, HMAC keyed with SHA-256(token) equals HMAC keyed
// with the token (RFC 2104 hashes keys longer than the block).
func TestStoredHashIsHMACKey(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		tok, h := newToken()
		if len(tok) <= sha256.BlockSize {
			t.Fatalf("token of %d characters: HMAC would not hash it, the stored hash would not verify", len(tok))
		}
		if seen[tok] {
			t.Fatal("newToken repeated a token")
		}
		seen[tok] = true
		if s := sha256.Sum256([]byte(tok)); !bytes.Equal(h, s[:]) {
			t.Fatal("newToken's hash is not SHA-256 of the token")
		}
		cb := []byte{byte(i)}
		if !bytes.Equal(htMAC([]byte(tok), initiator, cb), htMAC(h, initiator, cb)) {
			t.Fatalf("HMAC(token) != HMAC(SHA-256(token)) for %q", tok)
		}
	}
}

func TestParseInitial(t *testing.T) {
	mac := bytes.Repeat([]byte{0}, 32) // NULs inside the HMAC are fine
	ok := append([]byte("alice\x00"), mac...)
	for _, c := range []struct {
		name string
		in   []byte
		user string
		err  error
	}{
		{"ok", ok, "alice", nil},
		{"utf8 name", append([]byte("j\u00fcrgen\x00"), mac...), "j\u00fcrgen", nil},
		{"empty", nil, "", errNoNUL},
		{"no NUL", []byte("alice"), "", errNoNUL},
		{"empty authcid", append([]byte{0}, mac...), "", errNoAuthcid},
		{"short mac", append([]byte("alice\x00"), mac[:31]...), "", errMACSize},
		{"long mac", append(append([]byte("alice\x00"), mac...), 1), "", errMACSize},
		{"bad utf8", append([]byte("al\xffce\x00"), mac...), "", errBadUTF8},
		{"too long", append(bytes.Repeat([]byte("a"), 1100), append([]byte{0}, mac...)...), "", errTooLong},
	} {
		user, m, err := parseInitial(c.in)
		if !errors.Is(err, c.err) || user != c.user {
			t.Errorf("%s: parseInitial = %q, %v; want %q, %v", c.name, user, err, c.user, c.err)
		}
		if err == nil && !bytes.Equal(m, mac) {
			t.Errorf("%s: mac = %x", c.name, m)
		}
	}
}
