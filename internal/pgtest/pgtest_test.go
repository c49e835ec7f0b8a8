package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestMain(m *testing.M) { os.Exit(Main(m)) }

func TestWithParam(t *testing.T) {
	for _, tc := range []struct{ dsn, key, value, want string }{
		{"postgres://u:p@h:1/db?sslmode=disable", "dbname", "x", "postgres://u:p@h:1/x?sslmode=disable"},
		{"postgresql://u@h/db", "search_path", "s1", "postgresql://u@h/db?search_path=s1"},
		{"postgres://u@h/db?search_path=a", "search_path", "b", "postgres://u@h/db?search_path=b"},
		{"host=h dbname=db", "dbname", "x", "host=h dbname=db dbname='x'"},
		{"", "dbname", `it's\`, `dbname='it\'s\\'`},
	} {
		if got := WithParam(tc.dsn, tc.key, tc.value); got != tc.want {
			t.Errorf("WithParam(%q, %s, %q) = %q, want %q", tc.dsn, tc.key, tc.value, got, tc.want)
		}
	}
	// pgx reads back what was set, in both forms.
	for _, dsn := range []string{"postgres://u@h/db", "host=h dbname=db"} {
		cfg, err := pgx.ParseConfig(WithParam(WithParam(dsn, "dbname", "x'y"), "search_path", "s1"))
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Database != "x'y" || cfg.RuntimeParams["search_path"] != "s1" {
			t.Errorf("%q: database %q, search_path %q", dsn, cfg.Database, cfg.RuntimeParams["search_path"])
		}
	}
}

// TestStart checks that each caller gets its own empty database on one
// server, as a superuser, and that Schema's search_path takes effect.
func TestStart(t *testing.T) {
	ctx := context.Background()
	a, b := Start(t), Start(t)
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var dba, dbb, enc string
	var super bool
	ca.QueryRow(ctx, `SELECT current_database(), current_setting('server_encoding'), rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&dba, &enc, &super)
	cb.QueryRow(ctx, `SELECT current_database()`).Scan(&dbb)
	if dba == dbb || dba == "" || enc != "UTF8" || !super {
		t.Fatalf("databases %q and %q, encoding %s, superuser %v", dba, dbb, enc, super)
	}
	if _, err := ca.Exec(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
	var n int
	cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 't'`).Scan(&n)
	if n != 0 {
		t.Fatal("a table created in one caller's database is visible in another's")
	}

	s := Schema(t, a)
	cs, err := pgx.Connect(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close(ctx)
	var schema string
	cs.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema)
	if !strings.HasPrefix(schema, "s") || schema == "public" {
		t.Fatalf("current_schema %q with %q", schema, s)
	}
	if os.Getenv(EnvDSN) == "" {
		// The throwaway server listens on loopback only.
		var addr string
		ca.QueryRow(ctx, `SELECT current_setting('listen_addresses')`).Scan(&addr)
		if addr != "127.0.0.1" {
			t.Fatalf("listen_addresses = %q", addr)
		}
	}
}
