package main

import (
	"os"
	"path/filepath"
	"testing"

	"bluetick/internal/pgtest"
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
