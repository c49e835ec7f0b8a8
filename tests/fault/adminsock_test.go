package fault_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The admin socket across a crash: kill -9 leaves the socket file behind;
// the CLI then says no server runs (not a hang, not a raw ECONNREFUSED),
// and the restarted server replaces the stale socket and answers.
func TestAdminSocketStaleAfterKill9(t *testing.T) {
	s := startServer(t, "")
	sock := filepath.Join(s.dir, "admin.sock")
	status := func() (string, error) {
		out, err := exec.Command(binary, "status", "--data", s.dir).CombinedOutput()
		return string(out), err
	}
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket %s: %v %v, want a socket with mode 0600", sock, fi, err)
	}
	if out, err := status(); err != nil || !strings.Contains(out, "accounts:         30") {
		t.Fatalf("status: %v\n%s", err, out)
	}
	s.stop(syscall.SIGKILL)
	if _, err := os.Lstat(sock); err != nil {
		t.Fatalf("kill -9 should leave the socket file behind: %v", err)
	}
	out, err := status()
	if err == nil || !strings.Contains(out, "no server running with data directory "+s.dir) || !strings.Contains(out, "start it with bluetick serve") {
		t.Fatalf("status after kill -9: %v %q", err, out)
	}
	s.start()
	if out, err := status(); err != nil || !strings.Contains(out, "accounts:         30") {
		t.Fatalf("status after the restart: %v\n%s", err, out)
	}
	// A graceful stop removes the socket.
	s.stop(syscall.SIGTERM)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left after SIGTERM: %v", err)
	}
}

// Two servers configured with the same admin socket path (each with its
// own data directory): the second refuses to start, naming the first's
// process, and the first keeps its socket.
func TestAdminSocketNotTakenFromLiveServer(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "admin.sock")
	conf := fmt.Sprintf("[listen]\nadmin = %q\n", shared)
	first := startServer(t, conf)
	second := newServer(t, conf, 0)
	cmd := exec.Command(binary, "serve", "--data", second.dir, "--config", second.config,
		"--c2s", second.c2s, "--c2s-tls", "off", "--http", second.http)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "admin socket "+shared+" belongs to a running server (process ") {
		t.Fatalf("second server on a live admin socket: %v\n%s", err, out)
	}
	out, err = exec.Command(binary, "status", "--config", first.config, "--data", first.dir).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "data directory:   "+first.dir) {
		t.Fatalf("the first server lost its socket: %v\n%s", err, out)
	}
}
