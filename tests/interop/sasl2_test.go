package interop

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// 28. xmpp.js with SASL2 (XEP-0388), Bind2 (XEP-0386) and XEP-0198 inline:
// one <authenticate/> with a <user-agent/> and a Bind2 request that
// enables stream management; a message each way; then the connection is
// cut and xmpp.js resumes inside its next <authenticate/>, getting the
// message sent meanwhile with no other round trip. Over WebSocket and over
// direct TLS.
func testSASL2(t *testing.T) {
	need(t, "xmppjs")
	for _, v := range []struct {
		name, service, transport string
		fast                     bool // FAST is offered: on TLS, and on loopback (where these tests run) like passwords
	}{
		{"websocket", "", "ws", true},
		{"direct_tls", "xmpps://127.0.0.1:%d", "xmpps", true},
	} {
		t.Run(v.name, func(t *testing.T) {
			s := startServer(t, "alice", "bob")
			const uaID = "6f1c3a52-8d0e-4e8b-9a57-2c1d4b0e7f31"
			args := map[string]any{"ua_id": uaID}
			if v.service != "" {
				args["service"] = fmt.Sprintf(v.service, s.tls)
			}
			evs := start(t, "xmpp.js:sasl2", nil, "node", filepath.Join(clientsDir, "xmppjs_sasl2.mjs"), s.config(args)).finish(t)

			l := one(t, evs, "login")
			jid := fullJIDOf(t, "alice", l.str("jid"))
			if !l.boolean("sasl2") {
				t.Fatalf("xmpp.js did not authenticate with SASL2: %s", l.str("success"))
			}
			auth := l.str("authenticate")
			for _, want := range []string{"urn:xmpp:sasl:2", "<user-agent id=\"" + uaID + "\"", "<bind xmlns=\"urn:xmpp:bind:0\"><tag>xmppjs</tag>", "<enable xmlns=\"urn:xmpp:sm:3\""} {
				if !strings.Contains(auth, want) {
					t.Errorf("<authenticate/> lacks %s: %s", want, auth)
				}
			}
			succ := l.str("success")
			if !strings.Contains(succ, "<authorization-identifier>"+jid+"</authorization-identifier>") ||
				!strings.Contains(succ, "<bound xmlns=\"urn:xmpp:bind:0\"><enabled xmlns=\"urn:xmpp:sm:3\"") {
				t.Errorf("<success/> is not a Bind2 success with SM enabled for %s: %s", jid, succ)
			}
			if !strings.HasPrefix(jid, s.jid("alice")+"/xmppjs.") {
				t.Errorf("resource of %s is not the tag plus the server's suffix", jid)
			}
			if !l.boolean("sm") || l.str("sm_id") == "" {
				t.Errorf("stream management not enabled inline: %s", l)
			}
			if legacy := l.strs("legacy_after"); len(legacy) > 0 {
				t.Errorf("xmpp.js still bound or enabled SM the old way: %v", legacy)
			}
			if l.str("transport") != v.transport {
				t.Errorf("transport %q, want %q", l.str("transport"), v.transport)
			}

			x := one(t, evs, "exchanged")
			if x.str("bob_got_from") != jid || x.str("reply_body") != "echo: one" {
				t.Errorf("message exchange: %s", x)
			}

			r := one(t, evs, "resumed")
			if n, _ := r.num("resumed_events"); n != 1 {
				t.Errorf("xmpp.js resumed %v times, want once: %s", n, r)
			}
			a2 := r.str("authenticate")
			if !strings.Contains(a2, "<resume xmlns=\"urn:xmpp:sm:3\"") || !strings.Contains(a2, "previd=\""+r.str("sm_id_before")+"\"") {
				t.Errorf("the reconnection's <authenticate/> does not resume %s: %s", r.str("sm_id_before"), a2)
			}
			// SCRAM's challenge, then <success/> with <resumed/>, then the
			// message: no features, nothing else in between. With FAST,
			// xmpp.js kept a token from the first <success/> and comes
			// back with it instead of the password: no challenge, one
			// round trip after TLS.
			want := []string{"challenge", "success", "message"}
			if v.fast {
				want = want[1:]
				if !strings.Contains(auth, "<request-token xmlns=\"urn:xmpp:fast:0\" mechanism=\"HT-SHA-256-NONE\"") ||
					!strings.Contains(succ, "<token xmlns=\"urn:xmpp:fast:0\"") || l.str("token_mechanism") != "HT-SHA-256-NONE" {
					t.Errorf("no FAST token asked for, given and kept: token %q, %s / %s", l.str("token_mechanism"), auth, succ)
				}
				if !strings.Contains(a2, "mechanism=\"HT-SHA-256-NONE\"") || !strings.Contains(a2, "<fast xmlns=\"urn:xmpp:fast:0\"") {
					t.Errorf("the reconnection did not log in with the token: %s", a2)
				}
			}
			if got := r.strs("server_elements"); !slices.Equal(got, want) {
				t.Errorf("server's elements after the second <authenticate/>: %v, want %v", got, want)
			}
			if !strings.Contains(r.str("success"), "<resumed xmlns=\"urn:xmpp:sm:3\"") {
				t.Errorf("<success/> without <resumed/>: %s", r.str("success"))
			}
			m, _ := r["message"].(map[string]any)
			if m == nil || m["id"] != "away" || m["body"] != "while you were away" {
				t.Errorf("the message sent while alice was away: %v", r["message"])
			}
			if r.str("jid") != jid {
				t.Errorf("after resumption alice is %q, want %q", r.str("jid"), jid)
			}

			// The user agent is recorded on the account.
			out, err := exec.Command(binPath, "user", "info", "alice", "--data", s.dir, "--domain", domain).CombinedOutput()
			if err != nil {
				t.Fatalf("bluetick user info: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), uaID+"  \"xmpp.js interop on bluetick test runner\"  last ") {
				t.Errorf("bluetick user info does not list the user agent:\n%s", out)
			}
		})
	}
}
