package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
)

// Snapshot writes a copy of the database at src to dst, a file that must
// not exist yet, with VACUUM INTO. It opens src read-only (it never
// migrates nor writes it) and may run while a server writes to it: in WAL
// mode VACUUM INTO reads inside one read transaction, so the copy is the
// database as of the last commit before that transaction began — every
// transaction whole or absent, whatever commits meanwhile. Writers are not
// blocked; only the WAL cannot be checkpointed past the snapshot until it
// ends, so it grows for that long.
func Snapshot(ctx context.Context, src, dst string) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("sqlite: no database to copy: %w", err)
	}
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("sqlite: %s exists", dst)
	}
	params := url.Values{}
	params.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	params.Set("mode", "ro")
	db, err := sql.Open("sqlite", "file:"+escapePath(src)+"?"+params.Encode())
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, dst); err != nil {
		os.Remove(dst)
		return fmt.Errorf("sqlite: copying %s: %w", src, err)
	}
	return nil
}

// Summary is what a sealed copy holds.
type Summary struct {
	Users   int64 // accounts
	Offline int64 // messages waiting in the offline store
	Bytes   int64 // the file's size
}

// Seal makes the copy at path a self-contained file and checks it: it
// switches it to the rollback journal (no -wal or -shm file beside it
// holds any of its data), runs SQLite's quick_check, and counts what it
// holds. Run it when nothing else has the file open.
func Seal(ctx context.Context, path string) (Summary, error) {
	var sum Summary
	db, err := sql.Open("sqlite", "file:"+escapePath(path))
	if err != nil {
		return sum, fmt.Errorf("sqlite: %w", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `PRAGMA journal_mode=DELETE`); err != nil {
		return sum, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := quickCheck(ctx, db); err != nil {
		return sum, fmt.Errorf("sqlite: %s: %w", path, err)
	}
	if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM users), (SELECT count(*) FROM offline)`).Scan(&sum.Users, &sum.Offline); err != nil {
		return sum, fmt.Errorf("sqlite: %s is not a Bluetick database: %w", path, err)
	}
	if err := db.Close(); err != nil {
		return sum, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return sum, err
	}
	sum.Bytes = fi.Size()
	return sum, nil
}

// quickCheck runs SQLite's quick_check on db.
func quickCheck(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return err
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if s != "ok" {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(problems) > 0 {
		return errors.New("damaged: " + strings.Join(problems[:min(len(problems), 5)], "; "))
	}
	return nil
}

// escapePath quotes path for a file: URI, so that a '?' or '#' in it is
// not taken for the start of the parameters.
func escapePath(path string) string {
	return strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
}
