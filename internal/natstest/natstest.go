// Package natstest starts real nats-server processes (Debian's package) on
// loopback for tests: cluster mode is tested against the engine it runs
// on, not a mock.
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Binary finds nats-server, or fails the test with how to install it
// (skips when BLUETICK_SKIP_NATS=1).
func Binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{os.Getenv("BLUETICK_NATS_SERVER"), "/usr/sbin/nats-server", "/usr/bin/nats-server"} {
		if p != "" {
			if _, err := os.Stat(p); err == nil {
				return p
			}
		}
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	if os.Getenv("BLUETICK_SKIP_NATS") == "1" {
		t.Skip("nats-server not installed and BLUETICK_SKIP_NATS=1")
	}
	t.Fatal("nats-server is not installed: apt-get install -y nats-server (or set BLUETICK_SKIP_NATS=1 to skip cluster tests)")
	return ""
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Server is one running nats-server.
type Server struct {
	URL     string
	cmd     *exec.Cmd
	stopped bool
}

// Stop kills the server (as a crash would).
func (s *Server) Stop() {
	if !s.stopped {
		s.stopped = true
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// Start runs a standalone JetStream-enabled nats-server on loopback.
func Start(t testing.TB) *Server {
	return Cluster(t, 1)[0]
}

// Cluster runs n nats-servers on loopback routed into one JetStream
// cluster (n >= 3 for a real quorum; n == 1 is standalone).
func Cluster(t testing.TB, n int) []*Server {
	t.Helper()
	bin := Binary(t)
	ports := make([]int, n)
	routes := make([]int, n)
	for i := range ports {
		ports[i] = FreePort(t)
		routes[i] = FreePort(t)
	}
	var all []string
	for _, r := range routes {
		all = append(all, fmt.Sprintf("nats://127.0.0.1:%d", r))
	}
	servers := make([]*Server, n)
	for i := 0; i < n; i++ {
		dir := t.TempDir()
		conf := fmt.Sprintf("listen: 127.0.0.1:%d\nserver_name: n%d\njetstream { store_dir: %q }\n", ports[i], i, dir)
		if n > 1 {
			conf += fmt.Sprintf("cluster { name: bt\n listen: 127.0.0.1:%d\n routes: [%s] }\n", routes[i], strings.Join(all, ", "))
		}
		cf := filepath.Join(dir, "nats.conf")
		if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-c", cf)
		log, _ := os.Create(filepath.Join(dir, "nats.log"))
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		s := &Server{URL: fmt.Sprintf("nats://127.0.0.1:%d", ports[i]), cmd: cmd}
		servers[i] = s
		t.Cleanup(s.Stop)
	}
	for _, s := range servers {
		waitPort(t, strings.TrimPrefix(s.URL, "nats://"))
	}
	return servers
}

func waitPort(t testing.TB, addr string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nats-server at %s did not start", addr)
}
