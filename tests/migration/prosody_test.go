package migration

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

const prosodyConfig = `pidfile = "{dir}/prosody.pid"
data_path = "{dir}/data"
log = { info = "{dir}/prosody.log" }
c2s_ports = { {port} }
c2s_interfaces = { "127.0.0.1" }
s2s_ports = { }
http_ports = { }
https_ports = { }
admin_socket = "{dir}/prosody.sock"
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_hashed"
modules_enabled = { "roster", "saslauth", "disco", "ping", "offline", "pep", "vcard_legacy", "private", "posix" }
modules_disabled = { "s2s", "tls" }
VirtualHost "old.example"
`

// The stores prosody-migrator copies. Not "offline-archive": Prosody
// 0.12's XEP-0227 writer has no offline store, and asking for it stops
// the migrator with "unsupported-datastore".
const prosodyMigratorConfig = `input {
  type = "internal";
  path = "{dir}/data";
  hosts = { ["old.example"] = { "accounts", "roster", "vcard", "private", "pep-pubsub" } };
}
output {
  type = "xep0227";
  path = "{dir}/out";
}
`

// TestFromProsody migrates accounts from Prosody 0.12: SCRAM-SHA-1
// credentials (Prosody's default hash, 10,000 iterations), roster with
// groups and a pending request both ways, the vCard (kept by
// mod_vcard_legacy as a XEP-0292 vCard4 PEP node), private XML.
func TestFromProsody(t *testing.T) {
	t.Parallel() // independent servers, ports and directories
	for _, bin := range []string{"/usr/bin/prosody", "/usr/bin/prosodyctl", "/usr/bin/prosody-migrator"} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s is not installed (apt-get install -y prosody): the Prosody migration is not tested", bin)
		}
	}
	needSlixmpp(t)
	dir := sharedDir(t, "prosody")
	port := freePort(t)
	fill := func(s string) string {
		return strings.NewReplacer("{dir}", dir, "{port}", strconv.Itoa(port)).Replace(s)
	}
	cfg := filepath.Join(dir, "prosody.cfg.lua")
	os.WriteFile(cfg, []byte(fill(prosodyConfig)), 0o644)
	os.MkdirAll(filepath.Join(dir, "data"), 0o750)
	os.MkdirAll(filepath.Join(dir, "out"), 0o750)
	// prosody-migrator writes XEP-0227 files into the data directory it
	// was built with (CFG_DATADIR, /var/lib/prosody on Debian), whatever
	// the output's path says: a copy pointed at our directory keeps the
	// system's out of it.
	src, err := os.ReadFile("/usr/bin/prosody-migrator")
	if err != nil {
		t.Fatal(err)
	}
	migrator := filepath.Join(dir, "prosody-migrator")
	patched := regexp.MustCompile(`(?m)^CFG_DATADIR=.*$`).ReplaceAll(src, []byte(`CFG_DATADIR='`+dir+`/out';`))
	if !strings.Contains(string(patched), dir+"/out") {
		t.Fatal("prosody-migrator has no CFG_DATADIR line to point elsewhere")
	}
	os.WriteFile(migrator, patched, 0o755)
	os.WriteFile(filepath.Join(dir, "migrator.cfg.lua"), []byte(fill(prosodyMigratorConfig)), 0o644)
	chownTree(t, dir, "prosody")

	start := time.Now()
	for _, u := range []string{"alice", "bob"} {
		cmd := exec.Command("prosodyctl", "--config", cfg, "register", u, "old.example", "pw-"+u)
		asUser(t, cmd, "prosody", dir)
		run(t, cmd)
	}
	srv := exec.Command("prosody", "--config", cfg, "-F")
	asUser(t, srv, "prosody", dir)
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			srv.Process.Signal(os.Interrupt)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				srv.Process.Kill()
				<-exited
			}
		}
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "prosody.log"))
			t.Logf("prosody.log:\n%s", b)
		}
	})
	waitListening(t, port, 30*time.Second, func() error {
		select {
		case err := <-exited:
			exited <- err
			return err
		default:
			return nil
		}
	})
	evs := peer(t, "seed", map[string]any{"host": "127.0.0.1", "port": port, "domain": "old.example",
		"users": map[string]string{"alice": "pw-alice", "bob": "pw-bob"}})
	if s := find(evs, "seeded"); len(s) != 1 || s[0].s("mech") != "SCRAM-SHA-1" {
		t.Fatalf("seeding Prosody: %v", evs)
	}
	stop() // an export of a stopped server, as the migration guide says

	cmd := exec.Command(migrator, "--config", filepath.Join(dir, "migrator.cfg.lua"), "input", "output")
	asUser(t, cmd, "prosody", dir)
	t.Logf("prosody-migrator:\n%s", run(t, cmd))
	files, _ := filepath.Glob(filepath.Join(dir, "out", "*@old.example.xml"))
	if len(files) != 2 {
		t.Fatalf("prosody-migrator wrote %v", files)
	}
	t.Logf("Prosody: set up and exported in %v", time.Since(start).Round(time.Millisecond))

	data, sum := importInto(t, "old.example", filepath.Join(dir, "out"))
	for _, want := range []string{"2 new", "contacts:         3", "PEP:              1 new nodes, 1 items", "vcards:           1 (1 built from a vCard4 PEP node", "only a SCRAM-SHA-1 credential (2)"} {
		if !strings.Contains(sum, want) {
			t.Fatalf("import summary lacks %q", want)
		}
	}
	if strings.Contains(sum, "PASSWORDS NOT CARRIED OVER") {
		t.Fatal("passwords reported as not carried over")
	}
	port2 := serveBluetick(t, data, "old.example")
	checkImported(t, port2, "old.example", "SCRAM-SHA-1", true, false)
	login := func(port int, mech string) ([]event, error) {
		return peerRun(t, "login", map[string]any{"host": "127.0.0.1", "port": port, "domain": "old.example", "mech": mech, "tls": true,
			"users": map[string]string{"alice": "pw-alice"}})
	}
	// PLAIN, the other mechanism a SCRAM-SHA-1-only account can use.
	if evs, err := login(port2, "PLAIN"); err != nil || len(find(evs, "login")) != 1 || find(evs, "login")[0].s("mech") != "PLAIN" {
		t.Fatalf("PLAIN login %v: %v", evs, err)
	}
	// The trap: a client left to choose picks SCRAM-SHA-256(-PLUS), which
	// the SCRAM-SHA-1-only account cannot do ...
	if evs, err := login(port2, ""); err == nil || len(find(evs, "auth_failed")) != 1 {
		t.Fatalf("SCRAM-SHA-256 login to a SCRAM-SHA-1-only account: %v %v", evs, err)
	}
	// ... and the way out: with sasl.scram_sha256 off the same client
	// chooses SCRAM-SHA-1(-PLUS) and logs in.
	conf := filepath.Join(t.TempDir(), "bluetick.toml")
	os.WriteFile(conf, []byte("[sasl]\nscram_sha256 = false\n"), 0o644)
	data2, _ := importInto(t, "old.example", filepath.Join(dir, "out"))
	port4 := serveBluetick(t, data2, "old.example", "--config", conf)
	if evs, err := login(port4, ""); err != nil || len(find(evs, "login")) != 1 || !strings.HasPrefix(find(evs, "login")[0].s("mech"), "SCRAM-SHA-1") {
		t.Fatalf("login with scram_sha256 off: %v %v", evs, err)
	}
}
