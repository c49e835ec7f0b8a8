// Package pgtest gives tests a real PostgreSQL server: a throwaway one it
// starts from the locally installed binaries, or the one named by
// BLUETICK_POSTGRES_DSN. Each caller of Start gets a fresh, empty database
// on it, dropped when the test ends.
//
// Starting a server (initdb plus start-up) takes a second or two, so one
// server is shared by all tests of a test binary that call Start while it
// runs. For a package, the simplest is to let it live for the whole binary:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// Without that TestMain, the server is stopped (and its files removed) as
// soon as no test that called Start is still running, so a binary never
// leaves a server behind, at the price of starting a new one for each
// sequential top-level test.
//
// # Environment
//
//   - BLUETICK_POSTGRES_DSN: use this server instead of starting one. The
//     role needs CREATEDB; databases are created and dropped on it.
//   - BLUETICK_SKIP_POSTGRES=1: skip, rather than fail, the tests that need
//     PostgreSQL when its binaries are not installed.
//   - BLUETICK_PGTEST_FSYNC=on: start the throwaway server with fsync on
//     (default off: nothing it holds must survive a crash, and fsync would
//     make every commit wait for the disk). For benchmarks that should see
//     real commit costs.
//
// The throwaway server listens on 127.0.0.1 only, on a free port, and on a
// Unix socket inside its own temporary directory; its superuser has a
// random password. When the tests run as root it runs as the postgres user
// (or nobody), since PostgreSQL refuses to run as root.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Environment variables read by the package (see the package doc).
const (
	EnvDSN   = "BLUETICK_POSTGRES_DSN"
	EnvSkip  = "BLUETICK_SKIP_POSTGRES"
	EnvFsync = "BLUETICK_PGTEST_FSYNC"
)

// errNotInstalled marks a failure to find the PostgreSQL binaries, the one
// failure BLUETICK_SKIP_POSTGRES turns into a skip.
var errNotInstalled = errors.New("PostgreSQL is not installed (on Debian or Ubuntu: apt-get install -y postgresql; or set " + EnvSkip + "=1 to skip these tests, or " + EnvDSN + " to use a running server)")

// The shared server. mu is held while starting it, so concurrent first
// callers wait for the one start instead of racing.
var (
	mu       sync.Mutex
	shared   *server
	startErr error // a failed start is not retried: the cause will not go away
	refs     int   // callers of Start whose tests are still running
	inMain   bool  // Main is running the tests: keep the server until it returns
)

// Main runs the tests of m and then stops the shared server, which thus
// serves every test of the binary. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
func Main(m *testing.M) int {
	mu.Lock()
	inMain = true
	mu.Unlock()
	code := m.Run()
	mu.Lock()
	inMain = false
	if refs == 0 {
		stopShared()
	}
	mu.Unlock()
	return code
}

// Start returns the DSN of a new, empty database (UTF8 encoding) on the
// shared test server, owned by a superuser, and drops the database when t
// ends. It fails t if no server can be had.
func Start(t testing.TB) (dsn string) {
	t.Helper()
	srv, err := acquire()
	if err != nil {
		if errors.Is(err, errNotInstalled) && os.Getenv(EnvSkip) == "1" {
			t.Skipf("pgtest: %v", err)
		}
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(release)

	name := srv.newName("test")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// template0 so that the encoding can be chosen whatever the server's
	// default is; the locale stays the server's, so tests on a server with
	// a non-C locale exercise the store's explicit collations.
	if _, err := srv.admin.Exec(ctx, `CREATE DATABASE `+pgx.Identifier{name}.Sanitize()+` TEMPLATE template0 ENCODING 'UTF8'`); err != nil {
		t.Fatalf("pgtest: creating database %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends the connections a test left open (PostgreSQL 13+).
		if _, err := srv.admin.Exec(ctx, `DROP DATABASE IF EXISTS `+pgx.Identifier{name}.Sanitize()+` WITH (FORCE)`); err != nil {
			t.Logf("pgtest: dropping database %s: %v", name, err)
		}
	})
	return WithParam(srv.dsn, "dbname", name)
}

// Schema creates a new, empty schema in the database at dsn and returns dsn
// with search_path set to it, so that whatever connects with it creates its
// tables there. Far cheaper than a database (a few milliseconds, against
// tens for CREATE DATABASE), for tests that want a fresh store per subtest.
// The schema is dropped with its database.
func Schema(t testing.TB, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	defer conn.Close(ctx)
	name := fmt.Sprintf("s%d_%s", schemaSeq.Add(1), randomHex(4))
	if _, err := conn.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatalf("pgtest: creating schema %s: %v", name, err)
	}
	return WithParam(dsn, "search_path", name)
}

var schemaSeq atomic.Int64

// WithParam returns dsn, a libpq connection string in URL or keyword/value
// form, with the parameter key set to value (replacing any earlier value).
// dbname and search_path are the useful ones: pgx sends any parameter it
// does not know itself to the server as a session setting.
func WithParam(dsn, key, value string) string {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err == nil {
			if key == "dbname" {
				u.Path = "/" + value
				u.RawPath = ""
			} else {
				q := u.Query()
				q.Set(key, value)
				u.RawQuery = q.Encode()
			}
			return u.String()
		}
	}
	// Keyword/value: a later setting of a key overrides an earlier one.
	quoted := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value)
	return strings.TrimSpace(dsn + " " + key + "='" + quoted + "'")
}

// server is a PostgreSQL server: one this package started (cmd != nil) or
// the one of BLUETICK_POSTGRES_DSN.
type server struct {
	dsn    string        // superuser DSN, database postgres
	admin  *pgxpool.Pool // for CREATE and DROP DATABASE
	prefix string        // of database names, unique to this process

	cmd    *exec.Cmd
	exited chan struct{} // closed when the server process has exited
	dir    string        // temporary directory: data, socket, log
	log    string        // the server's log file

	seq atomic.Int64
}

func (s *server) newName(kind string) string {
	return fmt.Sprintf("%s_%s_%d", s.prefix, kind, s.seq.Add(1))
}

func acquire() (*server, error) {
	mu.Lock()
	defer mu.Unlock()
	if startErr != nil {
		return nil, startErr
	}
	if shared == nil {
		s, err := newServer()
		if err != nil {
			startErr = err
			return nil, err
		}
		shared = s
	}
	refs++
	return shared, nil
}

func release() {
	mu.Lock()
	defer mu.Unlock()
	refs--
	if refs == 0 && !inMain {
		stopShared()
	}
}

// stopShared stops the shared server; mu must be held. A later Start
// starts a new one.
func stopShared() {
	if shared != nil {
		shared.stop()
		shared = nil
	}
}

func newServer() (*server, error) {
	s := &server{
		// Names on a shared external server must not collide with those
		// of other test binaries running at the same time, here or on
		// another machine.
		prefix: "bluetick_" + randomHex(4),
	}
	if dsn := os.Getenv(EnvDSN); dsn != "" {
		s.dsn = dsn
	} else if err := s.start(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(s.dsn)
	if err != nil {
		s.stop()
		return nil, err
	}
	cfg.MaxConns = 4
	s.admin, err = pgxpool.NewWithConfig(ctx, cfg)
	if err == nil {
		err = s.admin.Ping(ctx)
	}
	if err != nil {
		s.stop()
		return nil, fmt.Errorf("connecting to the test server: %w", err)
	}
	return s, nil
}

// start runs initdb into a new temporary directory and starts postgres on
// it.
func (s *server) start() (err error) {
	bin, err := findBinaries()
	if err != nil {
		return err
	}
	cred, err := serverCredential()
	if err != nil {
		return err
	}
	removeStale()
	// Not t.TempDir: the server outlives the test that first asked for it.
	s.dir, err = os.MkdirTemp("", dirPrefix)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if cred != nil {
		if err := os.Chown(s.dir, cred.uid, cred.gid); err != nil {
			return err
		}
	}

	password := randomHex(16)
	pwfile := filepath.Join(s.dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(password+"\n"), 0o600); err != nil {
		return err
	}
	if cred != nil {
		if err := os.Chown(pwfile, cred.uid, cred.gid); err != nil {
			return err
		}
	}
	data := filepath.Join(s.dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"),
		"--pgdata="+data,
		"--username=postgres",
		"--pwfile="+pwfile,
		"--auth=scram-sha-256",
		"--encoding=UTF8",
		"--no-locale", // C: no dependency on the locales installed
		"--no-sync",   // nothing here must survive a crash
	)
	setup(initdb, s.dir, cred)
	if out, err := initdb.CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %v\n%s", err, out)
	}
	os.Remove(pwfile)

	fsync := "off"
	if os.Getenv(EnvFsync) == "on" {
		fsync = "on"
	}
	// The port is free when we look, but another process may take it
	// before the server binds it: try a few.
	for attempt := 0; ; attempt++ {
		port, err := freePort()
		if err != nil {
			return err
		}
		dsn := fmt.Sprintf("postgres://postgres:%s@127.0.0.1:%d/postgres?sslmode=disable", password, port)
		err = s.run(bin, data, port, dsn, fsync, cred)
		if err == nil {
			s.dsn = dsn
			return nil
		}
		if attempt == 2 || !strings.Contains(err.Error(), "could not bind") && !strings.Contains(err.Error(), "could not create any TCP/IP sockets") {
			return err
		}
	}
}

// dirPrefix names the servers' temporary directories.
const dirPrefix = "bluetick-pgtest-"

// removeStale removes the directories of servers whose test binary was
// killed before it could clean up (Pdeathsig stops the server itself, but
// its files stay): those more than an hour old whose server is not
// running. Best effort; a directory younger than that may belong to a
// binary starting its server right now.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil || time.Since(fi.ModTime()) < time.Hour {
			continue
		}
		if pid, err := os.ReadFile(filepath.Join(d, "data", "postmaster.pid")); err == nil {
			// The first line is the postmaster's PID.
			n, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pid), "\n", 2)[0]))
			if n > 0 && processAlive(n) {
				continue
			}
		}
		os.RemoveAll(d)
	}
}

// run starts postgres on port and waits until it accepts connections.
func (s *server) run(bin, data string, port int, dsn, fsync string, cred *runAs) error {
	s.log = filepath.Join(s.dir, fmt.Sprintf("postgres-%d.log", port))
	logf, err := os.Create(s.log)
	if err != nil {
		return err
	}
	defer logf.Close() // the child has its own descriptor
	cmd := exec.Command(filepath.Join(bin, "postgres"),
		"-D", data,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "port="+strconv.Itoa(port),
		"-c", "unix_socket_directories="+s.dir,
		"-c", "fsync="+fsync,
		"-c", "full_page_writes="+fsync,
		"-c", "max_connections=200", // parallel tests with a pool each
		"-c", "shared_buffers=64MB",
		"-c", "logging_collector=off",
		"-c", "log_min_messages=warning",
		"-c", "log_min_error_statement=panic", // failed statements are the tests' business
	)
	setup(cmd, s.dir, cred)
	cmd.Stdout, cmd.Stderr = logf, logf
	exited := make(chan struct{})
	if err := startDaemon(cmd, exited); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	s.cmd, s.exited = cmd, exited

	// Wait for it to accept connections, or to exit.
	deadline := time.Now().Add(60 * time.Second)
	for !ready(dsn) {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("postgres exited at start-up:\n%s", tail(s.log))
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stopProcess()
			return fmt.Errorf("postgres did not accept connections within a minute:\n%s", tail(s.log))
		}
	}
	return nil
}

// ready reports whether a connection to dsn succeeds. Until the server
// listens it is refused, and until it has finished starting it fails with
// "the database system is starting up".
func ready(dsn string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return false
	}
	conn.Close(ctx)
	return true
}

// stop shuts the server down and removes its files.
func (s *server) stop() {
	if s.admin != nil {
		s.admin.Close()
	}
	s.stopProcess()
	if s.dir != "" {
		os.RemoveAll(s.dir)
	}
}

// stopProcess asks postgres for a fast shutdown (SIGINT: disconnect the
// clients, checkpoint, exit), and kills it if that takes too long.
func (s *server) stopProcess() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		s.cmd.Process.Signal(syscall.SIGQUIT) // immediate shutdown
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	s.cmd = nil
}

// findBinaries returns the directory holding initdb and postgres: the
// newest of Debian's /usr/lib/postgresql/<version>/bin, or else wherever
// PATH has initdb (other systems install them on PATH).
func findBinaries() (string, error) {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) int {
		v, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return version(b) - version(a) })
	for _, d := range dirs {
		if isExec(filepath.Join(d, "initdb")) && isExec(filepath.Join(d, "postgres")) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err := filepath.EvalSymlinks(p); err == nil {
			d := filepath.Dir(p)
			if isExec(filepath.Join(d, "postgres")) {
				return d, nil
			}
		}
	}
	return "", errNotInstalled
}

func isExec(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

// setup gives a server command its directory, a clean environment and, as
// root, the unprivileged user to run as. The working directory matters:
// initdb and postgres resolve their own path from it, and the unprivileged
// user may not be able to enter the test's.
func setup(cmd *exec.Cmd, dir string, cred *runAs) {
	cmd.Dir = dir
	env := []string{"LC_ALL=C", "TZ=UTC"}
	for _, kv := range os.Environ() {
		// PG* variables (PGDATA, PGPORT, ...) would steer the server.
		if !strings.HasPrefix(kv, "PG") && !strings.HasPrefix(kv, "LC_") && !strings.HasPrefix(kv, "LANG") && !strings.HasPrefix(kv, "TZ=") {
			env = append(env, kv)
		}
	}
	cmd.Env = env
	cmd.SysProcAttr = sysProcAttr(cred)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// tail returns the end of a log file, for error messages.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
