package migration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Two hosts: old.example keeps SCRAM-SHA-1 credentials (ejabberd's
// default), new.example SCRAM-SHA-256 (auth_scram_hash), so both
// mechanisms are carried over and logged in with.
const ejabberdConfig = `hosts:
  - old.example
  - new.example
host_config:
  new.example:
    auth_scram_hash: sha256
loglevel: warning
listen:
  -
    port: {port}
    ip: "127.0.0.1"
    module: ejabberd_c2s
    starttls: false
acl:
  local:
    user_regexp: ""
access_rules:
  c2s:
    allow: all
auth_method: internal
auth_password_format: scram
modules:
  mod_roster: {}
  mod_privacy: {}
  mod_blocking: {}
  mod_offline: {}
  mod_vcard: {}
  mod_private: {}
  mod_caps: {}
  mod_disco: {}
  mod_ping: {}
`

// TestFromEjabberd migrates accounts from ejabberd 23.01 with its own
// exporter (ejabberdctl export_piefxis): credentials as stored SCRAM keys
// of both hashes, rosters, vcard-temp, private XML, an offline message
// and a block (kept by ejabberd as a privacy list); then Bluetick exports what it imported and a fresh server
// imports that: the round trip keeps it all, offline message included.
func TestFromEjabberd(t *testing.T) {
	t.Parallel() // independent servers, ports and directories
	if _, err := os.Stat("/usr/sbin/ejabberdctl"); err != nil {
		t.Skip("/usr/sbin/ejabberdctl is not installed (apt-get install -y ejabberd): the ejabberd migration is not tested")
	}
	if os.Geteuid() != 0 {
		if u := os.Getenv("USER"); u != "ejabberd" {
			t.Skip("ejabberdctl runs only as root or as the ejabberd user: the ejabberd migration is not tested")
		}
	}
	needSlixmpp(t)
	dir := sharedDir(t, "ejabberd")
	port := freePort(t)
	for _, d := range []string{"spool", "logs", "out"} {
		os.MkdirAll(filepath.Join(dir, d), 0o750)
	}
	os.WriteFile(filepath.Join(dir, "ejabberd.yml"), []byte(strings.ReplaceAll(ejabberdConfig, "{port}", strconv.Itoa(port))), 0o644)
	// A cfg of our own: Debian's /etc/ejabberd/ejabberdctl.cfg would win
	// over --config and start the system's configuration.
	os.WriteFile(filepath.Join(dir, "ejabberdctl.cfg"), []byte(fmt.Sprintf("ERL_OPTIONS=\"-env ERL_CRASH_DUMP_BYTES 0\"\nEJABBERD_PID_PATH=%s/ejabberd.pid\n", dir)), 0o644)
	chownTree(t, dir, "ejabberd")
	node := fmt.Sprintf("bt%d@localhost", os.Getpid())
	ctl := func(args ...string) string {
		t.Helper()
		base := []string{"--ctl-config", filepath.Join(dir, "ejabberdctl.cfg"), "--config", filepath.Join(dir, "ejabberd.yml"),
			"--spool", filepath.Join(dir, "spool"), "--logs", filepath.Join(dir, "logs"), "--node", node}
		return run(t, exec.Command("/usr/sbin/ejabberdctl", append(base, args...)...))
	}
	start := time.Now()
	ctl("start")
	running := true
	stop := func() {
		if running {
			running = false
			ctl("stop")
			ctl("stopped")
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "logs", "error.log"))
			t.Logf("ejabberd error.log:\n%s", b)
		}
	})
	ctl("started")
	users := map[string]string{"alice": "pw-alice", "bob": "pw-bob"}
	for _, host := range []string{"old.example", "new.example"} {
		for u, pw := range users {
			ctl("register", u, host, pw)
		}
	}
	waitListening(t, port, 30*time.Second, nil)
	for _, host := range []string{"old.example", "new.example"} {
		evs := peer(t, "seed", map[string]any{"host": "127.0.0.1", "port": port, "domain": host, "users": users, "block": true})
		if len(find(evs, "seeded")) != 1 {
			t.Fatalf("seeding ejabberd %s: %v", host, evs)
		}
	}
	ctl("export_piefxis", filepath.Join(dir, "out"))
	stop()
	t.Logf("ejabberd: set up and exported in %v", time.Since(start).Round(time.Millisecond))
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*.xml"))
	if len(files) != 3 { // the main file and one per host
		t.Fatalf("export_piefxis wrote %v", files)
	}

	for _, tc := range []struct{ host, mech string }{{"old.example", "SCRAM-SHA-1"}, {"new.example", "SCRAM-SHA-256"}} {
		t.Run(tc.host, func(t *testing.T) {
			data, sum := importInto(t, tc.host, filepath.Join(dir, "out"))
			other := map[string]string{"old.example": "new.example", "new.example": "old.example"}[tc.host]
			for _, want := range []string{"2 new", "contacts:         3", "vcards:           1", "offline messages: 1 stored",
				other + ": 2 accounts (import them with --domain " + other} {
				if !strings.Contains(sum, want) {
					t.Fatalf("import summary lacks %q", want)
				}
			}
			if strings.Contains(sum, "PASSWORDS NOT CARRIED OVER") {
				t.Fatal("passwords reported as not carried over")
			}
			// Importing again changes nothing and stores no message twice.
			again := bluetick(t, "import", filepath.Join(dir, "out"), "--data", data, "--domain", tc.host)
			if !strings.Contains(again, "0 new, 2 already there") || !strings.Contains(again, "offline messages: 0 stored, 1 already there") {
				t.Fatalf("second import:\n%s", again)
			}
			if tc.host == "new.example" {
				// Round trip: Bluetick's export, imported into a fresh
				// data directory, is what is checked below.
				exported := filepath.Join(t.TempDir(), "bluetick-export")
				out := bluetick(t, "export", exported+"/", "--data", data, "--domain", tc.host)
				t.Logf("bluetick export:\n%s", out)
				data, sum = importInto(t, tc.host, exported)
				if !strings.Contains(sum, "2 new") || !strings.Contains(sum, "offline messages: 1 stored") || !strings.Contains(sum, "vcards:           1") {
					t.Fatalf("re-import of Bluetick's export:\n%s", sum)
				}
			}
			port := serveBluetick(t, data, tc.host)
			// A running server holds the data directory: import refuses.
			cmd := exec.Command(binPath, "import", filepath.Join(dir, "out"), "--data", data, "--domain", tc.host)
			if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "stop the server first") {
				t.Fatalf("import into a running server's data directory: %v\n%s", err, out)
			}
			evs := checkImported(t, port, tc.host, tc.mech, false, true)
			// ejabberd keeps XEP-0191 blocks as a privacy list; they
			// arrive as the blocklist.
			if b := find(evs, "blocklist"); len(b) != 1 || fmt.Sprint(b[0]["jids"]) != "[spammer@evil.example]" {
				t.Fatalf("alice's blocklist %v", b)
			}
		})
	}
}
