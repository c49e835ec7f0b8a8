// Package web drives Bluetick Web, the browser app served by `bluetick
// serve`, in a real browser: Debian's chromium under playwright-core (from
// web/node_modules), against a freshly built bluetick on free loopback
// ports. Each scenario is a Node script in scenarios/ that prints JSON facts
// on stdout; the Go tests assert on them. The scripts control the server
// (SIGSTOP, SIGCONT, stop, start) through a small HTTP endpoint on loopback
// the harness serves.
//
// Screenshots go to a temporary directory, or to $BLUETICK_WEB_SCREENSHOTS.
package web

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	domain    = "localhost"
	chromium  = "/usr/bin/chromium"
	scriptMax = 120 * time.Second // a scenario script is killed after this
)

var (
	binPath  string
	buildErr error
	webDir   string // absolute path of web/ (node_modules with playwright-core)
	scenDir  string
	shotDir  string
)

func verbose() bool { return os.Getenv("BLUETICK_WEB_VERBOSE") == "1" }

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "web:", err)
		os.Exit(1)
	}
	webDir = filepath.Join(wd, "..", "..", "web")
	scenDir = filepath.Join(wd, "scenarios")
	tmp, err := os.MkdirTemp("", "bluetick-web-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "web:", err)
		os.Exit(1)
	}
	shotDir = os.Getenv("BLUETICK_WEB_SCREENSHOTS")
	if shotDir == "" {
		shotDir = filepath.Join(tmp, "screenshots")
	}
	os.MkdirAll(shotDir, 0o755)
	binPath = filepath.Join(tmp, "bluetick")
	goTool := "go"
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	cmd := exec.Command(goTool, "build", "-o", binPath, "bluetick/cmd/bluetick")
	cmd.Dir = wd
	if out, err := cmd.CombinedOutput(); err != nil {
		buildErr = fmt.Errorf("go build ./cmd/bluetick: %v\n%s", err, out)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

var (
	toolsOnce sync.Once
	toolsErr  error
)

// need fails the test when the browser or the npm packages are missing,
// saying how to install them (CI installs them in .ci/run).
func need(t *testing.T) {
	t.Helper()
	toolsOnce.Do(func() {
		if _, err := exec.LookPath("node"); err != nil {
			toolsErr = errors.New("node is not installed; install it with: apt-get install -y nodejs npm, then: cd web && npm ci")
			return
		}
		if st, err := os.Stat(chromium); err != nil || st.Mode()&0o111 == 0 {
			toolsErr = fmt.Errorf("%s is missing; install Debian's browser with: apt-get update && apt-get install -y chromium", chromium)
			return
		}
		if _, err := os.Stat(filepath.Join(webDir, "node_modules", "playwright-core", "package.json")); err != nil {
			toolsErr = errors.New("npm package playwright-core is missing; install it with: cd web && npm ci")
		}
	})
	if toolsErr != nil {
		t.Fatalf("browser tests cannot run: %v", toolsErr)
	}
	if buildErr != nil {
		t.Fatalf("bluetick does not build: %v", buildErr)
	}
}

// --- the server --------------------------------------------------------------

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type server struct {
	t              *testing.T
	dir            string
	c2s, tls, http int
	extra          []string
	users          map[string]string
	logs           *syncBuffer
	mu             sync.Mutex
	cmd            *exec.Cmd
	exited         chan struct{}
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	var ports []int
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// startServer creates the users (password NAME-secret) in a fresh data dir
// and starts bluetick on free loopback ports; it is stopped (and its log
// printed if the test failed) at cleanup.
func startServer(t *testing.T, extra []string, users ...string) *server {
	t.Helper()
	s := &server{t: t, dir: t.TempDir(), extra: extra, users: map[string]string{}, logs: &syncBuffer{}}
	for _, u := range users {
		pw := u + "-secret"
		s.users[u] = pw
		out, err := exec.Command(binPath, "user", "add", u, "--password", pw, "--data", s.dir, "--domain", domain).CombinedOutput()
		if err != nil {
			t.Fatalf("bluetick user add %s: %v\n%s", u, err, out)
		}
	}
	p := freePorts(t, 3)
	s.c2s, s.tls, s.http = p[0], p[1], p[2]
	t.Cleanup(func() {
		s.stop()
		if t.Failed() || verbose() {
			t.Logf("---- bluetick server log ----\n%s---- end of server log ----", s.logs.String())
		}
	})
	if err := s.start(); err != nil {
		t.Fatal(err)
	}
	return s
}

// start runs the server (again) on the same ports and data.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	args := append([]string{"serve", "--data", s.dir, "--domain", domain,
		"--c2s", fmt.Sprintf("127.0.0.1:%d", s.c2s),
		"--c2s-tls", fmt.Sprintf("127.0.0.1:%d", s.tls),
		"--http", fmt.Sprintf("127.0.0.1:%d", s.http),
		"--log-level", "debug"}, s.extra...)
	fmt.Fprintf(s.logs, "==== starting bluetick %s\n", strings.Join(args, " "))
	cmd := exec.Command(binPath, args...)
	cmd.Stdout = s.logs
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting bluetick: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-exited:
			return fmt.Errorf("bluetick exited during startup: %v", cmd.ProcessState)
		default:
		}
		cl := http.Client{Timeout: time.Second}
		resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", s.http))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("bluetick not ready after 15s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // a stopped process cannot handle SIGTERM
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

func (s *server) signal(sig syscall.Signal) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Signal(sig)
}

// control serves the scripts' requests: /sigstop and /sigcont freeze and
// thaw the server (its sockets stay open, nothing is answered), /stop ends
// it, /start starts it again on the same ports and data.
func (s *server) control(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	do := func(path string, f func() error) {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(s.logs, "==== control %s\n", path)
			if err := f(); err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			fmt.Fprintln(w, "ok")
		})
	}
	do("/sigstop", func() error { return s.signal(syscall.SIGSTOP) })
	do("/sigcont", func() error { return s.signal(syscall.SIGCONT) })
	do("/stop", func() error { s.stop(); return nil })
	do("/start", s.start)
	// /revoke-alice: `bluetick user tokens revoke alice` (every device's
	// FAST token) while the server runs.
	do("/revoke-alice", func() error {
		out, err := exec.Command(binPath, "user", "tokens", "revoke", "alice", "--all", "--data", s.dir, "--domain", domain).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		fmt.Fprintf(s.logs, "==== %s", out)
		return nil
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}

// --- scenarios ----------------------------------------------------------------

type fact map[string]any

func (f fact) name() string { s, _ := f["event"].(string); return s }

func (f fact) str(k string) string { s, _ := f[k].(string); return s }

func (f fact) num(k string) float64 { n, _ := f[k].(float64); return n }

func (f fact) boolean(k string) bool { b, _ := f[k].(bool); return b }

func (f fact) strs(k string) []string {
	l, _ := f[k].([]any)
	var out []string
	for _, v := range l {
		s, _ := v.(string)
		out = append(out, s)
	}
	return out
}

func (f fact) String() string { b, _ := json.Marshal(map[string]any(f)); return string(b) }

type facts []fact

// get returns the fact with that event name, failing the test without it.
func (fs facts) get(t *testing.T, name string) fact {
	t.Helper()
	for _, f := range fs {
		if f.name() == name {
			return f
		}
	}
	t.Fatalf("no %q fact from the scenario", name)
	return nil
}

// run starts a server with users (and extra `bluetick serve` flags), runs
// scenarios/NAME.mjs against it and returns its facts. The script must end
// with a "done" fact; "error" facts and console errors fail the test.
func run(t *testing.T, name string, extra []string, users ...string) facts {
	t.Helper()
	need(t)
	return runOn(t, startServer(t, extra, users...), name)
}

// runOn runs scenario name against a server the caller started (a test
// that starts other clients on its ports first calls it directly), and
// returns the scenario's facts.
func runOn(t *testing.T, s *server, name string) facts {
	t.Helper()
	ctl := s.control(t)
	cfg, _ := json.Marshal(map[string]any{
		"url":      fmt.Sprintf("http://localhost:%d/", s.http),
		"control":  ctl,
		"users":    s.users,
		"domain":   domain,
		"chromium": chromium,
		"webDir":   webDir,
		"shots":    shotDir,
		"name":     name,
	})
	ctx, cancel := context.WithTimeout(context.Background(), scriptMax)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(scenDir, name+".mjs"), string(cfg))
	cmd.Dir = scenDir
	cmd.WaitDelay = 3 * time.Second
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("node %s.mjs: %v", name, err)
	}
	var fs facts
	var other []string
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		var f fact
		if json.Unmarshal(sc.Bytes(), &f) == nil && f.name() != "" {
			fs = append(fs, f)
			if verbose() {
				t.Logf("%s: %s", name, f)
			}
		} else {
			other = append(other, sc.Text())
		}
	}
	werr := cmd.Wait()
	dump := func() {
		var lines []string
		for _, f := range fs {
			lines = append(lines, f.String())
		}
		t.Logf("---- scenario %s (exit %v, %v) ----\nfacts:\n%s\nother stdout:\n%s\nstderr:\n%s---- end ----",
			name, werr, time.Since(start).Round(time.Millisecond), strings.Join(lines, "\n"), strings.Join(other, "\n"), stderr.String())
	}
	t.Cleanup(func() {
		if t.Failed() || verbose() {
			dump()
		}
	})
	for _, f := range fs {
		switch f.name() {
		case "error":
			t.Errorf("scenario %s: %s", name, f.str("error"))
		case "console-errors":
			if errs := f.strs("errors"); len(errs) > 0 {
				t.Errorf("scenario %s: console errors in the browser: %q", name, errs)
			}
		}
	}
	if werr != nil {
		t.Fatalf("scenario %s exited with %v", name, werr)
	}
	if len(fs) == 0 || fs[len(fs)-1].name() != "done" {
		t.Fatalf("scenario %s ended without a \"done\" fact", name)
	}
	fs.get(t, "console-errors") // every scenario reports them
	t.Logf("scenario %s: %v; screenshots in %s", name, time.Since(start).Round(time.Millisecond), shotDir)
	return fs
}
