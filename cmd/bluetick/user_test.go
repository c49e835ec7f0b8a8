package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/pgtest"
	"bluetick/internal/store"
)

// With the store in PostgreSQL, account commands leave no data directory
// behind in the directory they run in; with SQLite they create it (the
// database lives there).
func TestUserCommandDataDir(t *testing.T) {
	dsn := pgtest.Start(t)
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{
		{"add", "alice", "--password", "pw", "--store", dsn},
		{"passwd", "alice", "--password", "pw2", "--store", dsn},
		{"list", "--store", dsn},
		{"del", "alice", "--store", dsn},
	} {
		if err := userCmd(args); err != nil {
			t.Fatalf("user %v: %v", args, err)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) > 0 {
		t.Fatalf("user commands on PostgreSQL created %v in the current directory", entries[0].Name())
	}

	if err := userCmd([]string{"add", "bob", "--password", "pw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "bluetick-data")); err != nil {
		t.Fatalf("SQLite: no data directory: %v", err)
	}
}

// `bluetick user info` shows the operator the failed logins since the
// last success, the throttle's state and the known addresses.
func TestUserInfoShowsFailedLogins(t *testing.T) {
	dir := t.TempDir()
	if err := userCmd([]string{"add", "alice", "--password", "pw", "--data", dir}); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.DataDir = dir
	st, err := openStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	evs := []store.LoginEvent{{User: "alice", At: now.Add(-time.Hour), Addr: "192.0.2.1", Success: true, Prefix: "192.0.2.1"}}
	for i := range 12 {
		evs = append(evs, store.LoginEvent{User: "alice", At: now.Add(time.Duration(i-12) * time.Second), Addr: fmt.Sprintf("10.0.0.%d", i), Stranger: true})
	}
	if err := st.RecordLogins(t.Context(), evs, store.LoginPolicy{StreakWindow: time.Hour, KeepKnown: 10}); err != nil {
		t.Fatal(err)
	}
	ua := store.UserAgent{ID: "d4565fa7-4d72-4749-b3d3-740edbf87770", Software: "AwesomeXMPP", Device: "Kiva's Phone", LastSeen: now, LastAddr: "192.0.2.7"}
	if err := st.PutUserAgent(t.Context(), "alice", ua, 0); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out := captureStdout(t, func() error { return userCmd([]string{"info", "alice", "--data", dir}) })
	for _, want := range []string{
		"alice@localhost",
		"last login:                 " + now.Add(-time.Hour).Format("2006-01-02 15:04:05 UTC") + " from 192.0.2.1",
		"failed logins since then:   12",
		"last failed login:          " + now.Add(-time.Second).Format("2006-01-02 15:04:05 UTC") + " from 10.0.0.11",
		"login throttle streak): 12; logins from new addresses refused until",
		"192.0.2.1",
		"devices (SASL2 user agents):",
		"d4565fa7-4d72-4749-b3d3-740edbf87770  \"AwesomeXMPP on Kiva's Phone\"  last " + now.Format("2006-01-02 15:04:05 UTC") + " from 192.0.2.7",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("user info lacks %q:\n%s", want, out)
		}
	}
	t.Log("\n" + out)
	if err := userCmd([]string{"info", "nobody", "--data", dir}); err == nil || !strings.Contains(err.Error(), "no user nobody") {
		t.Errorf("info for an absent account: %v", err)
	}
}

func captureStdout(t *testing.T, fn func() error) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdout
	os.Stdout = w
	err = fn()
	os.Stdout = old
	w.Close()
	b, _ := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A user types the full address: `bluetick user add alice@localhost`
// works as `alice` does, for every subcommand taking a name; an address
// on another domain is refused with the domain this server serves.
func TestUserCommandsTakeBareJID(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"add", "alice@localhost", "--password", "pw"},
		{"passwd", "Alice@LOCALHOST", "--password", "pw2"},
		{"info", "alice@localhost"},
		{"tokens", "list", "alice@localhost"},
		{"tokens", "revoke", "alice@localhost", "--all"},
	} {
		args = append(args, "--data", dir)
		captureStdout(t, func() error { return userCmd(args) })
	}
	out := captureStdout(t, func() error { return userCmd([]string{"list", "--data", dir}) })
	if out != "alice@localhost\n" {
		t.Fatalf("user list after add alice@localhost: %q", out)
	}
	for _, args := range [][]string{
		{"add", "bob@example.com", "--password", "pw"},
		{"del", "alice@example.com"},
		{"tokens", "list", "alice@example.com"},
	} {
		err := userCmd(append(args, "--data", dir))
		if err == nil || !strings.Contains(err.Error(), "example.com") || !strings.Contains(err.Error(), "serves localhost") {
			t.Errorf("user %v: want a refusal naming the served domain, got %v", args, err)
		}
	}
	if err := userCmd([]string{"del", "alice@localhost/phone", "--data", dir}); err == nil || !strings.Contains(err.Error(), "resource") {
		t.Errorf("user del with a resource: %v", err)
	}
	if err := userCmd([]string{"del", "alice@localhost", "--data", dir}); err != nil {
		t.Fatal(err)
	}
	if out := captureStdout(t, func() error { return userCmd([]string{"list", "--data", dir}) }); out != "" {
		t.Fatalf("user list after del alice@localhost: %q", out)
	}
}

// With PostgreSQL (cluster mode) backup and restore do nothing half-right:
// they say how to use PostgreSQL's own tools, and fail.
func TestBackupOnPostgresPrintsGuidance(t *testing.T) {
	for _, cmd := range []func([]string) error{backupCmd, restoreCmd} {
		err := cmd([]string{"b.tar.gz", "--store", "postgres://u@127.0.0.1:1/db", "--data", t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "pg_dump") || !strings.Contains(err.Error(), "docs/operations.md") {
			t.Errorf("backup/restore on PostgreSQL: %v", err)
		}
	}
}
