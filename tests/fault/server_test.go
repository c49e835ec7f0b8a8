// Package fault_test holds end-to-end fault tests of Bluetick's delivery
// promise on a single node with its default SQLite store: the server
// acknowledges a client's stanza with XEP-0198 <a h=.../> (the sender's ✓)
// only when the message will arrive.
//
// Every test drives the real `bluetick serve` binary (built once in
// TestMain) over loopback with raw XMPP clients that enable stream
// management with resumption and answer <r/> strictly in stream order, as
// slixmpp and most mobile clients do. The tests assert the correct
// behaviour; one pass takes under a minute. Check that they hold every
// time with
//
//	go test -count=10 -timeout 20m ./tests/fault/
//
// (or -run one of TestSIGTERMKeepsAcked, TestKill9KeepsAcked,
// TestSIGTERMKeepsAckedSlixmpp, TestKill9KeepsAckedSlixmpp,
// TestDrainThousandStoredWhileOnline, TestDrainThousandStoredWhileOnlineSlixmpp,
// TestReconnectKeepsOrder). The slixmpp tests need Debian's python3-slixmpp
// for /usr/bin/python3 and are skipped without it. BLUETICK_FAULT_CONFIG
// adds TOML to the configuration of every server the tests start.
package fault_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bluetick/internal/natstest"
)

var (
	binary   string // bluetick built by TestMain
	template string // data dir holding the accounts every test uses
)

// Accounts in the template data dir, all with password "pw".
const (
	nSenders    = 10 // s01..s10
	nRecipients = 20 // r01..r20
	password    = "pw"
)

func senderName(i int) string    { return fmt.Sprintf("s%02d", i+1) }
func recipientName(i int) string { return fmt.Sprintf("r%02d", i+1) }

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "bluetick-fault-test")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "bluetick")
	if out, err := exec.Command("go", "build", "-o", binary, "../../cmd/bluetick").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building bluetick: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	template = filepath.Join(dir, "template")
	var users []string
	for i := 0; i < nSenders; i++ {
		users = append(users, senderName(i))
	}
	for i := 0; i < nRecipients; i++ {
		users = append(users, recipientName(i))
	}
	for _, u := range users {
		if out, err := exec.Command(binary, "user", "add", u, "--password", password, "--data", template).CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "bluetick user add %s: %v\n%s", u, err, out)
			os.RemoveAll(dir)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// server is one `bluetick serve` process on loopback; it can be stopped
// with a signal and started again on the same data dir and ports.
type server struct {
	t       *testing.T
	dir     string
	c2s     string
	http    string
	c2sTLS  string // direct-TLS listener, "" for none
	config  string // path of the TOML file, or ""
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	starts  int
	nofile  int // RLIMIT_NOFILE for the process, 0: inherited
}

// startServer copies the template accounts into a fresh data dir and
// starts bluetick with the default configuration plus configTOML (may be
// empty). The server is stopped at cleanup; if the test failed the end of
// its log is printed.
func startServer(t *testing.T, configTOML string) *server {
	t.Helper()
	return startServerLimited(t, configTOML, 0)
}

// startServerLimited is startServer with the process's open-files limit
// set to nofile (0: inherited).
func startServerLimited(t *testing.T, configTOML string, nofile int) *server {
	t.Helper()
	s := newServer(t, configTOML, nofile)
	s.start()
	return s
}

// newServer prepares a server as startServerLimited does (data dir, ports,
// config, cleanup) without starting it.
func newServer(t *testing.T, configTOML string, nofile int) *server {
	t.Helper()
	s := &server{
		nofile: nofile,
		t:      t,
		dir:    t.TempDir(),
		c2s:    fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t)),
		http:   fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t)),
	}
	ents, err := os.ReadDir(template)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(template, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(s.dir, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// BLUETICK_FAULT_CONFIG adds TOML to every server's configuration, to
	// see how other settings fare (e.g. "[offline]\ndurable = \"on\"").
	if extra := os.Getenv("BLUETICK_FAULT_CONFIG"); extra != "" {
		configTOML += "\n" + extra + "\n"
	}
	if configTOML != "" {
		s.config = filepath.Join(s.dir, "bluetick.toml")
		if err := os.WriteFile(s.config, []byte(configTOML), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		s.stop(syscall.SIGTERM)
		if t.Failed() {
			for i := 1; i <= s.starts; i++ {
				b, _ := os.ReadFile(s.logFile(i))
				t.Logf("=== end of server log, run %d ===\n%s", i, lastLines(string(b), 25))
			}
		}
	})
	return s
}

func (s *server) logFile(run int) string {
	return filepath.Join(s.dir, fmt.Sprintf("server-%d.log", run))
}

// start runs the binary and waits until it serves.
func (s *server) start() {
	t := s.t
	t.Helper()
	s.starts++
	s.logPath = s.logFile(s.starts)
	log, err := os.Create(s.logPath)
	if err != nil {
		t.Fatal(err)
	}
	c2sTLS := s.c2sTLS
	if c2sTLS == "" {
		c2sTLS = "off"
	}
	args := []string{"serve", "--data", s.dir, "--c2s", s.c2s, "--c2s-tls", c2sTLS, "--http", s.http, "--log-level", "debug"}
	if s.config != "" {
		args = append(args, "--config", s.config)
	}
	if s.nofile > 0 {
		args = append([]string{fmt.Sprintf("--nofile=%d:%d", s.nofile, s.nofile), "--", binary}, args...)
		s.cmd = exec.Command("prlimit", args...)
	} else {
		s.cmd = exec.Command(binary, args...)
	}
	s.cmd.Stdout, s.cmd.Stderr = log, log
	if err := s.cmd.Start(); err != nil {
		log.Close()
		t.Fatal(err)
	}
	exited := make(chan struct{})
	s.exited = exited
	cmd := s.cmd
	go func() { cmd.Wait(); log.Close(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	hc := http.Client{Timeout: time.Second}
	for {
		select {
		case <-exited:
			b, _ := os.ReadFile(s.logPath)
			t.Fatalf("bluetick exited at start: %v\n%s", cmd.ProcessState, lastLines(string(b), 30))
		default:
		}
		if r, err := hc.Get("http://" + s.http + "/healthz"); err == nil {
			r.Body.Close()
			if c, err := net.DialTimeout("tcp", s.c2s, time.Second); err == nil && r.StatusCode == 200 {
				c.Close()
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("bluetick not serving after 20 s")
		}
		time.Sleep(30 * time.Millisecond)
	}
}

// stop sends sig and waits for the process to exit (SIGKILL after 15 s).
func (s *server) stop(sig syscall.Signal) {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(sig)
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.t.Errorf("bluetick did not exit within 15 s of %v; killed", sig)
		s.cmd.Process.Kill()
		<-s.exited
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
