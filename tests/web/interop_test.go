package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestWebInterop: Bluetick Web chats with clients no one here wrote, both
// ways, with receipts (interop.mjs): slixmpp (Debian's python3-slixmpp,
// peers/slix_web.py on tests/interop/clients/slix.py) and profanity (in
// tmux, as tests/interop drives it; plain text, OMEMO off). slixmpp
// answers receipts (xep_0184) and here sends a XEP-0333 displayed marker
// for one message; profanity sends receipts (/receipts send on) and no
// chat markers, so its ticks stop at ✓✓.
func TestWebInterop(t *testing.T) {
	need(t)
	for _, tool := range []string{"/usr/bin/python3", "profanity", "tmux"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (apt-get install -y python3-slixmpp profanity tmux)", tool)
		}
	}
	s := startServer(t, nil, "alice", "bob", "carol")

	// slixmpp as bob, in the background until alice says bye.
	slixOut := &syncBuffer{}
	slixErr := &syncBuffer{}
	scfg, _ := json.Marshal(map[string]any{
		"host": "127.0.0.1", "c2s": s.c2s, "tls": s.tls, "domain": domain, "users": s.users,
		"timeout": 100, "args": map[string]any{"user": "bob", "peer": "alice", "wait": 90},
	})
	ctx, cancel := context.WithTimeout(context.Background(), scriptMax)
	defer cancel()
	slixCmd := exec.CommandContext(ctx, "/usr/bin/python3", filepath.Join("peers", "slix_web.py"), "webpeer", string(scfg))
	slixCmd.Stdout, slixCmd.Stderr = slixOut, slixErr
	slixCmd.WaitDelay = 3 * time.Second
	if err := slixCmd.Start(); err != nil {
		t.Fatal(err)
	}
	slixDone := make(chan error, 1)
	go func() { slixDone <- slixCmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() || verbose() {
			t.Logf("---- slixmpp stdout ----\n%s\n---- slixmpp stderr (end) ----\n%s", slixOut.String(), tail(slixErr.String(), 6000))
		}
	})
	waitOut(t, slixOut, `"event": "ready"`, 20*time.Second)

	// profanity as carol.
	prof := profanitySignedIn(t, s, "carol", 8000)
	prof.typeLine("/receipts send on")
	prof.typeLine("/receipts request on")

	// The scenario drives profanity through this: /type?line=…, /wait?text=….
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var profMu sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("/type", func(w http.ResponseWriter, r *http.Request) {
		profMu.Lock()
		defer profMu.Unlock()
		if err := prof.send(r.URL.Query().Get("line")); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		want := r.URL.Query().Get("text")
		end := time.Now().Add(25 * time.Second)
		for {
			profMu.Lock()
			sc, err := prof.capture()
			profMu.Unlock()
			if err == nil && strings.Contains(sc, want) {
				fmt.Fprintln(w, "ok")
				return
			}
			if time.Now().After(end) {
				http.Error(w, fmt.Sprintf("%q not on profanity's screen:\n%s", want, sc), 504)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	defer hs.Close()
	t.Setenv("BLUETICK_TEST_PROFANITY", "http://"+ln.Addr().String())

	fs := runOn(t, s, "interop")

	// What slixmpp saw.
	select {
	case err := <-slixDone:
		if err != nil {
			t.Errorf("slixmpp: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("slixmpp did not end after bye")
	}
	var sent string
	var got []map[string]any
	receipts, displayed := map[string]bool{}, map[string]bool{}
	for _, line := range strings.Split(slixOut.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(line), &e) != nil {
			continue
		}
		id, _ := e["id"].(string)
		switch e["event"] {
		case "sent":
			sent = id
		case "received":
			got = append(got, e)
		case "receipt":
			receipts[id] = true
		case "displayed":
			displayed[id] = true
		case "error", "timeout":
			t.Errorf("slixmpp: %v", e)
		}
	}
	if !receipts[sent] || !displayed[sent] {
		t.Errorf("slixmpp's message %s: receipt %v, displayed %v from the app; want both", sent, receipts[sent], displayed[sent])
	}
	if len(got) < 3 {
		t.Fatalf("slixmpp received %d messages from the app: %v", len(got), got)
	}
	for _, e := range got {
		if e["receipt_requested"] != true || e["markable"] != true || e["origin_id"] == nil {
			t.Errorf("the app's message as slixmpp got it: %v, want a receipt request, markable and an origin-id", e)
		}
	}

	sl := fs.get(t, "slixmpp")
	if sl.str("incoming") != "hello from slixmpp" || sl.str("ack") != "delivered" || sl.str("read") != "read" || sl.str("reply") != "slixmpp got: hi slixmpp, read this" {
		t.Errorf("the app with slixmpp: %s", sl)
	}
	pr := fs.get(t, "profanity")
	if pr.str("incoming") != "hello from profanity" || pr.str("tick") != "delivered" {
		t.Errorf("the app with profanity: %s, want profanity's message shown and ✓✓ (profanity sends no displayed markers)", pr)
	}
	// profanity asked the app for a receipt (it knows the app supports
	// them from its caps) and got it.
	log := prof.debugLog()
	if m := regexp.MustCompile(`SENT: <message id="([^"]+)"[^>]*><body>hello from profanity</body>.*<request xmlns="urn:xmpp:receipts"/>`).FindStringSubmatch(log); m != nil {
		if !regexp.MustCompile(`RECV: <message[^>]*from="alice@localhost/[^"]*"[^>]*><received id="` + regexp.QuoteMeta(m[1]) + `" xmlns="urn:xmpp:receipts"`).MatchString(log) {
			t.Errorf("profanity asked the app for a receipt for %s and got none", m[1])
		}
	} else {
		t.Errorf("profanity did not ask for a receipt for its message (/receipts request on)")
	}
}

// profanitySignedIn starts profanity for user in a tmux server of the
// test's own (killed at cleanup) and signs it in over STARTTLS. A failed
// test logs its screen and the last logTail bytes of its debug log.
func profanitySignedIn(t *testing.T, s *server, user string, logTail int) *profTerm {
	t.Helper()
	tmp := t.TempDir()
	tmux := []string{"tmux", "-S", filepath.Join(tmp, "tmux.sock"), "-f", "/dev/null"}
	t.Cleanup(func() { exec.Command(tmux[0], append(tmux[1:], "kill-server")...).Run() })
	prof := &profTerm{t: t, tmux: tmux, name: user, home: filepath.Join(tmp, user)}
	t.Cleanup(func() {
		if t.Failed() || verbose() {
			t.Logf("---- profanity screen ----\n%s\n---- profanity debug log (end) ----\n%s", prof.screenNoFail(), tail(prof.debugLog(), logTail))
		}
	})
	prof.start()
	prof.typeLine(fmt.Sprintf("/connect %s@%s server 127.0.0.1 port %d tls trust", user, domain, s.c2s))
	prof.waitFor("Enter password", 25*time.Second)
	prof.typeLine(s.users[user])
	prof.waitFor("logged in successfully", 25*time.Second)
	return prof
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

func waitOut(t *testing.T, b *syncBuffer, want string, d time.Duration) {
	t.Helper()
	end := time.Now().Add(d)
	for !strings.Contains(b.String(), want) {
		if time.Now().After(end) {
			t.Fatalf("%q not printed after %v: %s", want, d, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// profTerm is profanity in a tmux session of the test's own tmux server
// (as in tests/interop/omemo_test.go).
type profTerm struct {
	t          *testing.T
	tmux       []string
	name, home string
}

func (p *profTerm) tm(args ...string) (string, error) {
	argv := append(append([]string(nil), p.tmux...), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out), nil
}

func (p *profTerm) start() {
	env := []string{"env", "-i", "HOME=" + p.home, "TERM=xterm-256color", "LANG=C.UTF-8",
		"PATH=/usr/bin:/bin", "XDG_CONFIG_HOME=" + filepath.Join(p.home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(p.home, ".local", "share")}
	os.MkdirAll(p.home, 0o700)
	if _, err := p.tm("new-session", "-d", "-s", p.name, "-x", "220", "-y", "60", strings.Join(append(env, "profanity", "-l", "DEBUG"), " ")); err != nil {
		p.t.Fatal(err)
	}
	p.waitFor("Type '/help'", 20*time.Second)
}

func (p *profTerm) send(line string) error {
	if _, err := p.tm("send-keys", "-t", p.name, "-l", line); err != nil {
		return err
	}
	_, err := p.tm("send-keys", "-t", p.name, "Enter")
	return err
}

func (p *profTerm) typeLine(line string) {
	p.t.Helper()
	if err := p.send(line); err != nil {
		p.t.Fatal(err)
	}
}

func (p *profTerm) capture() (string, error) {
	return p.tm("capture-pane", "-p", "-J", "-S", "-3000", "-t", p.name)
}

func (p *profTerm) screenNoFail() string { s, _ := p.capture(); return s }

func (p *profTerm) waitFor(want string, d time.Duration) {
	p.t.Helper()
	end := time.Now().Add(d)
	for {
		sc, err := p.capture()
		if err == nil && strings.Contains(sc, want) {
			return
		}
		if time.Now().After(end) {
			p.t.Fatalf("profanity: %q not on the screen after %v:\n%s", want, d, sc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (p *profTerm) debugLog() string {
	b, _ := os.ReadFile(filepath.Join(p.home, ".local", "share", "profanity", "logs", "profanity.log"))
	return string(b)
}
