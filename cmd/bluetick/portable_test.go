package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"bluetick/internal/backup"
	"bluetick/internal/pgtest"
)

// import and export refuse a data directory a server holds (its lock),
// naming the fix; once it is free they run, export → import moves the
// accounts (here from SQLite into PostgreSQL, the documented way to
// change stores), and a second import adds nothing.
func TestExportImportCommands(t *testing.T) {
	data := t.TempDir()
	if err := userCmd([]string{"add", "alice", "--password", "pw", "--data", data}); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "server.xml")
	unlock, err := backup.Lock(data) // what a running server holds
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{file, "--data", data}} {
		if err := exportCmd(args); err == nil || !strings.Contains(err.Error(), "stop the server first") {
			t.Fatalf("export while locked: %v", err)
		}
		if err := importCmd(args); err == nil || !strings.Contains(err.Error(), "stop the server first") {
			t.Fatalf("import while locked: %v", err)
		}
	}
	unlock()
	if err := exportCmd([]string{file, "--data", data}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(file); err != nil || !strings.Contains(string(b), "<user name='alice'>") {
		t.Fatalf("export: %v\n%s", err, b)
	}
	dsn := pgtest.Start(t)
	for i := 0; i < 2; i++ {
		if err := importCmd([]string{file, "--store", dsn}); err != nil {
			t.Fatalf("import %d: %v", i+1, err)
		}
	}
	if err := importCmd([]string{filepath.Join(t.TempDir(), "nothing.xml"), "--data", t.TempDir()}); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("import of a missing file: %v", err)
	}
	if err := importCmd([]string{"--data", data}); err == nil || !strings.Contains(err.Error(), "which files?") {
		t.Fatalf("import without files: %v", err)
	}
}
