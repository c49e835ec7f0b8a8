package turn

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Vectors computed independently with
// printf %s USERNAME | openssl dgst -sha1 -hmac SECRET -binary | base64,
// which is how coturn derives the password under use-auth-secret.
func TestPasswordMatchesCoturnScheme(t *testing.T) {
	cases := []struct{ secret, username, want string }{
		{"north-secret", "1700000000:alice@localhost", "j9Fj9s1RLMfTNRlAU54oxIMHCgs="},
		{"north-secret", "4102444800:bob@example.com", "OHfYOOidbW1jBoYSSk+cNRYnTtw="},
		{"north-secret", "1:x", "msuDm72R8YyCgH1sEU5jA2ov6wc="},
		{"logen", "1433895918:john", "pQTV0h6bQxGvwcf84+LoslAxwwo="},
	}
	for _, c := range cases {
		if got := Password(c.secret, c.username); got != c.want {
			t.Errorf("Password(%q, %q) = %q, want %q", c.secret, c.username, got, c.want)
		}
	}
}

func TestIssueAndCheck(t *testing.T) {
	now := time.Unix(1700000000, 500_000_000)
	c := Issue("north-secret", "alice@localhost", now, 24*time.Hour)
	if want := strconv.FormatInt(1700000000+86400, 10) + ":alice@localhost"; c.Username != want {
		t.Fatalf("username %q, want %q", c.Username, want)
	}
	if !c.Expires.Equal(time.Unix(1700000000+86400, 0)) {
		t.Fatalf("expires %v", c.Expires)
	}
	pw, err := Check("north-secret", c.Username, now.Add(time.Hour))
	if err != nil || pw != c.Password {
		t.Fatalf("Check = %q, %v; want %q", pw, err, c.Password)
	}
	if _, err := Check("north-secret", c.Username, c.Expires); !errors.Is(err, ErrExpired) {
		t.Fatalf("at expiry: %v, want ErrExpired", err)
	}
	// Another secret gives another password: the server's key would not
	// verify the client's MESSAGE-INTEGRITY.
	if pw, _ := Check("other", c.Username, now); pw == c.Password {
		t.Fatal("password independent of the secret")
	}
}

func TestParseUsername(t *testing.T) {
	good := []struct {
		in   string
		exp  int64
		user string
	}{
		{"1700000000:alice@localhost", 1700000000, "alice@localhost"},
		{"0:a", 0, "a"},
		{"12:a:b", 12, "a:b"}, // an IPv6 domain keeps its colons in the user part
	}
	for _, g := range good {
		exp, user, err := ParseUsername(g.in)
		if err != nil || exp.Unix() != g.exp || user != g.user {
			t.Errorf("ParseUsername(%q) = %v, %q, %v", g.in, exp.Unix(), user, err)
		}
	}
	for _, bad := range []string{"", "alice", ":alice", "17:", "-1:alice", "+1:alice", " 1:alice", "1x:alice", "1e9:alice", strings.Repeat("9", 19) + ":a"} {
		if _, _, err := ParseUsername(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseUsername(%q): %v, want ErrMalformed", bad, err)
		}
	}
}

// FuzzParseUsername: never panics; accepted input round-trips exactly.
func FuzzParseUsername(f *testing.F) {
	for _, s := range []string{"1700000000:alice@localhost", ":", "1:", "99999999999999999:x", "0:a:b", "\xff:\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		exp, user, err := ParseUsername(s)
		if err != nil {
			return
		}
		if exp.Unix() < 0 {
			t.Fatalf("%q: negative expiry %d", s, exp.Unix())
		}
		ts, _, _ := strings.Cut(s, ":")
		n, perr := strconv.ParseInt(ts, 10, 64)
		if perr != nil || n != exp.Unix() || ts+":"+user != s {
			t.Fatalf("%q: parsed %d %q", s, exp.Unix(), user)
		}
	})
}
