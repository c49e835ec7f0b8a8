// Package dist holds what installs Bluetick on a machine: the systemd unit
// (bluetick.service). Its test checks the unit's hardening and, where
// systemd-analyze is installed, that systemd accepts it.
package dist

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// unit is a parsed unit file: section -> key -> values in order.
type unit map[string]map[string][]string

func parseUnit(t *testing.T, path string) (unit, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{}
	var comments []string
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
			comments = append(comments, strings.TrimSpace(line[1:]))
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" {
				t.Fatalf("%s:%d: not key=value in a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u, comments
}

// last is the value systemd uses for a single-valued key.
func (u unit) last(section, key string) (string, bool) {
	vs := u[section][key]
	if len(vs) == 0 {
		return "", false
	}
	return vs[len(vs)-1], true
}

func TestServiceUnitHardening(t *testing.T) {
	u, comments := parseUnit(t, "bluetick.service")
	for _, kv := range []struct{ key, want string }{
		{"User", "bluetick"},
		{"Group", "bluetick"},
		{"ProtectSystem", "strict"},
		{"ReadWritePaths", "/var/lib/bluetick"},
		{"StateDirectory", "bluetick"},
		{"NoNewPrivileges", "yes"},
		{"PrivateTmp", "yes"},
		{"ProtectHome", "yes"},
		{"KillSignal", "SIGTERM"},
		// Empty: no capability at all by default.
		{"CapabilityBoundingSet", ""},
		{"AmbientCapabilities", ""},
	} {
		if got, ok := u.last("Service", kv.key); !ok || got != kv.want {
			t.Errorf("[Service] %s = %q (set: %v), want %q", kv.key, got, ok, kv.want)
		}
	}
	if v, _ := u.last("Service", "LimitNOFILE"); v == "" {
		t.Error("[Service] LimitNOFILE is not set: every client is a file descriptor")
	} else if n, err := strconv.Atoi(v); err != nil || n < 65536 {
		t.Errorf("[Service] LimitNOFILE = %s, want at least 65536", v)
	}
	start, _ := u.last("Service", "ExecStart")
	if !strings.HasPrefix(start, "/usr/local/bin/bluetick serve ") || !strings.Contains(start, "--data /var/lib/bluetick") {
		t.Errorf("[Service] ExecStart = %q: want /usr/local/bin/bluetick serve ... --data /var/lib/bluetick", start)
	}
	// CAP_NET_BIND_SERVICE only as an opt-in for ports under 1024.
	optIn := 0
	for _, c := range comments {
		if c == "CapabilityBoundingSet=CAP_NET_BIND_SERVICE" || c == "AmbientCapabilities=CAP_NET_BIND_SERVICE" {
			optIn++
		}
	}
	if optIn != 2 {
		t.Error("the commented CAP_NET_BIND_SERVICE opt-in lines (CapabilityBoundingSet and AmbientCapabilities) are missing")
	}
	if got, _ := u.last("Install", "WantedBy"); got != "multi-user.target" {
		t.Errorf("[Install] WantedBy = %q", got)
	}
}

// systemd itself accepts the unit (no unknown key, no bad value), and its
// own exposure score rates the hardening "OK".
func TestServiceUnitSystemdAnalyze(t *testing.T) {
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd)")
	}
	b, err := os.ReadFile("bluetick.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify checks that ExecStart's program exists: stand in for the
	// installed binary.
	path := filepath.Join(t.TempDir(), "bluetick.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(b), "/usr/local/bin/bluetick", "/bin/true")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("systemd-analyze", "verify", path).CombinedOutput()
	if err != nil || strings.Contains(string(out), "bluetick.service") {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", path).CombinedOutput()
	if err != nil {
		t.Skipf("systemd-analyze security --offline (systemd 252 or later): %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for bluetick\.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Errorf("systemd exposure level %.1f, want at most 2.0 (\"OK\"):\n%s", score, out)
	}
	t.Logf("systemd-analyze security: exposure %s", m[1])
}
