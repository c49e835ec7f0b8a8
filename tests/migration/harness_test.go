// Package migration proves `bluetick import` against the exports of the
// real servers people migrate from: Prosody 0.12 (prosody-migrator) and
// ejabberd 23.01 (ejabberdctl export_piefxis), as installed from Debian.
// Each test starts the old server on loopback with its own data and
// ports, creates accounts with its admin tool, has slixmpp (peer.py)
// create a roster, a vCard, private XML and an offline message, exports
// with the server's own tool, imports into a fresh Bluetick data
// directory, starts Bluetick and logs in with the original passwords.
//
// A test whose server is not installed is skipped, saying what to
// install; .ci/run installs both.
package migration

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const pythonPath = "/usr/bin/python3" // Debian's python3-slixmpp is for this one

var binPath string

func TestMain(m *testing.M) {
	tmp, err := os.MkdirTemp("", "bluetick-migration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(tmp, "bluetick")
	goTool := "go"
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	if out, err := exec.Command(goTool, "build", "-o", binPath, "bluetick/cmd/bluetick").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build ./cmd/bluetick: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(tmp)
	os.Exit(code)
}

// needSlixmpp skips the test when Debian's slixmpp is not there.
func needSlixmpp(t *testing.T) {
	if err := exec.Command(pythonPath, "-c", "import slixmpp").Run(); err != nil {
		t.Skipf("slixmpp is not importable by %s; install it with: apt-get install -y python3-slixmpp", pythonPath)
	}
}

// freePort returns a loopback port nobody listens on now.
func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until something accepts on port, or fails t.
func waitListening(t *testing.T, port int, timeout time.Duration, alive func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if alive != nil {
			if err := alive(); err != nil {
				t.Fatalf("waiting for port %d: %v", port, err)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d after %v", port, timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sharedDir makes a directory under /tmp that a service user can reach
// (t.TempDir's parents are private to us) and owns when we are root; it
// is removed when t ends.
func sharedDir(t *testing.T, owner string) string {
	dir, err := os.MkdirTemp("", "bluetick-migration-"+owner+"-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	if os.Geteuid() == 0 {
		u, err := user.Lookup(owner)
		if err != nil {
			t.Fatalf("user %s: %v", owner, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		os.Chown(dir, uid, gid)
	}
	return dir
}

// chownTree gives a directory tree to a service user (when root).
func chownTree(t *testing.T, dir, owner string) {
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup(owner)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	filepath.Walk(dir, func(p string, _ os.FileInfo, _ error) error { return os.Lchown(p, uid, gid) })
}

// asUser makes cmd run as a service user when we are root (Prosody
// refuses to run as root), with that user's HOME set to dir.
func asUser(t *testing.T, cmd *exec.Cmd, owner, home string) {
	cmd.Env = append(os.Environ(), "HOME="+home)
	if os.Geteuid() != 0 {
		return
	}
	u, err := user.Lookup(owner)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
}

// run runs a command to completion within a minute and returns its output,
// failing t on an error.
func run(t *testing.T, cmd *exec.Cmd) string {
	t.Helper()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out.String())
		}
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("%s: still running after a minute\n%s", cmd, out.String())
	}
	return out.String()
}

// event is one JSON line of peer.py.
type event map[string]any

func (e event) s(k string) string { v, _ := e[k].(string); return v }

// peer runs a peer.py scenario to its end and returns its events.
func peer(t *testing.T, scenario string, cfg map[string]any) []event {
	t.Helper()
	evs, err := peerRun(t, scenario, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// peerRun is peer for a scenario that may fail: the error says how.
func peerRun(t *testing.T, scenario string, cfg map[string]any) ([]event, error) {
	t.Helper()
	b, _ := json.Marshal(cfg)
	cmd := exec.Command(pythonPath, "peer.py", scenario, string(b))
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var evs []event
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			evs = append(evs, e)
		}
	}
	if err != nil {
		return evs, fmt.Errorf("peer.py %s: %v\nstdout:\n%s\nstderr:\n%s", scenario, err, out, stderr.String())
	}
	return evs, nil
}

func find(evs []event, name string) []event {
	var out []event
	for _, e := range evs {
		if e.s("event") == name {
			out = append(out, e)
		}
	}
	return out
}

// bluetick runs a bluetick subcommand to completion.
func bluetick(t *testing.T, args ...string) string {
	t.Helper()
	return run(t, exec.Command(binPath, args...))
}

// serveBluetick starts a Bluetick server on a data directory (with extra
// serve arguments) and returns its c2s port; it is stopped (SIGTERM) when
// t ends, or by the returned function's caller through t.Cleanup order.
func serveBluetick(t *testing.T, data, domain string, extra ...string) int {
	t.Helper()
	port := freePort(t)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, binPath, append([]string{"serve", "--data", data, "--domain", domain,
		"--c2s", "127.0.0.1:" + strconv.Itoa(port), "--c2s-tls", "off", "--http", "off"}, extra...)...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cancel()
		<-exited
		if t.Failed() {
			t.Logf("bluetick log:\n%s", log.String())
		}
	})
	waitListening(t, port, 30*time.Second, func() error {
		select {
		case <-exited:
			return fmt.Errorf("bluetick exited: %s", log.String())
		default:
			return nil
		}
	})
	return port
}

// checkImported logs in to Bluetick as alice and bob with their original
// passwords and mechanism mech and checks what the old server held
// arrived. vcard4 says the vCard is also expected as a XEP-0292 PEP node
// (Prosody's mod_vcard_legacy keeps it there, and the import builds the
// vcard-temp from it);
// offline whether the export carried bob's offline message. It returns
// the events for further checks.
func checkImported(t *testing.T, port int, domain, mech string, vcard4, offline bool) []event {
	t.Helper()
	evs := peer(t, "check", map[string]any{
		"host": "127.0.0.1", "port": port, "domain": domain, "mech": mech, "tls": true,
		"users":   map[string]string{"alice": "pw-alice", "bob": "pw-bob"},
		"offline": offline,
	})
	logins := find(evs, "login")
	if len(logins) != 2 || logins[0].s("mech") != mech || logins[1].s("mech") != mech {
		t.Fatalf("logins %v, want alice and bob with %s", logins, mech)
	}
	roster := map[string]event{}
	for _, e := range find(evs, "roster") {
		roster[e.s("jid")] = e
	}
	bob, carol := roster["bob@"+domain], roster["carol@elsewhere.example"]
	if len(roster) != 2 || bob == nil || carol == nil || bob.s("name") != "Bobby" || bob.s("ask") != "subscribe" ||
		fmt.Sprint(bob["groups"]) != "[Friends]" || fmt.Sprint(carol["groups"]) != "[Friends Work]" || carol.s("ask") != "" {
		t.Fatalf("alice's roster %v", roster)
	}
	if vcard4 {
		if v := find(evs, "vcard4"); len(v) != 1 || v[0].s("fn") != "Alice Liddell" {
			t.Fatalf("vCard4 %v (events %v)", v, evs)
		}
	}
	// vcard-temp: as exported, or built from the vCard4 node.
	if v := find(evs, "vcard"); len(v) != 1 || v[0].s("fn") != "Alice Liddell" {
		t.Fatalf("vCard %v", v)
	}
	if p := find(evs, "private"); len(p) != 1 || p[0].s("text") != "rabbit hole" {
		t.Fatalf("private XML %v", p)
	}
	if s := find(evs, "subscribe_request"); len(s) != 1 || s[0].s("frm") != "alice@"+domain {
		t.Fatalf("bob's pending subscription request %v", s)
	}
	o := find(evs, "offline")
	if offline {
		if len(o) != 1 || o[0].s("body") != "hello bob, from the old server" || o[0]["delayed"] != true {
			t.Fatalf("bob's offline message %v", o)
		}
	} else if len(o) != 0 {
		t.Fatalf("unexpected offline message %v", o)
	}
	return evs
}

// importInto imports paths into a fresh data directory for domain and
// returns the directory and bluetick's summary.
func importInto(t *testing.T, domain string, paths ...string) (string, string) {
	t.Helper()
	data := t.TempDir()
	out := bluetick(t, append(append([]string{"import"}, paths...), "--data", data, "--domain", domain)...)
	t.Logf("bluetick import %s:\n%s", strings.Join(paths, " "), out)
	return data, out
}
