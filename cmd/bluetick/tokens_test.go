package main

import (
	"context"
	"strings"
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/fast"
	"bluetick/internal/pgtest"
	"bluetick/internal/store"
)

// issueTokens gives alice's phone and tablet a token each, as a running
// server would after their password logins.
func issueTokens(t *testing.T, cfg config.Config) {
	t.Helper()
	st, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	svc := fast.New(fast.Config{Fast: cfg.Fast}, st, nil)
	for _, c := range []fast.Client{
		{AgentID: "phone-1", Software: "Conversations", Device: "Pixel 9"},
		{AgentID: "tablet-1", Software: "Monal"},
	} {
		if _, err := svc.Issue(context.Background(), "alice", c, fast.HTSHA256Expr); err != nil {
			t.Fatal(err)
		}
	}
}

func tokensOf(t *testing.T, cfg config.Config, user string) []store.FastToken {
	t.Helper()
	st, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	toks, err := st.FastTokens(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return toks
}

// TestUserTokens drives `bluetick user tokens list|revoke` and checks
// that `user passwd` and `user del` revoke and delete the tokens, on
// SQLite and on PostgreSQL (where a cluster's nodes keep them).
func TestUserTokens(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			flags := []string{"--data", dir}
			cfg := config.Default()
			cfg.DataDir = dir
			if backend == "postgres" {
				cfg.Store = pgtest.Start(t)
				flags = []string{"--store", cfg.Store}
			}
			run := func(args ...string) string {
				t.Helper()
				return captureStdout(t, func() error { return userCmd(append(args, flags...)) })
			}
			fails := func(want string, args ...string) {
				t.Helper()
				err := userCmd(append(args, flags...))
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("user %v: %v, want an error with %q", args, err, want)
				}
			}
			run("add", "alice", "--password", "pw")
			run("add", "bob", "--password", "pw")
			out := run("tokens", "list", "alice")
			if !strings.Contains(out, "alice@localhost: no device holds a login token") {
				t.Fatalf("empty list:\n%s", out)
			}
			issueTokens(t, cfg)
			out = run("tokens", "list", "alice")
			for _, want := range []string{"2 device(s)", "phone-1", "Conversations", "Pixel 9", "tablet-1", "Monal", "HT-SHA-256-EXPR"} {
				if !strings.Contains(out, want) {
					t.Errorf("list lacks %q:\n%s", want, out)
				}
			}
			t.Log("\n" + out)

			fails("--agent ID, or --all", "tokens", "revoke", "alice")
			fails("--agent ID, or --all", "tokens", "revoke", "alice", "--agent", "phone-1", "--all")
			fails("no live token for client \"nope\"", "tokens", "revoke", "alice", "--agent", "nope")
			fails("no user nobody", "tokens", "list", "nobody")
			fails("say list or revoke", "tokens", "show", "alice")

			out = run("tokens", "revoke", "alice", "--agent", "phone-1")
			if !strings.Contains(out, "revoked 1 login token(s) of alice@localhost") {
				t.Fatalf("revoke:\n%s", out)
			}
			out = run("tokens", "list", "alice")
			if strings.Contains(out, "phone-1") || !strings.Contains(out, "tablet-1") {
				t.Fatalf("list after revoking the phone:\n%s", out)
			}
			out = run("tokens", "list", "alice", "--all")
			if !strings.Contains(out, "revoked (admin)") || !strings.Contains(out, "live, not used yet") {
				t.Fatalf("list --all:\n%s", out)
			}

			// A password change revokes the rest.
			out = run("passwd", "alice", "--password", "new")
			if !strings.Contains(out, "login tokens are revoked") {
				t.Fatalf("passwd:\n%s", out)
			}
			for _, tk := range tokensOf(t, cfg, "alice") {
				if tk.Revoked.IsZero() {
					t.Fatalf("token of %s still live after passwd", tk.AgentID)
				}
				if tk.AgentID == "tablet-1" && tk.RevokeReason != fast.RevokedPassword {
					t.Fatalf("tablet's token revoked for %q, want %q", tk.RevokeReason, fast.RevokedPassword)
				}
			}

			// --all, then deletion removes every row.
			issueTokens(t, cfg)
			out = run("tokens", "revoke", "alice", "--all")
			if !strings.Contains(out, "revoked 2 login token(s)") {
				t.Fatalf("revoke --all:\n%s", out)
			}
			run("del", "alice")
			if n := len(tokensOf(t, cfg, "alice")); n != 0 {
				t.Fatalf("%d tokens left after user del", n)
			}
		})
	}
}
