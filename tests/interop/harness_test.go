// Package interop drives real third-party XMPP client libraries (slixmpp,
// xmpp.js, go-sendxmpp) and a small raw-socket client against a freshly
// started bluetick binary. See README.md in this directory.
package interop

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
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	domain        = "localhost"
	pythonPath    = "/usr/bin/python3" // Debian's python3-slixmpp is for this one only
	scriptTimeout = 20                 // seconds a client script gives itself
	killAfter     = 30 * time.Second   // when the harness kills a script
)

var (
	binPath    string // the bluetick binary built by TestMain
	buildErr   error
	interopDir string // absolute path of tests/interop
	clientsDir string
)

func skipAll() bool { return os.Getenv("BLUETICK_INTEROP_SKIP") == "1" }

// verbose (BLUETICK_INTEROP_VERBOSE=1) logs every client's events and XML
// and the server log even when the test passes (use with go test -v).
func verbose() bool { return os.Getenv("BLUETICK_INTEROP_VERBOSE") == "1" }

func TestMain(m *testing.M) {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	interopDir = wd
	clientsDir = filepath.Join(wd, "clients")
	tmp, err := os.MkdirTemp("", "bluetick-interop-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		os.Exit(1)
	}
	if bin := os.Getenv("BLUETICK_INTEROP_BIN"); bin != "" && !skipAll() {
		// A prebuilt server binary (e.g. a release build) instead of building.
		binPath = bin
	} else if !skipAll() {
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
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// --- client availability ---------------------------------------------------

type check struct {
	once sync.Once
	err  error
}

var checks = map[string]*check{"slixmpp": {}, "xmppjs": {}, "sendxmpp": {}, "strophe": {}, "coturn": {}, "profanity": {}}

// need fails the test (or skips it with BLUETICK_INTEROP_SKIP=1) when a
// client is not installed, telling how to install it.
func need(t *testing.T, client string) {
	t.Helper()
	if skipAll() {
		t.Skip("BLUETICK_INTEROP_SKIP=1")
	}
	c := checks[client]
	c.once.Do(func() {
		switch client {
		case "slixmpp":
			out, err := exec.Command(pythonPath, "-c", "import slixmpp; print(slixmpp.__version__)").CombinedOutput()
			if err != nil {
				c.err = fmt.Errorf("slixmpp is not importable by %s (%v: %s); install it with: apt-get update && apt-get install -y python3-slixmpp", pythonPath, err, bytes.TrimSpace(out))
			}
		case "xmppjs":
			if _, err := exec.LookPath("node"); err != nil {
				c.err = errors.New("node is not installed; install it with: apt-get install -y nodejs npm, then: cd tests/interop && npm ci")
				return
			}
			for _, p := range []string{"@xmpp/client/package.json", "ws/package.json"} {
				if _, err := os.Stat(filepath.Join(interopDir, "node_modules", p)); err != nil {
					c.err = fmt.Errorf("npm package %s is missing; install it with: cd tests/interop && npm ci", filepath.Dir(p))
					return
				}
			}
		case "strophe":
			for _, p := range []string{"strophe.js/package.json", "xhr2/package.json", "@xmldom/xmldom/package.json"} {
				if _, err := os.Stat(filepath.Join(interopDir, "node_modules", p)); err != nil {
					c.err = fmt.Errorf("npm package %s is missing; install it with: cd tests/interop && npm ci", filepath.Dir(p))
					return
				}
			}
		case "coturn":
			for _, tool := range []string{"turnutils_uclient", "turnutils_peer"} {
				if _, err := exec.LookPath(tool); err != nil {
					c.err = fmt.Errorf("%s is not installed; install coturn's client tools with: apt-get update && apt-get install -y coturn (its turnserver daemon is not needed)", tool)
					return
				}
			}
		case "profanity":
			// Debian's profanity (OMEMO through libsignal-protocol-c), driven under tmux.
			const install = "apt-get update && apt-get install -y profanity tmux"
			for _, tool := range []string{"profanity", "tmux"} {
				if _, err := exec.LookPath(tool); err != nil {
					c.err = fmt.Errorf("%s is not installed; install it with: %s", tool, install)
					return
				}
			}
			out, err := exec.Command("profanity", "--version").CombinedOutput()
			if err != nil || !bytes.Contains(out, []byte("OMEMO support: Enabled")) {
				c.err = fmt.Errorf("`profanity --version` does not say \"OMEMO support: Enabled\" (%v: %s); install Debian's build with: %s", err, bytes.TrimSpace(out), install)
			}
		case "sendxmpp":
			if _, err := exec.LookPath("go-sendxmpp"); err != nil {
				c.err = errors.New("go-sendxmpp is not installed; install it with: apt-get update && apt-get install -y go-sendxmpp")
			}
		}
	})
	if c.err != nil {
		t.Fatalf("client %s unavailable: %v (set BLUETICK_INTEROP_SKIP=1 to skip the interop tests)", client, c.err)
	}
}

// --- the server ------------------------------------------------------------

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
	dir            string
	c2s, tls, http int
	users          map[string]string
	cmd            *exec.Cmd
	logs           *syncBuffer
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
func startServer(t *testing.T, users ...string) *server {
	t.Helper()
	return startServerFull(t, "", nil, users...)
}

// startServerArgs is startServer with extra `bluetick serve` flags.
func startServerArgs(t *testing.T, extra []string, users ...string) *server {
	t.Helper()
	return startServerFull(t, "", extra, users...)
}

// startServerWith is startServer with a TOML config file (--config); the
// listener flags still override it.
func startServerWith(t *testing.T, configTOML string, users ...string) *server {
	t.Helper()
	return startServerFull(t, configTOML, nil, users...)
}

func startServerFull(t *testing.T, configTOML string, extra []string, users ...string) *server {
	t.Helper()
	if skipAll() {
		t.Skip("BLUETICK_INTEROP_SKIP=1")
	}
	if buildErr != nil {
		t.Fatalf("bluetick does not build: %v", buildErr)
	}
	s := &server{dir: t.TempDir(), users: map[string]string{}, logs: &syncBuffer{}, exited: make(chan struct{})}
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
	args := []string{"serve", "--data", s.dir, "--domain", domain,
		"--c2s", fmt.Sprintf("127.0.0.1:%d", s.c2s),
		"--c2s-tls", fmt.Sprintf("127.0.0.1:%d", s.tls),
		"--http", fmt.Sprintf("127.0.0.1:%d", s.http),
		"--log-level", "debug"}
	if configTOML != "" {
		path := filepath.Join(s.dir, "bluetick.toml")
		if err := os.WriteFile(path, []byte(configTOML), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--config", path)
	}
	args = append(args, extra...)
	s.cmd = exec.Command(binPath, args...)
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting bluetick: %v", err)
	}
	go func() { s.cmd.Wait(); close(s.exited) }()
	t.Cleanup(func() {
		s.stop()
		if t.Failed() || verbose() {
			t.Logf("---- bluetick server log ----\n%s---- end of server log ----", s.logs.String())
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		select {
		case <-s.exited:
			t.Fatalf("bluetick exited during startup: %v", s.cmd.ProcessState)
		default:
		}
		err := s.ready()
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("bluetick not ready after 15s (c2s %d, tls %d, http %d): %v", s.c2s, s.tls, s.http, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready says nil when both client ports accept connections and /healthz
// answers 200.
func (s *server) ready() error {
	for _, port := range []int{s.c2s, s.tls} {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err != nil {
			return err
		}
		c.Close()
	}
	cl := http.Client{Timeout: time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", s.http))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /healthz: %s", resp.Status)
	}
	return nil
}

func (s *server) stop() {
	select {
	case <-s.exited:
		return
	default:
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
}

// alive fails the test if the server died.
func (s *server) alive(t *testing.T) {
	t.Helper()
	select {
	case <-s.exited:
		t.Fatalf("bluetick exited: %v", s.cmd.ProcessState)
	default:
	}
}

func (s *server) jid(user string) string { return user + "@" + domain }

// config is the JSON every client script gets as its last argument.
func (s *server) config(args map[string]any) string {
	b, _ := json.Marshal(map[string]any{
		"host":    "127.0.0.1",
		"c2s":     s.c2s,
		"tls":     s.tls,
		"http":    s.http,
		"ws":      fmt.Sprintf("ws://127.0.0.1:%d/xmpp-websocket", s.http),
		"domain":  domain,
		"users":   s.users,
		"timeout": scriptTimeout,
		"args":    args,
	})
	return string(b)
}

// --- client processes --------------------------------------------------------

type event map[string]any

func (e event) name() string { return e.str("event") }

func (e event) str(k string) string {
	v, _ := e[k].(string)
	return v
}

func (e event) num(k string) (float64, bool) {
	v, ok := e[k].(float64)
	return v, ok
}

func (e event) boolean(k string) bool {
	v, _ := e[k].(bool)
	return v
}

func (e event) strs(k string) []string {
	l, _ := e[k].([]any)
	var out []string
	for _, v := range l {
		if s, ok := v.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

func (e event) String() string {
	b, _ := json.Marshal(map[string]any(e))
	return string(b)
}

// proc is one running client script.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *syncBuffer
	mu     sync.Mutex
	events []event
	lines  []string // stdout lines that were not JSON
	notify chan struct{}
	done   chan struct{}
	err    error
}

// start runs a client program; its JSON stdout lines become events. Its
// output is logged if the test fails.
func start(t *testing.T, name string, env []string, argv ...string) *proc {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), killAfter)
	p := &proc{name: name, stderr: &syncBuffer{}, notify: make(chan struct{}, 1), done: make(chan struct{})}
	p.cmd = exec.CommandContext(ctx, argv[0], argv[1:]...)
	p.cmd.Dir = interopDir
	p.cmd.Env = append(append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"), env...)
	p.cmd.Stderr = p.stderr
	p.cmd.WaitDelay = 2 * time.Second
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 8<<20)
		for sc.Scan() {
			line := sc.Text()
			var ev event
			p.mu.Lock()
			if json.Unmarshal([]byte(line), &ev) == nil && ev.name() != "" {
				p.events = append(p.events, ev)
			} else {
				p.lines = append(p.lines, line)
			}
			p.mu.Unlock()
			select {
			case p.notify <- struct{}{}:
			default:
			}
		}
		p.err = p.cmd.Wait()
		cancel()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
		if t.Failed() || verbose() {
			p.mu.Lock()
			var evs []string
			for _, e := range p.events {
				evs = append(evs, e.String())
			}
			p.mu.Unlock()
			t.Logf("---- client %s (exit: %v) ----\nevents:\n%s\nother stdout:\n%s\nstderr:\n%s---- end of client %s ----",
				name, p.err, strings.Join(evs, "\n"), strings.Join(p.lines, "\n"), p.stderr.String(), name)
		}
	})
	return p
}

// waitEvent waits for an event with that name.
func (p *proc) waitEvent(t *testing.T, name string, timeout time.Duration) event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		p.mu.Lock()
		for _, e := range p.events {
			if e.name() == name {
				p.mu.Unlock()
				return e
			}
			if e.name() == "error" || e.name() == "timeout" {
				p.mu.Unlock()
				t.Fatalf("%s failed before %q: %s", p.name, name, e)
			}
		}
		p.mu.Unlock()
		select {
		case <-p.notify:
		case <-p.done:
			p.mu.Lock()
			for _, e := range p.events {
				if e.name() == name {
					p.mu.Unlock()
					return e
				}
			}
			p.mu.Unlock()
			t.Fatalf("%s exited (%v) without %q", p.name, p.err, name)
		case <-deadline:
			t.Fatalf("%s: no %q event after %v", p.name, name, timeout)
		}
	}
}

// wait waits for the script to exit and returns its events.
func (p *proc) wait(t *testing.T) []event {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(killAfter + 5*time.Second):
		t.Fatalf("%s did not exit", p.name)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]event(nil), p.events...)
}

// finish waits for exit and fails the test if the script did not end with
// "done" and exit 0.
func (p *proc) finish(t *testing.T) []event {
	t.Helper()
	evs := p.wait(t)
	for _, e := range evs {
		if e.name() == "error" || e.name() == "timeout" {
			t.Errorf("%s reported %s", p.name, e)
		}
	}
	if p.err != nil {
		t.Errorf("%s exited with %v", p.name, p.err)
	} else if len(evs) == 0 || evs[len(evs)-1].name() != "done" {
		t.Errorf("%s exited without a final \"done\" event", p.name)
	}
	return evs
}

func slix(t *testing.T, s *server, scenario string, args map[string]any) *proc {
	t.Helper()
	need(t, "slixmpp")
	return start(t, "slixmpp:"+scenario, nil, pythonPath, filepath.Join(clientsDir, "slix.py"), scenario, s.config(args))
}

func raw(t *testing.T, s *server, scenario string, args map[string]any) *proc {
	t.Helper()
	if skipAll() {
		t.Skip("BLUETICK_INTEROP_SKIP=1")
	}
	return start(t, "raw:"+scenario, nil, pythonPath, filepath.Join(clientsDir, "raw.py"), scenario, s.config(args))
}

func xmppjs(t *testing.T, s *server, args map[string]any) *proc {
	t.Helper()
	need(t, "xmppjs")
	return start(t, "xmpp.js", nil, "node", filepath.Join(clientsDir, "ws_client.mjs"), s.config(args))
}

// --- event helpers -------------------------------------------------------------

// allOf is the events named name that p has printed so far.
func allOf(p *proc, name string) []event {
	p.mu.Lock()
	defer p.mu.Unlock()
	return all(p.events, name)
}

func all(evs []event, name string) []event {
	var out []event
	for _, e := range evs {
		if e.name() == name {
			out = append(out, e)
		}
	}
	return out
}

func where(evs []event, name, key, value string) []event {
	var out []event
	for _, e := range all(evs, name) {
		if e.str(key) == value {
			out = append(out, e)
		}
	}
	return out
}

func one(t *testing.T, evs []event, name string) event {
	t.Helper()
	l := all(evs, name)
	if len(l) == 0 {
		t.Fatalf("no %q event from the client (events: %s)", name, summary(evs))
	}
	return l[0]
}

func summary(evs []event) string {
	var names []string
	for _, e := range evs {
		names = append(names, e.name())
	}
	return strings.Join(names, ",")
}

func sortedKeys(m map[string]int) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
