package web

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
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

// TestOMEMOInterop: Bluetick Web's OMEMO (eu.siacs.conversations.axolotl)
// with profanity's (0.13, libsignal-protocol-c), both ways, each way
// starting with the first message of a new session (a PreKey message)
// (scenario omemo-interop.mjs; docs/e2e.md "Interop with profanity").
//
//	alice (web)  ⇄ bob (profanity): bob starts the session; his first
//	               message is a PreKey message the web app opens, alice's
//	               answer goes on that session.
//	carol (web)  ⇄ bob (profanity): carol starts; her PreKey message is
//	               opened by profanity, and bob answers on that session.
//
// profanity runs with its default trust mode (manual): bob trusts alice's
// and carol's web devices by the fingerprints their own pages show
// (`/omemo trust JID FINGERPRINT`), which also proves both sides compute
// the same fingerprint from the same key.
func TestOMEMOInterop(t *testing.T) {
	need(t)
	s := startServer(t, nil, "alice", "bob", "carol")

	// Random texts: finding one on the server can only mean it went in clear.
	nonce := make([]byte, 5)
	rand.Read(nonce)
	tag := hex.EncodeToString(nonce)
	texts := map[string]string{
		"p2a": "Hi Alice, bob here on profanity, OMEMO on " + tag,  // bob → alice, PreKey
		"a2p": "Hi Bob, I read you, encrypted both ways " + tag,    // alice → bob
		"c2p": "Bob, Carol from the web app, first message " + tag, // carol → bob, PreKey
		"p2c": "Got it Carol, decrypted in profanity " + tag,       // bob → carol
	}

	prof, bobDevice := startOMEMOProfanity(t, s)
	t.Setenv("BLUETICK_TEST_PROFANITY", profBridge(t, prof))
	cfg, _ := json.Marshal(map[string]any{"texts": texts, "bobDevice": bobDevice})
	t.Setenv("BLUETICK_TEST_OMEMO", string(cfg))
	fs := runOn(t, s, "omemo-interop")

	// The web side: each text shown decrypted (data-e2e="ok"), what the
	// pages sent had no plaintext, and the first message each way was a
	// PreKey message.
	a := fs.get(t, "alice")
	if a.str("in_e2e") != "ok" || a.str("in_text") != texts["p2a"] {
		t.Errorf("alice's page with profanity's first message: %s, want it decrypted (data-e2e=ok)", a)
	}
	if !a.boolean("in_prekey") {
		t.Errorf("profanity's first message to alice was no PreKey message: %s", a)
	}
	if a.str("out_e2e") != "ok" || a.boolean("out_plain") || !a.boolean("out_encrypted") {
		t.Errorf("alice's answer: %s, want it sent encrypted only", a)
	}
	if a.str("fp_bob_web") == "" || a.str("fp_bob_web") != a.str("fp_bob_prof") {
		t.Errorf("bob's fingerprint: the web app shows %q, profanity %q", a.str("fp_bob_web"), a.str("fp_bob_prof"))
	}
	c := fs.get(t, "carol")
	if c.str("in_e2e") != "ok" || c.str("in_text") != texts["p2c"] {
		t.Errorf("carol's page with profanity's answer: %s, want it decrypted (data-e2e=ok)", c)
	}
	if !c.boolean("out_prekey") || c.boolean("out_plain") || c.str("out_e2e") != "ok" {
		t.Errorf("carol's first message: %s, want a PreKey message, no plaintext on her WebSocket", c)
	}

	// The profanity side: the web app's messages shown as OMEMO ('~'
	// marker) with their text, and profanity's own as OMEMO too.
	// Each chat is a window of its own: /msg JID shows it.
	for _, w := range []struct{ from, text, mine string }{
		{"alice@localhost", texts["a2p"], texts["p2a"]}, {"carol@localhost", texts["c2p"], texts["p2c"]},
	} {
		prof.typeLine("/msg " + w.from)
		theirs, ours := omemoLine(w.from, w.text), omemoLine("me", w.mine)
		var sc string
		for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if sc = prof.screenNoFail(); theirs.MatchString(sc) && ours.MatchString(sc) {
				break
			}
		}
		if !theirs.MatchString(sc) {
			t.Errorf("profanity does not show %q from %s as an OMEMO message", w.text, w.from)
		}
		if !ours.MatchString(sc) {
			t.Errorf("profanity does not show its own %q to %s as an OMEMO message", w.mine, w.from)
		}
	}
	log := prof.debugLog()
	// What profanity sent: no plaintext, and its first message to alice's
	// device was a PreKey message.
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "SENT: <message") {
			for _, m := range texts {
				if strings.Contains(line, m) {
					t.Errorf("profanity sent a plaintext: %s", line)
				}
			}
		}
	}
	if !regexp.MustCompile(`SENT: <message [^\n]*<key [^>]*prekey="(true|1)"[^>]*rid="` + a.str("device") + `"|SENT: <message [^\n]*<key [^>]*rid="` + a.str("device") + `"[^>]*prekey="(true|1)"`).MatchString(log) {
		t.Errorf("profanity sent no PreKey message to alice's web device %s", a.str("device"))
	}

	// The server never had any of the texts: not in its database files.
	for _, f := range []string{"bluetick.db", "bluetick.db-wal"} {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(tag)) {
			t.Errorf("a plaintext (tag %s) is in the server's %s", tag, f)
		}
	}
	t.Logf("profanity device %s; alice's web device %s, carol's %s", bobDevice, a.str("device"), c.str("device"))
}

// startOMEMOProfanity runs profanity as bob (in tmux, its own HOME),
// logged in to s, with its OMEMO identity made; it returns bob's device id.
func startOMEMOProfanity(t *testing.T, s *server) (*profTerm, string) {
	t.Helper()
	for _, tool := range []string{"profanity", "tmux"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (apt-get install -y profanity tmux)", tool)
		}
	}
	prof := profanitySignedIn(t, s, "bob", 30000)
	prof.typeLine("/omemo gen")
	return prof, prof.waitMatchOMEMO(regexp.MustCompile(`Your Device ID is (\d+)`), 40*time.Second)[1]
}

// omemoLine matches a line of profanity's chat window for an OMEMO
// message ('~'; a plain one has '-').
func omemoLine(from, text string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d ~ ` + regexp.QuoteMeta(from) + `(/\S+)?: ` + regexp.QuoteMeta(text) + `[ \t]*$`)
}

// waitMatchOMEMO waits until profanity's screen matches re.
func (p *profTerm) waitMatchOMEMO(re *regexp.Regexp, d time.Duration) []string {
	p.t.Helper()
	end := time.Now().Add(d)
	for {
		sc, err := p.capture()
		if err == nil {
			if m := re.FindStringSubmatch(sc); m != nil {
				return m
			}
		}
		if time.Now().After(end) {
			p.t.Fatalf("profanity: nothing matches %s after %v:\n%s", re, d, sc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// profBridge serves the scenario's hands on profanity, on loopback:
//
//	/type?line=…    types a line (and Enter)
//	/wait?text=…    waits until the screen shows text
//	/match?re=…     waits until the screen matches re; the submatches as JSON
//	/log?re=…       waits until profanity's debug log matches re
//	/screen         the screen now
//
// It returns the base URL.
func profBridge(t *testing.T, prof *profTerm) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	capture := func() (string, error) {
		mu.Lock()
		defer mu.Unlock()
		return prof.capture()
	}
	waitScreen := func(w http.ResponseWriter, what string, ok func(string) bool) {
		end := time.Now().Add(30 * time.Second)
		for {
			sc, err := capture()
			if err == nil && ok(sc) {
				return
			}
			if time.Now().After(end) {
				http.Error(w, fmt.Sprintf("%s not on profanity's screen:\n%s", what, sc), 504)
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/type", func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if err := prof.send(r.URL.Query().Get("line")); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/wait", func(w http.ResponseWriter, r *http.Request) {
		want := r.URL.Query().Get("text")
		waitScreen(w, fmt.Sprintf("%q", want), func(sc string) bool {
			if strings.Contains(sc, want) {
				fmt.Fprintln(w, "ok")
				return true
			}
			return false
		})
	})
	mux.HandleFunc("/match", func(w http.ResponseWriter, r *http.Request) {
		re, err := regexp.Compile(r.URL.Query().Get("re"))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		waitScreen(w, re.String(), func(sc string) bool {
			// The last match: the newest output.
			all := re.FindAllStringSubmatch(sc, -1)
			if len(all) == 0 {
				return false
			}
			json.NewEncoder(w).Encode(all[len(all)-1])
			return true
		})
	})
	mux.HandleFunc("/log", func(w http.ResponseWriter, r *http.Request) {
		re, err := regexp.Compile(r.URL.Query().Get("re"))
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		end := time.Now().Add(30 * time.Second)
		for !re.MatchString(prof.debugLog()) {
			if time.Now().After(end) {
				http.Error(w, fmt.Sprintf("profanity's debug log never matched %s", re), 504)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/screen", func(w http.ResponseWriter, r *http.Request) {
		sc, _ := capture()
		fmt.Fprint(w, sc)
	})
	hs := &http.Server{Handler: mux}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	return "http://" + ln.Addr().String()
}
