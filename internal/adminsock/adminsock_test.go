package adminsock

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// fake answers every command; the real server's backend is tested by
// cmd/bluetick against a running server.
type fake struct{}

func (fake) Status(context.Context) (Status, error) { return Status{Version: "test", Accounts: 3}, nil }
func (fake) Sessions(context.Context) (SessionList, error) {
	return SessionList{Sessions: []Session{{JID: "alice@localhost/pc", Transport: "tls"}}}, nil
}
func (fake) Kick(_ context.Context, j, _ string) (Count, error) {
	if j == "nobody@localhost" {
		return Count{}, Errorf(CodeNotFound, "no user %s", j)
	}
	return Count{N: 1, Scope: "cluster"}, nil
}
func (fake) Rooms(context.Context) (RoomList, error) { return RoomList{}, errors.New("store down") }
func (fake) Destroy(context.Context, string, string) (Count, error) {
	return Count{}, nil
}
func (fake) Announce(context.Context, string, string) (Count, error) { return Count{N: 2}, nil }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestCallAndErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	s, err := Listen(path, fake{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	var st Status
	if err := Call(t.Context(), path, Request{Op: OpStatus}, &st); err != nil || st.Accounts != 3 {
		t.Fatalf("status: %+v %v", st, err)
	}
	var e *Error
	if err := Call(t.Context(), path, Request{Op: OpKick, JID: "nobody@localhost"}, nil); !errors.As(err, &e) || e.Code != CodeNotFound {
		t.Fatalf("kick of an unknown user: %v", err)
	}
	if err := Call(t.Context(), path, Request{Op: OpRooms}, nil); !errors.As(err, &e) || e.Code != CodeInternal || !strings.Contains(e.Message, "store down") {
		t.Fatalf("backend failure: %v", err)
	}
	if err := Call(t.Context(), path, Request{Op: "reboot"}, nil); !errors.As(err, &e) || e.Code != CodeBadRequest {
		t.Fatalf("unknown op: %v", err)
	}
	// A client of another protocol version is told which one to use.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte(`{"v":2,"op":"status"}` + "\n"))
	b := make([]byte, 4096)
	n, _ := c.Read(b)
	if !strings.Contains(string(b[:n]), `"code":"version"`) {
		t.Fatalf("version 2 request: %s", b[:n])
	}
}

// A second server on the same path is refused while the first lives, and
// the first keeps its socket.
func TestLiveSocketNotReplaced(t *testing.T) {
	path := filepath.Join(t.TempDir(), "admin.sock")
	s, err := Listen(path, fake{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := Listen(path, fake{}, quiet); err == nil || !strings.Contains(err.Error(), "belongs to a running server (process ") {
		t.Fatalf("second listener: %v", err)
	}
	if err := Call(t.Context(), path, Request{Op: OpStatus}, nil); err != nil {
		t.Fatalf("the first server lost its socket: %v", err)
	}
	// Even without the lock file (deleted by hand), a socket that answers
	// is left alone.
	os.Remove(path + lockSuffix)
	if _, err := Listen(path, fake{}, quiet); err == nil || !strings.Contains(err.Error(), "a process answers on it") {
		t.Fatalf("listener over a live socket without its lock: %v", err)
	}
	if err := Call(t.Context(), path, Request{Op: OpStatus}, nil); err != nil {
		t.Fatalf("the first server lost its socket: %v", err)
	}
}

// What a crashed server leaves (a socket file nobody listens on, its
// unlocked lock file) is replaced; a file that is not a socket is not
// deleted.
func TestStaleSocketReplaced(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	os.WriteFile(path+lockSuffix, []byte("999999\n"), 0o600)
	if err := Call(t.Context(), path, Request{Op: OpStatus}, nil); !errors.Is(err, ErrNoServer) {
		t.Fatalf("call on a stale socket: %v, want ErrNoServer", err)
	}
	s, err := Listen(path, fake{}, quiet)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	if err := Call(t.Context(), path, Request{Op: OpStatus}, nil); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket left after Close: %v", err)
	}
	if err := Call(t.Context(), path, Request{Op: OpStatus}, nil); !errors.Is(err, ErrNoServer) {
		t.Fatalf("call with no server: %v, want ErrNoServer", err)
	}

	os.WriteFile(path, []byte("not a socket"), 0o600)
	if _, err := Listen(path, fake{}, quiet); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Fatalf("listener over a regular file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "not a socket" {
		t.Fatal("the regular file was touched")
	}
	if _, err := Listen(filepath.Join(dir, strings.Repeat("x", 120)), fake{}, quiet); err == nil || !strings.Contains(err.Error(), "shorter path") {
		t.Fatalf("too long a path: %v", err)
	}
}

// The socket's mode keeps other users out; if it is loosened (or reached
// before its chmod), the peer check still refuses them.
func TestOtherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	dir := t.TempDir()
	os.Chmod(filepath.Dir(dir), 0o755)
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "admin.sock")
	s, err := Listen(path, fake{}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	client := func() (string, error) {
		cmd := exec.Command("/usr/bin/python3", "-c", `
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect:", e.strerror); sys.exit(0)
try:
    s.sendall(b'{"v":1,"op":"status"}\n')
    print("answer:", s.recv(4096).decode())
except (ConnectionResetError, BrokenPipeError):
    print("answer:")
`, path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := client(); err != nil || out != "connect: Permission denied" {
		t.Fatalf("nobody on the 0600 socket: %q %v", out, err)
	}
	os.Chmod(path, 0o666)
	if out, err := client(); err != nil || out != "answer:" {
		t.Fatalf("nobody on a loosened socket: %q %v, want the connection closed unanswered", out, err)
	}
}
