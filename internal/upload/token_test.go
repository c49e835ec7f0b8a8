package upload

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func TestTokenRoundTrip(t *testing.T) {
	s, _ := NewSigner(testSecret)
	now := time.Now()
	id := newID()
	tok := s.Sign(id, 1234, "image/png", now.Add(time.Minute))
	if err := s.Verify(tok, id, 1234, "image/png", now); err != nil {
		t.Fatalf("valid token refused: %v", err)
	}
}

func TestTokenForged(t *testing.T) {
	s, _ := NewSigner(testSecret)
	other, _ := NewSigner([]byte("another-secret-another-secret-xx"))
	now := time.Now()
	id := newID()
	exp := now.Add(time.Minute)
	tok := s.Sign(id, 1234, "image/png", exp)
	cases := map[string]string{
		"other key":        other.Sign(id, 1234, "image/png", exp),
		"other slot":       s.Sign(newID(), 1234, "image/png", exp),
		"other size":       s.Sign(id, 1235, "image/png", exp),
		"other type":       s.Sign(id, 1234, "text/html", exp),
		"extended expiry":  strings.Replace(tok, "v1."+itoa(exp.Unix()), "v1."+itoa(exp.Unix()+3600), 1),
		"flipped mac char": tok[:len(tok)-2] + flip(tok[len(tok)-2]) + tok[len(tok)-1:],
		"empty":            "",
		"no version":       strings.TrimPrefix(tok, "v1."),
		"truncated mac":    tok[:len(tok)-5],
	}
	for name, forged := range cases {
		if err := s.Verify(forged, id, 1234, "image/png", now); err != ErrBadToken {
			t.Errorf("%s: Verify = %v, want ErrBadToken", name, err)
		}
	}
}

func TestTokenExpired(t *testing.T) {
	s, _ := NewSigner(testSecret)
	now := time.Now()
	id := newID()
	tok := s.Sign(id, 10, "image/png", now.Add(5*time.Minute))
	if err := s.Verify(tok, id, 10, "image/png", now.Add(5*time.Minute+2*time.Second)); err != ErrTokenExpired {
		t.Fatalf("expired token: %v, want ErrTokenExpired", err)
	}
}

func TestShortSecretRefused(t *testing.T) {
	if _, err := NewSigner([]byte("short")); err == nil {
		t.Fatal("short secret accepted")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

// FuzzTokenAndPath feeds arbitrary tokens and URL paths to the parsers a
// request reaches before anything is trusted: they must never panic, only
// accept well-formed input, and a token must verify only for what it was
// signed for.
func FuzzTokenAndPath(f *testing.F) {
	s, _ := NewSigner(testSecret)
	id := "abcdefghijklmnopqrstuvwxyz234567"
	f.Add(s.Sign(id, 5, "image/png", time.Unix(2000000000, 0)), "/upload/"+id+"/a.png")
	f.Add("v1.1.", "/upload/../../etc/passwd")
	f.Add("v1.-1.AAAA", "/upload/"+id+"/..")
	f.Add("Bearer x", "/upload/"+id+"/a/b")
	f.Add("v1.99999999999999999999.x", "/upload//x")
	f.Fuzz(func(t *testing.T, tok, path string) {
		if exp, mac, err := parseToken(tok); err == nil {
			if len(mac) != 32 || exp <= 0 {
				t.Fatalf("parseToken(%q) accepted exp %d mac %d bytes", tok, exp, len(mac))
			}
			if s.Verify(tok, id, 5, "image/png", time.Unix(0, 0)) == nil && tok != s.Sign(id, 5, "image/png", time.Unix(exp, 0)) {
				t.Fatalf("non-canonical token %q verified", tok)
			}
		}
		bearer(tok)
		gotID, name, err := parseSlotPath(path)
		if err == nil {
			if !validID(gotID) || strings.ContainsAny(name, "/\\") || name == ".." || name == "." || name == "" {
				t.Fatalf("parseSlotPath(%q) = %q, %q", path, gotID, name)
			}
			if !validKey(metaKey(gotID)) || !validKey(tmpKey(gotID)) {
				t.Fatalf("id %q makes an invalid key", gotID)
			}
		}
		if validKey(path) && (strings.Contains(path, "..") && strings.Contains("/"+path+"/", "/../")) {
			t.Fatalf("validKey accepted %q", path)
		}
	})
}
