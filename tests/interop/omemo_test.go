package interop

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" driver, to read the server's database
)

// 24. OMEMO end to end (issue 4) between two profanity instances (Debian's
// profanity 0.13, OMEMO through libsignal-protocol-c), each in its own
// tmux session with its own HOME, typed into with `tmux send-keys` and read
// with `tmux capture-pane`. See README.md, test 24.

const (
	omemoNS      = "eu.siacs.conversations.axolotl" // the OMEMO profanity speaks (XEP-0384 0.3)
	paneWait     = 25 * time.Second                 // the longest any one screen line is waited for
	profStartMax = 20 * time.Second
)

// profanity is one profanity process in a tmux session of the test's own
// tmux server (its own socket, killed at cleanup).
type profanity struct {
	t    *testing.T
	tmux []string // tmux -S SOCKET -f /dev/null
	name string   // tmux session name and account (alice, bob)
	home string
	s    *server
}

// startProfanity runs profanity for user in a new tmux session. Its
// config and data (OMEMO identity, chat log, debug log) live in home,
// which survives a restart.
func startProfanity(t *testing.T, s *server, tmux []string, user, home string) *profanity {
	t.Helper()
	p := &profanity{t: t, tmux: tmux, name: user, home: home, s: s}
	env := []string{"env", "-i", "HOME=" + home, "TERM=xterm-256color", "LANG=C.UTF-8",
		"PATH=/usr/bin:/bin", "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"XDG_DATA_HOME=" + filepath.Join(home, ".local", "share")}
	cmd := strings.Join(append(env, "profanity", "-l", "DEBUG"), " ")
	p.run("new-session", "-d", "-s", user, "-x", "220", "-y", "60", cmd)
	p.waitFor("Type '/help'", profStartMax)
	return p
}

func (p *profanity) run(args ...string) string {
	p.t.Helper()
	argv := append(append([]string(nil), p.tmux...), args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		p.t.Fatalf("%s: %v: %s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// typeLine types text literally into profanity and presses Enter.
func (p *profanity) typeLine(text string) {
	p.t.Helper()
	p.run("send-keys", "-t", p.name, "-l", text)
	p.run("send-keys", "-t", p.name, "Enter")
}

// screen is the current window with its scrollback, wrapped lines joined.
func (p *profanity) screen() string {
	p.t.Helper()
	return p.run("capture-pane", "-p", "-J", "-S", "-3000", "-t", p.name)
}

// waitFor waits until the screen contains want and returns the screen.
func (p *profanity) waitFor(want string, timeout time.Duration) string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sc := p.screen()
		if strings.Contains(sc, want) {
			return sc
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("profanity %s: %q not on the screen after %v; screen:\n%s", p.name, want, timeout, sc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitMatch waits until the screen matches re and returns the submatches.
func (p *profanity) waitMatch(re *regexp.Regexp, timeout time.Duration) []string {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		sc := p.screen()
		if m := re.FindStringSubmatch(sc); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("profanity %s: nothing matches %s after %v; screen:\n%s", p.name, re, timeout, sc)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// connect logs in over STARTTLS to the server's c2s port, trusting its
// self-signed certificate (`tls trust`), typing the password at the prompt.
func (p *profanity) connect() {
	p.t.Helper()
	p.typeLine(fmt.Sprintf("/connect %s server 127.0.0.1 port %d tls trust", p.s.jid(p.name), p.s.c2s))
	p.waitFor("Enter password", paneWait)
	p.typeLine(p.s.users[p.name])
	p.waitMatch(regexp.MustCompile(regexp.QuoteMeta(p.s.jid(p.name))+`/\S+ logged in successfully`), paneWait)
}

// quit ends profanity (its tmux session ends with it).
func (p *profanity) quit() {
	p.t.Helper()
	p.typeLine("/quit")
	deadline := time.Now().Add(paneWait)
	for {
		argv := append(append([]string(nil), p.tmux...), "has-session", "-t", p.name)
		if exec.Command(argv[0], argv[1:]...).Run() != nil {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("profanity %s did not quit", p.name)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// debugLog is profanity's own debug log (-l DEBUG): every stanza it sent
// and received.
func (p *profanity) debugLog() string {
	b, _ := os.ReadFile(filepath.Join(p.home, ".local", "share", "profanity", "logs", "profanity.log"))
	return string(b)
}

// chatLine matches a chat line of profanity's chat window: "HH:MM:SS ~ " is
// an OMEMO message ('~' is profanity's OMEMO marker; '-' would be plain).
func chatLine(from, text string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^\d\d:\d\d:\d\d ~ ` + regexp.QuoteMeta(from) + `(/\S+)?: ` + regexp.QuoteMeta(text) + `[ \t]*$`)
}

func testOMEMO(t *testing.T) {
	need(t, "profanity")
	s := startServerArgs(t, []string{"--archive", "archive"}, "alice", "bob")
	aliceJID, bobJID := s.jid("alice"), s.jid("bob")

	// A tmux server of our own: a private socket in a temp dir.
	tmpDir := t.TempDir()
	tmux := []string{"tmux", "-S", filepath.Join(tmpDir, "tmux.sock"), "-f", "/dev/null"}
	t.Cleanup(func() {
		argv := append(append([]string(nil), tmux...), "kill-server")
		exec.Command(argv[0], argv[1:]...).Run()
	})
	var profs []*profanity
	t.Cleanup(func() {
		if t.Failed() || verbose() {
			for _, p := range profs {
				log := p.debugLog()
				if len(log) > 40000 {
					log = "…" + log[len(log)-40000:]
				}
				t.Logf("---- profanity %s debug log (end) ----\n%s\n---- end ----", p.name, log)
			}
		}
	})

	// The plaintexts: random, so that finding one in the database can only
	// mean it was stored in clear.
	nonce := make([]byte, 6)
	rand.Read(nonce)
	tag := hex.EncodeToString(nonce)
	m1 := "while you were offline " + tag + "-one"
	m2 := "got it, encrypted reply " + tag + "-two"
	m3 := "and one more online " + tag + "-three"

	home := map[string]string{"alice": filepath.Join(tmpDir, "alice"), "bob": filepath.Join(tmpDir, "bob")}
	alice := startProfanity(t, s, tmux, "alice", home["alice"])
	bob := startProfanity(t, s, tmux, "bob", home["bob"])
	profs = []*profanity{alice, bob}
	alice.connect()
	bob.connect()

	// Keys: each generates its identity, signed prekey and 100 prekeys and
	// publishes its device list and bundle to its own PEP service. Trust
	// is blind (trust on first use, no fingerprint comparison).
	devID := regexp.MustCompile(`Your Device ID is (\d+)`)
	ids := map[string]string{}
	for _, p := range profs {
		p.typeLine("/omemo trustmode blind")
		p.waitFor("setting to blind", paneWait)
		p.typeLine("/omemo gen")
		ids[p.name] = p.waitMatch(devID, paneWait)[1]
	}

	// Contacts (mutual presence subscription), as in any chat app: the
	// nodes are created with the default access model, presence (see
	// "What is missing" in README.md: profanity only sends publish-options
	// when the server domain advertises them).
	alice.typeLine("/sub request " + bobJID)
	bob.waitFor("Received authorization request from "+aliceJID, paneWait)
	bob.typeLine("/sub allow " + aliceJID)
	bob.typeLine("/sub request " + aliceJID)
	alice.waitFor("Received authorization request from "+bobJID, paneWait)
	alice.typeLine("/sub allow " + bobJID)
	alice.waitFor("Subscription received from "+bobJID, paneWait)
	bob.waitFor("Subscription received from "+aliceJID, paneWait)

	// The bundles are in bluetick's PEP store.
	db := openDBReadOnly(t, s)
	for user, id := range ids {
		for _, node := range []string{omemoNS + ".devicelist", omemoNS + ".bundles:" + id} {
			var n int
			if err := db.QueryRow(`SELECT count(*) FROM pep_items WHERE user = ? AND node = ?`, user, node).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Fatalf("%s's PEP node %s has %d items, want 1", user, node, n)
			}
		}
	}

	// Bob goes offline. Alice starts OMEMO with him: she fetches his device
	// list and bundle from bluetick (bob is not there to answer), builds a
	// session from it and sends m1, which is stored offline.
	bob.quit()
	waitSessions(t, s, 1) // bob's session is gone (not kept for resumption)
	alice.typeLine("/omemo start " + bobJID)
	// Alice fetches bob's bundle through bluetick's PEP (from bob's bare
	// JID, answered by the server).
	bundleFrom := regexp.MustCompile(`RECV: <iq [^>]*from="` + regexp.QuoteMeta(bobJID) + `"[^>]*><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="` +
		regexp.QuoteMeta(omemoNS+".bundles:"+ids["bob"]) + `"><item `)
	waitLog(t, alice, bundleFrom)
	// ... after his device list (a PEP notification or an items result,
	// from bob's bare JID, naming his device).
	waitLog(t, alice, deviceListFrom(bobJID, ids["bob"]))
	alice.typeLine(m1)
	alice.waitMatch(chatLine("me", m1), paneWait)

	var offline []string
	deadline := time.Now().Add(paneWait)
	for len(offline) == 0 {
		offline = rows(t, db, `SELECT data FROM offline WHERE user = 'bob'`)
		if len(offline) == 0 && time.Now().After(deadline) {
			t.Fatalf("no offline row for bob after %v", paneWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(offline) != 1 {
		t.Fatalf("bob has %d offline rows, want 1 (m1): %q", len(offline), offline)
	}
	assertCiphertextOnly(t, "offline row", offline[0], m1, m2, m3)
	// The first message of a session is an OMEMO key exchange (PreKey
	// message), built from the bundle alice fetched.
	if !strings.Contains(offline[0], "<key rid='"+ids["bob"]+"' prekey='true'>") &&
		!strings.Contains(offline[0], `<key rid="`+ids["bob"]+`" prekey="true">`) {
		t.Errorf("offline row has no PreKey message for bob's device %s: %s", ids["bob"], offline[0])
	}

	// Bob comes back (same profanity home: same identity and device id),
	// gets m1 from offline storage and decrypts it.
	bob = startProfanity(t, s, tmux, "bob", home["bob"])
	profs[1] = bob
	bob.connect()
	bob.waitFor("chat message: "+aliceJID, paneWait)
	bob.typeLine("/win 2")
	bob.waitMatch(chatLine(aliceJID, m1), paneWait)
	// The row goes once bob's client has acknowledged the message, which
	// may come a moment after profanity shows it.
	for deadline := time.Now().Add(paneWait); ; time.Sleep(100 * time.Millisecond) {
		n := len(rows(t, db, `SELECT data FROM offline WHERE user = 'bob'`))
		if n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("bob still has %d offline rows %v after logging in", n, paneWait)
			break
		}
	}

	// Bob answers encrypted; alice decrypts. Alice sends m3 while bob is
	// online; bob decrypts.
	bob.typeLine("/omemo start " + aliceJID)
	bob.typeLine(m2)
	bob.waitMatch(chatLine("me", m2), paneWait)
	alice.waitMatch(chatLine(bobJID, m2), paneWait)
	alice.typeLine(m3)
	alice.waitMatch(chatLine("me", m3), paneWait)
	bob.waitMatch(chatLine(aliceJID, m3), paneWait)

	// Bob fetched alice's bundle through bluetick's PEP too (to answer).
	waitLog(t, bob, regexp.MustCompile(`RECV: <iq [^>]*from="`+regexp.QuoteMeta(aliceJID)+`"[^>]*><pubsub xmlns="http://jabber.org/protocol/pubsub"><items node="`+
		regexp.QuoteMeta(omemoNS+".bundles:"+ids["alice"])+`"><item `))
	waitLog(t, bob, deviceListFrom(aliceJID, ids["alice"]))

	// The archive: each message in the sender's and the recipient's archive,
	// all ciphertext.
	want := map[string]int{"alice": 3, "bob": 3}
	deadline = time.Now().Add(paneWait)
	for {
		got := map[string]int{}
		for _, u := range []string{"alice", "bob"} {
			for _, row := range rows(t, db, `SELECT data FROM archive WHERE user = ?`, u) {
				if strings.Contains(row, "<encrypted") {
					got[u]++
				}
			}
		}
		if got["alice"] >= want["alice"] && got["bob"] >= want["bob"] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("encrypted archive rows: %v, want at least %v", got, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
	archive := rows(t, db, `SELECT data FROM archive WHERE user IN ('alice', 'bob')`)
	encrypted := 0
	for _, row := range archive {
		if strings.Contains(row, "<encrypted") {
			encrypted++
			assertCiphertextOnly(t, "archive row", row, m1, m2, m3)
		}
		for _, m := range []string{m1, m2, m3} {
			if strings.Contains(row, m) {
				t.Errorf("plaintext %q in an archive row: %s", m, row)
			}
		}
	}
	t.Logf("OMEMO devices alice %s, bob %s; %d offline row and %d archive rows, all ciphertext", ids["alice"], ids["bob"], len(offline), encrypted)

	// Nowhere in the database files (main file and WAL) is any plaintext.
	db.Close()
	for _, f := range []string{"bluetick.db", "bluetick.db-wal"} {
		b, err := os.ReadFile(filepath.Join(s.dir, f))
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		for _, m := range []string{m1, m2, m3, tag} {
			if bytes.Contains(b, []byte(m)) {
				t.Errorf("plaintext %q found in %s", m, f)
			}
		}
	}
	s.alive(t)
}

// deviceListFrom matches a received stanza from owner carrying owner's
// OMEMO device list with device id.
func deviceListFrom(owner, id string) *regexp.Regexp {
	return regexp.MustCompile(`RECV: <(message|iq) [^>]*from="` + regexp.QuoteMeta(owner) + `"[^\n]*?<items node="` +
		regexp.QuoteMeta(omemoNS+".devicelist") + `"><item [^>]*><list xmlns="` + omemoNS + `">(<device [^>]*/>)*<device id="` + id + `"`)
}

// waitSessions waits until the server's /healthz counts n sessions.
func waitSessions(t *testing.T, s *server, n int) {
	t.Helper()
	cl := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(paneWait)
	var last string
	for {
		resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d/healthz", s.http))
		if err == nil {
			var h struct {
				Sessions int `json:"sessions"`
			}
			err = json.NewDecoder(resp.Body).Decode(&h)
			resp.Body.Close()
			if err == nil && h.Sessions == n {
				return
			}
			last = fmt.Sprintf("%d sessions", h.Sessions)
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			t.Fatalf("/healthz: want %d sessions, last answer: %s", n, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLog waits until p's debug log matches re.
func waitLog(t *testing.T, p *profanity, re *regexp.Regexp) {
	t.Helper()
	deadline := time.Now().Add(paneWait)
	for !re.MatchString(p.debugLog()) {
		if time.Now().After(deadline) {
			t.Fatalf("profanity %s: its debug log never matched %s", p.name, re)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// assertCiphertextOnly: the stored stanza carries an OMEMO <encrypted/>
// with a payload, and none of the plaintexts.
func assertCiphertextOnly(t *testing.T, what, data string, plaintexts ...string) {
	t.Helper()
	if !strings.Contains(data, "<encrypted xmlns='"+omemoNS+"'>") && !strings.Contains(data, `<encrypted xmlns="`+omemoNS+`">`) {
		t.Errorf("%s has no OMEMO <encrypted xmlns='%s'>: %s", what, omemoNS, data)
	}
	if !strings.Contains(data, "<payload>") {
		t.Errorf("%s has no <payload>: %s", what, data)
	}
	for _, m := range plaintexts {
		if strings.Contains(data, m) {
			t.Errorf("%s holds the plaintext %q: %s", what, m, data)
		}
	}
}

// openDBReadOnly opens the running server's SQLite database read-only
// (WAL: the server keeps writing while we read).
func openDBReadOnly(t *testing.T, s *server) *sql.DB {
	t.Helper()
	path := filepath.Join(s.dir, "bluetick.db")
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Ping(); err != nil {
		t.Fatalf("opening %s read-only: %v", path, err)
	}
	return db
}

func rows(t *testing.T, db *sql.DB, query string, args ...any) []string {
	t.Helper()
	r, err := db.Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for r.Next() {
		var b []byte
		if err := r.Scan(&b); err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
