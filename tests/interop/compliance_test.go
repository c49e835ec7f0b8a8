package interop

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// docs/compliance.md is checked against XEP-0479, the repository's tests
// and a running server, so it cannot drift from what Bluetick does.

// advancedServer is every line XEP-0479 (Compliance Suites 2023) marks
// required in the Advanced Server column of the Core, Web, IM, Mobile and
// A/V suites, with its providers.
var advancedServer = []struct {
	suite, feature string
	providers      []string
}{
	{"Core", "Core features", []string{"RFC 6120"}},
	{"Core", "TLS", []string{"RFC 7590"}},
	{"Core", "Direct TLS", []string{"XEP-0368"}},
	{"Core", "Feature discovery", []string{"XEP-0030"}},
	{"Core", "Feature broadcasts", []string{"XEP-0115"}},
	{"Core", "Server Extensibility", []string{"XEP-0114"}},
	{"Core", "Event publishing", []string{"XEP-0163"}},
	{"Web", "Web Connection Mechanisms", []string{"RFC 7395", "XEP-0206"}},
	{"IM", "Core features", []string{"RFC 6121"}},
	{"IM", "User Avatar Compatibility", []string{"XEP-0398", "XEP-0153"}},
	{"IM", "vcard-temp", []string{"XEP-0054"}},
	{"IM", "Outbound Message Synchronization", []string{"XEP-0280"}},
	{"IM", "User Blocking", []string{"XEP-0191"}},
	{"IM", "Group Chat", []string{"XEP-0045", "XEP-0249"}},
	{"IM", "Advanced Group Chat", []string{"XEP-0048", "XEP-0313", "XEP-0402", "XEP-0410"}},
	{"IM", "Persistent Storage of Private Data via PubSub", []string{"XEP-0223"}},
	{"IM", "Private XML Storage", []string{"XEP-0049"}},
	{"IM", "Stream Management", []string{"XEP-0198"}},
	{"IM", "History Storage / Retrieval", []string{"XEP-0313"}},
	{"IM", "File Upload", []string{"XEP-0363"}},
	{"Mobile", "Stream Management", []string{"XEP-0198"}},
	{"Mobile", "Client State Indication", []string{"XEP-0352"}},
	{"Mobile", "Third Party Push Notifications", []string{"XEP-0357"}},
	{"A/V", "STUN/TURN server discovery", []string{"XEP-0215"}},
}

const complianceDoc = "../../docs/compliance.md"

var statuses = []string{"done", "partial", "missing", "missing (in progress)"}

type complianceRow struct {
	line                             int
	suite, feature, provider, status string
	advertised, proof                []string
}

var backticked = regexp.MustCompile("`([^`]+)`")

func ticks(cell string) []string {
	var out []string
	for _, m := range backticked.FindAllStringSubmatch(cell, -1) {
		out = append(out, m[1])
	}
	return out
}

// parseCompliance reads the table under "## Advanced Server requirements".
func parseCompliance(t *testing.T) []complianceRow {
	t.Helper()
	b, err := os.ReadFile(complianceDoc)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	start := slices.Index(lines, "## Advanced Server requirements")
	if start < 0 {
		t.Fatalf("%s has no \"## Advanced Server requirements\" section", complianceDoc)
	}
	var rows []complianceRow
	header := false
	for i := start + 1; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if !strings.HasPrefix(l, "|") {
			if header {
				break // the end of the table
			}
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		if !header {
			want := []string{"Suite", "Feature", "Provider", "Status", "Advertised", "Proof", "Notes"}
			if !slices.Equal(cells, want) {
				t.Fatalf("%s:%d: table header %v, want %v", complianceDoc, i+1, cells, want)
			}
			header = true
			i++ // the |---| line
			continue
		}
		if len(cells) != 7 {
			t.Fatalf("%s:%d: %d cells, want 7", complianceDoc, i+1, len(cells))
		}
		rows = append(rows, complianceRow{line: i + 1, suite: cells[0], feature: cells[1], provider: cells[2], status: cells[3],
			advertised: ticks(cells[4]), proof: ticks(cells[5])})
	}
	if len(rows) == 0 {
		t.Fatalf("%s: empty Advanced Server table", complianceDoc)
	}
	return rows
}

// testIndex lists the Go test, fuzz and benchmark functions and t.Run subtest names of the
// repository.
func testIndex(t *testing.T) (funcs, runs map[string]bool) {
	t.Helper()
	funcs, runs = map[string]bool{}, map[string]bool{}
	fn := regexp.MustCompile(`(?m)^func ((?:Test|Fuzz|Benchmark)\w+)\(`)
	run := regexp.MustCompile(`t\.Run\("([^"]+)"`)
	err := filepath.WalkDir("../..", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(p, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range fn.FindAllSubmatch(b, -1) {
			funcs[string(m[1])] = true
		}
		for _, m := range run.FindAllSubmatch(b, -1) {
			runs[string(m[1])] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return funcs, runs
}

func TestComplianceDoc(t *testing.T) {
	rows := parseCompliance(t)
	funcs, runs := testIndex(t)

	// Every required line and provider is there, once.
	type key struct{ suite, feature, provider string }
	have := map[key]int{}
	for _, r := range rows {
		have[key{r.suite, r.feature, r.provider}]++
	}
	want := map[key]bool{}
	for _, l := range advancedServer {
		for _, p := range l.providers {
			k := key{l.suite, l.feature, p}
			want[k] = true
			if have[k] != 1 {
				t.Errorf("%s: XEP-0479 %s / %s / %s appears %d times, want once", complianceDoc, l.suite, l.feature, p, have[k])
			}
		}
	}
	for _, r := range rows {
		if !want[key{r.suite, r.feature, r.provider}] {
			t.Errorf("%s:%d: %s / %s / %s is not an Advanced Server line of XEP-0479", complianceDoc, r.line, r.suite, r.feature, r.provider)
		}
		if !slices.Contains(statuses, r.status) {
			t.Errorf("%s:%d: status %q, want one of %q", complianceDoc, r.line, r.status, statuses)
		}
		if r.status == "done" && len(r.proof) == 0 {
			t.Errorf("%s:%d: %s is done but names no test", complianceDoc, r.line, r.provider)
		}
		for _, p := range r.proof {
			name, sub, _ := strings.Cut(p, "/")
			if !funcs[name] {
				t.Errorf("%s:%d: %s: no Go test function %s in the repository", complianceDoc, r.line, r.provider, name)
			}
			if sub != "" && !runs[sub] {
				t.Errorf("%s:%d: %s: no subtest t.Run(%q) in the repository", complianceDoc, r.line, r.provider, sub)
			}
		}
		for _, a := range r.advertised {
			where, _, ok := strings.Cut(strings.TrimPrefix(a, "!"), ":")
			if !ok || (where != "server" && where != "account" && where != "stream") {
				t.Errorf("%s:%d: advertised %q, want server:NS, account:NS or stream:NS", complianceDoc, r.line, a)
			}
		}
	}

	t.Run("advertised", func(t *testing.T) {
		if skipAll() {
			t.Skip("BLUETICK_INTEROP_SKIP=1")
		}
		got := advertised(t)
		for _, r := range rows {
			for _, a := range r.advertised {
				neg := strings.HasPrefix(a, "!") || strings.HasPrefix(r.status, "missing")
				where, ns, _ := strings.Cut(strings.TrimPrefix(a, "!"), ":")
				on := got[where][ns]
				switch {
				case neg && on:
					t.Errorf("%s:%d: %s (%s) advertises %s in the %s features, but the row says it must not be", complianceDoc, r.line, r.provider, r.status, ns, where)
				case !neg && !on:
					t.Errorf("%s:%d: %s (%s): %s is not advertised in the %s features (have %v)", complianceDoc, r.line, r.provider, r.status, ns, where, sortedFeatures(got[where]))
				}
			}
		}
	})
}

func sortedFeatures(m map[string]bool) []string {
	var out []string
	for f := range m {
		out = append(out, f)
	}
	slices.Sort(out)
	return out
}

// advertised starts bluetick with the archive, TURN and push on (upload
// and groups are on by default), logs in over STARTTLS and returns what it advertises: the
// stream features after authentication, the domain's and the account's
// disco#info features.
func advertised(t *testing.T) map[string]map[string]bool {
	t.Helper()
	s := startServerFull(t, fmt.Sprintf("[turn]\nenabled = true\nlisten = \"127.0.0.1:%d\"\n"+
		"[push]\nenabled = true\nallow_private = [\"127.0.0.1\"]\n[push.webhook]\nsecret = \"compliance-secret\"\nallowed_urls = \"http://127.0.0.1/\"\n", freeUDPTCPPort(t)), []string{"--archive", "archive"}, "alice")
	c := xmpptest.Dial(t, fmt.Sprintf("127.0.0.1:%d", s.c2s), domain)
	if f := c.Open(); f.Child(xmpptest.NSTLS, "starttls") == nil {
		t.Fatalf("no <starttls/> offered: %s", f)
	}
	c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if el := c.Next(); el.Name != "proceed" {
		t.Fatalf("starttls: %s", el)
	}
	tc := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true, ServerName: domain})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.Conn = tc
	c.Open() // Open resets the decoder onto the TLS connection
	c.Send(fmt.Sprintf("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
		base64.StdEncoding.EncodeToString([]byte("\x00alice\x00"+s.users["alice"]))))
	if el := c.Next(); el.Name != "success" {
		t.Fatalf("auth: %s", el)
	}
	out := map[string]map[string]bool{"stream": {}, "server": {}, "account": {}}
	for _, f := range c.Open().Elements() {
		out["stream"][f.Space] = true
	}
	c.Send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>compliance</resource></bind></iq>")
	c.Expect("iq")
	for _, q := range []struct{ where, to string }{{"server", domain}, {"account", s.jid("alice")}} {
		c.Send("<iq type='get' id='d-" + q.where + "' to='" + q.to + "'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
		var res *xmlstream.Element
		for res == nil {
			if el := c.Expect("iq"); el.Attr("id") == "d-"+q.where {
				res = el
			}
		}
		if res.Attr("type") != "result" {
			t.Fatalf("disco#info of %s: %s", q.to, res)
		}
		for _, f := range res.Child("http://jabber.org/protocol/disco#info", "query").Elements() {
			if f.Name == "feature" {
				out[q.where][f.Attr("var")] = true
			}
		}
	}
	return out
}

// 26. XEP-0398 and XEP-0402 #compat with slixmpp's own plugins: alice
// publishes a XEP-0084 avatar and bob (a contact) reads it as her vCard
// PHOTO; bob sees the server-computed XEP-0153 hash in alice's presence;
// alice sets a vCard PHOTO and bob is notified of the new PEP metadata
// and fetches the same bytes through XEP-0084; a XEP-0048 list stored in
// private XML shows up as PEP bookmarks, and a PEP bookmark shows up in
// the private XML list.
func testAvatarBookmarksCompat(t *testing.T) {
	s := startServer(t, "alice", "bob")
	shareMutualPresence(t, s, "alice", "bob")
	need(t, "slixmpp")
	evs := start(t, "slixmpp:avatar_bookmarks", nil, pythonPath, filepath.Join(clientsDir, "slix_compliance.py"), "avatar_bookmarks", s.config(nil)).finish(t)
	for _, r := range all(evs, "result") {
		if !r.boolean("ok") {
			t.Errorf("%s failed: %s %s: %s", r.str("name"), r.str("condition"), r.str("app"), r.str("xml"))
		}
	}
	f := one(t, evs, "disco").strs("features")
	for _, want := range []string{"urn:xmpp:pep-vcard-conversion:0", "urn:xmpp:bookmarks:1#compat"} {
		if !slices.Contains(f, want) {
			t.Errorf("account disco#info lacks %s: %v", want, f)
		}
	}
	if v := one(t, evs, "vcard_from_pep"); !v.boolean("same") || v.str("type") != "image/png" {
		t.Errorf("alice's vCard PHOTO after her PEP avatar: %s", v)
	}
	if p := one(t, evs, "presence_photo"); p.str("photo") != p.str("want") {
		t.Errorf("alice's presence carries photo hash %q, want %s", p.str("photo"), p.str("want"))
	}
	p := one(t, evs, "pep_from_vcard")
	info, _ := p["info"].(map[string]any)
	if p.str("from") != s.jid("alice") || info["id"] != p.str("want") || info["type"] != "image/gif" || info["bytes"] == nil {
		t.Errorf("metadata notification after the vCard set: %s", p)
	}
	if d := one(t, evs, "avatar_data"); !d.boolean("same") {
		t.Error("the PEP avatar data differs from the vCard PHOTO")
	}
	if got := one(t, evs, "pep_items").strs("ids"); !slices.Equal(got, []string{"legacy@conference.localhost"}) {
		t.Errorf("PEP bookmarks after the private XML store: %v", got)
	}
	if got := one(t, evs, "legacy_items").strs("jids"); !slices.Equal(got, []string{"legacy@conference.localhost", "modern@conference.localhost"}) {
		t.Errorf("private XML bookmarks after the PEP publish: %v", got)
	}
}
