package interop

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// Each subtest starts its own bluetick (a fresh data dir and free ports),
// runs one or more real clients and asserts on the facts they print.
func TestInterop(t *testing.T) {
	t.Run("01_slixmpp_login", testLogin)
	t.Run("02_xmppjs_websocket", testWebSocket)
	t.Run("03_receipts_and_markers", testReceipts)
	t.Run("04_offline_messages", testOffline)
	t.Run("05_stream_resumption", testResume)
	t.Run("06_roster_and_subscription", testRoster)
	t.Run("07_last_activity", testLastActivity)
	t.Run("08_malformed_xml", testMalformed)
	t.Run("09_spoofed_from", testSpoofedFrom)
	t.Run("10_oversize_stanza", testOversize)
	t.Run("11_go_sendxmpp", testSendxmpp)
	t.Run("12_ping_disco_version", testMisc)
	t.Run("13_carbons", testCarbons)
	t.Run("14_http_upload", testHTTPUpload)
	t.Run("15_groups", testGroups)
	t.Run("16_pep", testPEP)
	t.Run("17_mam_paging", testMAMPaging) // mam branch (mam_test.go)
	t.Run("18_blocking", testBlocking)    // mam branch (mam_test.go)
	t.Run("19_push", testPush)
	t.Run("20_turn_extdisco", testTURN)
	t.Run("21_host_meta", testHostMeta)
	t.Run("22_contact_addresses", testContact)
	t.Run("23_bosh_strophe", testBOSH)
	t.Run("24_omemo_e2e", testOMEMO)                               // omemo branch (omemo_test.go)
	t.Run("25_csi", testCSI)                                       // compliance branch (csi_test.go)
	t.Run("26_avatar_bookmarks_compat", testAvatarBookmarksCompat) // compliance branch (compliance_test.go)
	t.Run("27_component", testComponent)
	t.Run("28_channel_binding", testChannelBinding) // cb-plus branch (channelbinding_test.go)
	t.Run("29_xmppjs_sasl2", testSASL2)             // sasl2 branch (sasl2_test.go)
	t.Run("30_admin_xep0133", testAdmin)            // admin branch (admin_test.go)
}

// fullJIDOf asserts that j is a full JID of user and returns it.
func fullJIDOf(t *testing.T, user, j string) string {
	t.Helper()
	if !strings.HasPrefix(j, user+"@"+domain+"/") || len(j) <= len(user+"@"+domain+"/") {
		t.Errorf("bound JID %q is not a full JID of %s@%s", j, user, domain)
	}
	return j
}

func loginOf(t *testing.T, evs []event, user string) event {
	t.Helper()
	for _, e := range all(evs, "login") {
		if strings.HasPrefix(e.str("jid"), user+"@") {
			return e
		}
	}
	t.Fatalf("no login event for %s (events: %s)", user, summary(evs))
	return nil
}

// 1. slixmpp: SCRAM over STARTTLS and over direct TLS; PLAIN only inside
// TLS (checked on the wire by the raw client).
func testLogin(t *testing.T) {
	s := startServer(t, "alice")
	cases := []struct {
		name, mode, mech string
		wantMech         func(string) bool
		desc             string
	}{
		{"starttls_default", "starttls", "", func(m string) bool { return strings.HasPrefix(m, "SCRAM-SHA-") }, "SCRAM-SHA-*"},
		{"starttls_scram_sha_256", "starttls", "SCRAM-SHA-256", func(m string) bool { return m == "SCRAM-SHA-256" }, "SCRAM-SHA-256"},
		{"starttls_scram_sha_1", "starttls", "SCRAM-SHA-1", func(m string) bool { return m == "SCRAM-SHA-1" }, "SCRAM-SHA-1"},
		{"direct_tls", "direct", "", func(m string) bool { return strings.HasPrefix(m, "SCRAM-SHA-") }, "SCRAM-SHA-*"},
		{"starttls_plain", "starttls", "PLAIN", func(m string) bool { return m == "PLAIN" }, "PLAIN"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := map[string]any{"user": "alice", "mode": c.mode}
			if c.mech != "" {
				args["mech"] = c.mech
			}
			evs := slix(t, s, "login", args).finish(t)
			l := one(t, evs, "login")
			fullJIDOf(t, "alice", l.str("jid"))
			if !c.wantMech(l.str("mechanism")) {
				t.Errorf("SASL mechanism used = %q, want %s (offered: %v)", l.str("mechanism"), c.desc, l.strs("offered"))
			}
			if !l.boolean("tls") {
				t.Errorf("session is not over TLS: %s", l)
			}
			if c.mode == "starttls" && !l.boolean("starttls") {
				t.Errorf("STARTTLS was not negotiated: %s", l)
			}
			if c.mode == "direct" && !l.boolean("direct_tls") {
				t.Errorf("not a direct TLS connection: %s", l)
			}
			if p := one(t, evs, "ping"); !p.boolean("ok") {
				t.Errorf("XEP-0199 ping of the server failed: %s", p)
			}
		})
	}
	t.Run("wrong_password", func(t *testing.T) {
		evs := slix(t, s, "login", map[string]any{"user": "alice", "mode": "starttls", "mech": "SCRAM-SHA-256", "password": "not-the-password"}).finish(t)
		if len(all(evs, "login")) > 0 {
			t.Fatalf("logged in with a wrong password: %s", one(t, evs, "login"))
		}
		f := one(t, evs, "auth_failed")
		if f.str("condition") != "not-authorized" {
			t.Errorf("SASL failure condition %q, want not-authorized (RFC 6120 §6.5.10): %s", f.str("condition"), f.str("xml"))
		}
	})
	t.Run("slixmpp_stock_tls13", func(t *testing.T) {
		// Debian's slixmpp 1.8.3 unpatched (clients/slix.py,
		// withhold_tls13_binding): on TLS 1.3 it asks for -PLUS with
		// tls-unique, undefined there: refused at once with
		// malformed-request (no failed-login delay: no password was
		// checked). It then sends "y" on SCRAM-SHA-256: it did see the
		// -PLUS offer (it just tried it), so that is a fallback, not a
		// stripped offer, and it is let in with SCRAM rather than sent on
		// to PLAIN (auth.Config.TriedPlus).
		evs := slix(t, s, "login", map[string]any{"user": "alice", "mode": "starttls", "stock_cb": true}).finish(t)
		l := one(t, evs, "login")
		fullJIDOf(t, "alice", l.str("jid"))
		if l.str("tls_version") != "TLSv1.3" || l.str("mechanism") != "SCRAM-SHA-256" {
			t.Errorf("stock slixmpp: %s with %s, want SCRAM-SHA-256 after the refusals", l.str("tls_version"), l.str("mechanism"))
		}
		want := []struct{ mech, text string }{
			{"SCRAM-SHA-256-PLUS", "tls-unique is not supported"},
			{"SCRAM-SHA-1-PLUS", "tls-unique is not supported"},
		}
		fs, _ := l["failures"].([]any)
		if len(fs) != len(want) {
			t.Fatalf("refusals %v, want %d", fs, len(want))
		}
		for i, w := range want {
			f, _ := fs[i].(map[string]any)
			if f["mechanism"] != w.mech || f["condition"] != "malformed-request" || !strings.Contains(fmt.Sprint(f["text"]), w.text) {
				t.Errorf("refusal %d = %v, want %s: malformed-request %q", i, f, w.mech, w.text)
			}
		}
		if sec, _ := l.num("seconds"); sec > 3 {
			t.Errorf("login took %.1fs: the refusals were delayed", sec)
		}
	})
	t.Run("features_on_the_wire", func(t *testing.T) {
		need(t, "slixmpp") // same interpreter
		evs := raw(t, s, "features", nil).finish(t)
		for _, f := range all(evs, "features") {
			mechs := f.strs("mechanisms")
			switch f.str("stage") {
			case "plain":
				if !f.boolean("starttls") {
					t.Errorf("plain c2s stream does not offer STARTTLS: %s", f.str("xml"))
				}
				if slices.Contains(mechs, "PLAIN") {
					t.Errorf("PLAIN offered before TLS (RFC 6120 §13.9.4 / brief: PLAIN only over TLS): %s", f.str("xml"))
				}
			case "starttls", "direct_tls":
				if f.boolean("starttls") {
					t.Errorf("%s stream offers STARTTLS again: %s", f.str("stage"), f.str("xml"))
				}
				for _, m := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"} {
					if !slices.Contains(mechs, m) {
						t.Errorf("%s stream does not offer %s (offered %v): %s", f.str("stage"), m, mechs, f.str("xml"))
					}
				}
				if f.str("stage") == "direct_tls" && f.str("alpn") != "xmpp-client" {
					t.Errorf("direct TLS ALPN = %q, want xmpp-client (XEP-0368)", f.str("alpn"))
				}
			}
		}
		if n := len(all(evs, "features")); n != 3 {
			t.Errorf("got %d feature sets, want 3", n)
		}
	})
}

// 2. @xmpp/client (xmpp.js) over WebSocket with SCRAM, chatting with a
// slixmpp bot; then the same client over STARTTLS and direct TLS.
func testWebSocket(t *testing.T) {
	need(t, "xmppjs")
	s := startServer(t, "alice", "bob")
	variants := []struct{ name, service, transport string }{
		{"websocket", "", "ws"},
		{"starttls", fmt.Sprintf("xmpp://127.0.0.1:%d", s.c2s), "xmpp"},
		{"direct_tls", fmt.Sprintf("xmpps://127.0.0.1:%d", s.tls), "xmpps"},
	}
	bot := slix(t, s, "echo", map[string]any{"user": "bob", "count": len(variants)})
	ready := bot.waitEvent(t, "ready", 15*time.Second)
	bobJID := fullJIDOf(t, "bob", ready.str("jid"))
	for i, v := range variants {
		ok := t.Run(v.name, func(t *testing.T) {
			body := "hello over " + v.name
			args := map[string]any{"user": "alice", "to": s.jid("bob"), "body": body}
			if v.service != "" {
				args["service"] = v.service
			}
			jsEvs := xmppjs(t, s, args).finish(t)
			l := one(t, jsEvs, "login")
			aliceJID := fullJIDOf(t, "alice", l.str("jid"))
			if m := l.str("mechanism"); !strings.HasPrefix(m, "SCRAM-SHA-") {
				t.Errorf("xmpp.js authenticated with %q, want SCRAM-SHA-* (offered %v)", m, l.strs("offered"))
			}
			if l.str("transport") != v.transport {
				t.Errorf("transport %q, want %q", l.str("transport"), v.transport)
			}
			if v.service != "" && l.str("tls") == "" {
				t.Errorf("xmpp.js session over %s is not TLS: %s", v.name, l)
			}
			// The bot prints what it got before it replies, so its i-th
			// "received" is there once xmpp.js has the reply.
			rs := allOf(bot, "received")
			if len(rs) <= i {
				t.Fatalf("the slixmpp bot did not report message %d", i+1)
			}
			got := rs[i]
			if got.str("from") != aliceJID || got.str("body") != body {
				t.Errorf("bot got from=%q body=%q, want from=%q body=%q: %s", got.str("from"), got.str("body"), aliceJID, body, got.str("xml"))
			}
			if got.str("stanza_id") == "" || got.str("stanza_id_by") != s.jid("bob") {
				t.Errorf("routed message lacks <stanza-id by='%s'/> (XEP-0359): %s", s.jid("bob"), got.str("xml"))
			}
			reply := one(t, jsEvs, "received")
			if reply.str("from") != bobJID || reply.str("body") != "echo: "+body {
				t.Errorf("xmpp.js got reply from %q body %q, want from %q body %q: %s", reply.str("from"), reply.str("body"), bobJID, "echo: "+body, reply.str("xml"))
			}
			if reply.str("stanza_id_by") != s.jid("alice") {
				t.Errorf("reply lacks <stanza-id by='%s'/>: %s", s.jid("alice"), reply.str("xml"))
			}
		})
		if !ok {
			break // the bot waits for the missing message; stop here
		}
	}
	bot.finish(t)
}

// 3. XEP-0184 receipt and XEP-0333 displayed marker, end to end.
func testReceipts(t *testing.T) {
	s := startServer(t, "alice", "bob")
	evs := slix(t, s, "receipts", nil).finish(t)
	aliceJID := loginOf(t, evs, "alice").str("jid")
	bobJID := loginOf(t, evs, "bob").str("jid")
	for _, l := range all(evs, "login") {
		if !l.boolean("self_presence") {
			t.Errorf("%s's initial presence was not reflected back to it (RFC 6121 §4.2.2): %s", l.str("jid"), l)
		}
	}
	sent := one(t, evs, "sent")
	id := sent.str("id")

	got := one(t, evs, "bob_received")
	if got.str("from") != aliceJID || got.str("id") != id {
		t.Errorf("bob got from=%q id=%q, want from=%q id=%q: %s", got.str("from"), got.str("id"), aliceJID, id, got.str("xml"))
	}
	if !got.boolean("receipt_requested") || !got.boolean("markable") {
		t.Errorf("the <request xmlns='urn:xmpp:receipts'/> or <markable/> child was lost in routing: %s", got.str("xml"))
	}
	if got.str("stanza_id") == "" || got.str("stanza_id_by") != s.jid("bob") {
		t.Errorf("no <stanza-id by='%s'/>: %s", s.jid("bob"), got.str("xml"))
	}
	r := one(t, evs, "receipt")
	if r.str("receipt_id") != id {
		t.Errorf("alice's <received/> has id %q, want %q: %s", r.str("receipt_id"), id, r.str("xml"))
	}
	if r.str("from") != bobJID {
		t.Errorf("receipt from %q, want bob's full JID %q: %s", r.str("from"), bobJID, r.str("xml"))
	}
	d := one(t, evs, "displayed")
	if d.str("marker_id") != id {
		t.Errorf("alice's <displayed/> has id %q, want %q: %s", d.str("marker_id"), id, d.str("xml"))
	}
	if d.str("from") != bobJID {
		t.Errorf("marker from %q, want %q: %s", d.str("from"), bobJID, d.str("xml"))
	}
}

// 4. Five messages to an offline user arrive in order at login, each with
// a XEP-0203 delay and a XEP-0359 stanza-id.
func testOffline(t *testing.T) {
	s := startServer(t, "alice", "bob")
	evs := slix(t, s, "offline", map[string]any{"count": 5}).finish(t)
	aliceJID := loginOf(t, evs, "alice").str("jid")
	if len(all(evs, "acked")) == 0 {
		t.Errorf("the server did not XEP-0198-ack the 5 messages sent to an offline user: %v", all(evs, "not_acked"))
	}
	got := all(evs, "received")
	var bodies []string
	ids := map[string]int{}
	for _, m := range got {
		bodies = append(bodies, m.str("body"))
		if m.str("delay") == "" {
			t.Errorf("offline message %q has no <delay xmlns='urn:xmpp:delay'/> (XEP-0203): %s", m.str("body"), m.str("xml"))
		}
		if m.str("stanza_id") == "" || m.str("stanza_id_by") != s.jid("bob") {
			t.Errorf("offline message %q has no <stanza-id by='%s'/>: %s", m.str("body"), s.jid("bob"), m.str("xml"))
		}
		if m.str("from") != aliceJID {
			t.Errorf("offline message from %q, want %q", m.str("from"), aliceJID)
		}
		ids[m.str("stanza_id")]++
	}
	want := []string{"offline 1", "offline 2", "offline 3", "offline 4", "offline 5"}
	if !slices.Equal(bodies, want) {
		t.Errorf("bob got %q, want %q in that order, once each", bodies, want)
	}
	for id, n := range ids {
		if n > 1 && id != "" {
			t.Errorf("stanza-id %q delivered %d times", id, n)
		}
	}
}

// 5. XEP-0198 resumption after an abrupt TCP reset: each message once.
func testResume(t *testing.T) {
	t.Run("slixmpp", func(t *testing.T) {
		s := startServer(t, "alice", "bob")
		evs := slix(t, s, "resume", nil).finish(t)
		if e := one(t, evs, "sm_enabled"); e.str("sm_id") == "" {
			t.Errorf("<enabled/> carried no id: resumption not offered: %s", e)
		}
		rc := one(t, evs, "reconnected")
		if !rc.boolean("resumed") {
			t.Errorf("the new connection did not resume the session: %s", rc)
		}
		for _, f := range all(evs, "resume_failed") {
			t.Errorf("resumption failed: %s", f)
		}
		checkOnce(t, all(evs, "received"), []string{"resume 1", "resume 2", "resume 3"})
	})
	t.Run("raw_counters", func(t *testing.T) {
		need(t, "slixmpp") // same interpreter
		s := startServer(t, "alice", "bob")
		evs := raw(t, s, "resume", nil).finish(t)
		en := one(t, evs, "enabled")
		if r := en.str("resume"); r != "true" && r != "1" {
			t.Errorf("<enabled/> without resume='true': %s", en.str("xml"))
		}
		ans := one(t, evs, "resume_answer")
		if ans.str("name") != "resumed" {
			t.Fatalf("answer to <resume/> is not <resumed/>: %s", ans.str("xml"))
		}
		if ans.str("previd") != en.str("id") {
			t.Errorf("<resumed previd=%q/>, want %q", ans.str("previd"), en.str("id"))
		}
		if ans.str("h") != "1" {
			t.Errorf("<resumed h=%q/>, want h='1' (the server handled exactly one stanza from bob: his presence): %s", ans.str("h"), ans.str("xml"))
		}
		got := all(evs, "received")
		checkOnce(t, got, []string{"m1", "m2", "m3"})
		for _, m := range got {
			wantConn := 1.0
			if m.str("body") == "m3" {
				wantConn = 2
			}
			if c, _ := m.num("connection"); c != wantConn {
				t.Errorf("%s arrived on connection %v, want %v (h on <resume/> covered m1 and m2): %s", m.str("body"), c, wantConn, m.str("xml"))
			}
		}
	})
}

// checkOnce asserts that the received messages are exactly want, each once
// (by body and by stanza-id).
func checkOnce(t *testing.T, got []event, want []string) {
	t.Helper()
	bodies := map[string]int{}
	sids := map[string]int{}
	for _, m := range got {
		bodies[m.str("body")]++
		if m.str("stanza_id") == "" {
			t.Errorf("%q has no stanza-id: %s", m.str("body"), m.str("xml"))
		} else {
			sids[m.str("stanza_id")]++
		}
	}
	for _, w := range want {
		if bodies[w] != 1 {
			t.Errorf("%q received %d times, want exactly once (received: %v)", w, bodies[w], sortedKeys(bodies))
		}
	}
	for id, n := range sids {
		if n != 1 {
			t.Errorf("stanza-id %q received %d times", id, n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("received %d messages, want %d", len(got), len(want))
	}
}

// 6. Roster and presence subscription, both ways.
func testRoster(t *testing.T) {
	s := startServer(t, "alice", "bob")
	evs := slix(t, s, "roster", nil).finish(t)
	pushBoth := func(client, contact string) {
		for _, p := range where(evs, "push", "client", client) {
			if p.str("jid") == s.jid(contact) && p.str("subscription") == "both" {
				return
			}
		}
		var seen []string
		for _, p := range where(evs, "push", "client", client) {
			seen = append(seen, fmt.Sprintf("%s:%s(ask=%v)", p.str("jid"), p.str("subscription"), p["ask"]))
		}
		t.Errorf("%s got no roster push with %s subscription='both' (pushes: %v)", client, s.jid(contact), seen)
	}
	pushBoth("alice", "bob")
	pushBoth("bob", "alice")
	rosterBoth := func(client, contact string) {
		for _, r := range where(evs, "roster", "client", client) {
			if r.str("jid") == s.jid(contact) {
				if r.str("subscription") != "both" {
					t.Errorf("%s's roster has %s with subscription=%q, want both", client, contact, r.str("subscription"))
				}
				return
			}
		}
		t.Errorf("%s's roster lacks %s", client, s.jid(contact))
	}
	rosterBoth("alice", "bob")
	rosterBoth("bob", "alice")
	var bob2 string
	for _, l := range all(evs, "login") {
		if l.str("client") == "bob2" {
			bob2 = l.str("jid")
		}
	}
	found := false
	for _, p := range where(evs, "presence", "client", "alice") {
		if p.str("from") == bob2 && (p.str("type") == "available" || p.str("type") == "") {
			found = true
		}
	}
	if !found {
		t.Errorf("alice did not see bob's available presence from %q when he came online", bob2)
	}
}

// 7. XEP-0012: allowed to a subscriber, forbidden to a stranger.
func testLastActivity(t *testing.T) {
	s := startServer(t, "alice", "bob", "carol")
	evs := slix(t, s, "last", nil).finish(t)
	for _, l := range all(evs, "last") {
		switch l.str("asker") {
		case "alice":
			sec, ok := l.num("seconds")
			if l.str("type") != "result" || !ok || sec < 0 {
				t.Errorf("alice (subscribed to bob) asked jabber:iq:last of %s: want a result with seconds >= 0, got %s", s.jid("bob"), l.str("xml"))
			}
		case "carol":
			if l.str("type") != "error" || l.str("condition") != "forbidden" {
				t.Errorf("carol (no subscription) asked jabber:iq:last of %s: want <forbidden/>, got type=%s condition=%s: %s", s.jid("bob"), l.str("type"), l.str("condition"), l.str("xml"))
			}
		}
	}
	if n := len(all(evs, "last")); n != 2 {
		t.Errorf("got %d last-activity answers, want 2", n)
	}
}

// 8. Malformed XML kills only the offending stream.
func testMalformed(t *testing.T) {
	s := startServer(t, "alice", "bob", "carol")
	evs := slix(t, s, "malformed", nil).finish(t)
	g := all(evs, "garbage")
	if len(g) != 2 {
		t.Fatalf("want 2 garbage runs, got %d", len(g))
	}
	for _, e := range g {
		when := "before authentication"
		if e.boolean("after_auth") {
			when = "after authentication (over TLS)"
		}
		if e.str("stream_error") != "not-well-formed" {
			t.Errorf("malformed XML %s: want <stream:error><not-well-formed/>, got %q: %s", when, e.str("stream_error"), e.str("xml"))
		}
		if !e.boolean("stream_closed") && !e.boolean("tcp_closed") {
			t.Errorf("malformed XML %s: the connection was not closed: %s", when, e)
		}
	}
	aliceJID := loginOf(t, evs, "alice").str("jid")
	ok := false
	for _, r := range all(evs, "received") {
		if r.str("client") == "bob" && r.str("body") == "still alive?" && r.str("from") == aliceJID {
			ok = true
		}
	}
	if !ok || len(where(evs, "received", "client", "alice")) == 0 {
		t.Errorf("the other sessions did not keep exchanging messages")
	}
	s.alive(t)
}

// 9. The server stamps 'from'.
func testSpoofedFrom(t *testing.T) {
	s := startServer(t, "alice", "bob")
	evs := slix(t, s, "spoof", nil).finish(t)
	aliceJID := loginOf(t, evs, "alice").str("jid")
	got := all(evs, "received")
	if len(got) != 2 {
		t.Errorf("bob got %d messages, want 2", len(got))
	}
	for _, m := range got {
		if m.str("from") != aliceJID {
			t.Errorf("message %q reached bob with from=%q, want alice's real full JID %q (RFC 6120 §8.1.2.1): %s", m.str("body"), m.str("from"), aliceJID, m.str("xml"))
		}
	}
}

// 10. A 300 KiB stanza ends the stream with <policy-violation/>.
func testOversize(t *testing.T) {
	need(t, "slixmpp")
	s := startServer(t, "alice", "bob")
	evs := raw(t, s, "oversize", map[string]any{"kib": 300}).finish(t)
	r := one(t, evs, "result")
	if r.str("stream_error") != "policy-violation" {
		t.Errorf("300 KiB stanza: want <stream:error><policy-violation/>, got %q: %s", r.str("stream_error"), r.str("xml"))
	}
	if !r.boolean("stream_closed") && !r.boolean("tcp_closed") {
		t.Errorf("the connection was not closed after the oversize stanza: %s", r)
	}
	s.alive(t)
	// The server still serves others.
	after := slix(t, s, "login", map[string]any{"user": "bob", "mode": "starttls"}).finish(t)
	fullJIDOf(t, "bob", one(t, after, "login").str("jid"))
}

// 11. go-sendxmpp (STARTTLS, then direct TLS) to a slixmpp recipient.
func testSendxmpp(t *testing.T) {
	need(t, "sendxmpp")
	s := startServer(t, "alice", "bob")
	rcv := slix(t, s, "receive", map[string]any{"user": "bob", "count": 2})
	rcv.waitEvent(t, "ready", 15*time.Second)
	home := t.TempDir()
	send := func(body string, directTLS bool) {
		port := s.c2s
		argv := []string{"-u", s.jid("alice"), "-p", s.users["alice"], "-n", "--timeout", "10", "-d"}
		if directTLS {
			port = s.tls
			argv = append(argv, "--tls")
		}
		argv = append(argv, "-j", fmt.Sprintf("127.0.0.1:%d", port), s.jid("bob"))
		cmd := exec.Command("go-sendxmpp", argv...)
		cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home)
		cmd.Stdin = strings.NewReader(body + "\n")
		done := make(chan struct{})
		var out []byte
		var err error
		go func() { out, err = cmd.CombinedOutput(); close(done) }()
		select {
		case <-done:
		case <-time.After(killAfter):
			cmd.Process.Kill()
			<-done
			err = fmt.Errorf("killed after %v", killAfter)
		}
		if err != nil {
			t.Errorf("go-sendxmpp %s: %v\n%s", strings.Join(argv, " "), err, out)
		} else if t.Failed() {
			t.Logf("go-sendxmpp output:\n%s", out)
		}
	}
	send("hello from go-sendxmpp over starttls", false)
	send("hello from go-sendxmpp over direct tls", true)
	evs := rcv.finish(t)
	var bodies []string
	for _, m := range all(evs, "received") {
		bodies = append(bodies, strings.TrimSpace(m.str("body")))
		fullJIDOf(t, "alice", m.str("from"))
		if m.str("stanza_id_by") != s.jid("bob") {
			t.Errorf("no <stanza-id by='%s'/>: %s", s.jid("bob"), m.str("xml"))
		}
	}
	want := []string{"hello from go-sendxmpp over starttls", "hello from go-sendxmpp over direct tls"}
	if !slices.Equal(bodies, want) {
		t.Errorf("bob got %q, want %q", bodies, want)
	}
}

// 12. Ping, disco#info, software version; and `bluetick user list`.
func testMisc(t *testing.T) {
	s := startServer(t, "alice", "bob")
	out, err := exec.Command(binPath, "user", "list", "--data", s.dir, "--domain", domain).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "alice") || !strings.Contains(string(out), "bob") {
		t.Errorf("bluetick user list: %v\n%s", err, out)
	}
	evs := slix(t, s, "misc", nil).finish(t)
	if p := one(t, evs, "ping"); !p.boolean("ok") {
		t.Errorf("ping failed: %s", p)
	}
	d := one(t, evs, "disco")
	feats := d.strs("features")
	for _, f := range []string{"http://jabber.org/protocol/disco#info", "urn:xmpp:ping", "jabber:iq:version", "jabber:iq:last"} {
		if !slices.Contains(feats, f) {
			t.Errorf("server disco#info lacks %s: %s", f, d.str("xml"))
		}
	}
	if v := one(t, evs, "version"); v.str("name") == "" || v.str("version") == "" {
		t.Errorf("XEP-0092 answer lacks name or version: %s", v)
	}
}

// 13. XEP-0280 Message Carbons: alice/phone enables carbons and sees what
// alice/pc receives and sends, but not a <private/> message.
func testCarbons(t *testing.T) {
	s := startServer(t, "alice", "bob")
	evs := slix(t, s, "carbons", nil).finish(t)
	var pcJID, phoneJID string
	for _, l := range all(evs, "login") {
		switch l.str("client") {
		case "alice-pc":
			pcJID = l.str("jid")
		case "alice-phone":
			phoneJID = l.str("jid")
		}
	}
	if pcJID != s.jid("alice")+"/pc" || phoneJID != s.jid("alice")+"/phone" {
		t.Fatalf("alice bound %q and %q, want the requested resources pc and phone", pcJID, phoneJID)
	}
	bobJID := fullJIDOf(t, "bob", loginOf(t, evs, "bob").str("jid"))
	for _, m := range all(evs, "missing") {
		t.Errorf("%s", m.str("what"))
	}
	if e := one(t, evs, "carbons_enable"); e.str("type") != "result" {
		t.Fatalf("<enable xmlns='%s'/> was answered with type=%q condition=%q, want a result (XEP-0280 §4): %s", "urn:xmpp:carbons:2", e.str("type"), e.str("condition"), e.str("xml"))
	}
	if d := one(t, evs, "disco"); !slices.Contains(d.strs("features"), "urn:xmpp:carbons:2") {
		t.Errorf("server disco#info lacks urn:xmpp:carbons:2 (XEP-0280 §3): %s %s", d.str("error"), d.str("xml"))
	}
	sent := map[string]event{} // by id
	var inID, outID, privID, barrierID string
	for _, e := range all(evs, "sent") {
		sent[e.str("id")] = e
		switch {
		case e.str("client") == "bob":
			inID = e.str("id")
		case e.boolean("private"):
			privID = e.str("id")
		case outID == "":
			outID = e.str("id")
		default:
			barrierID = e.str("id")
		}
	}
	if inID == "" || outID == "" || privID == "" || barrierID == "" {
		t.Fatalf("the script did not send all four messages: %s", summary(evs))
	}

	// The pc itself gets bob's message.
	if r := where(evs, "received", "client", "alice-pc"); len(r) == 0 || r[0].str("id") != inID || r[0].str("from") != bobJID {
		t.Errorf("alice/pc did not get bob's message %q from %s: %v", inID, bobJID, r)
	}
	checkCarbon := func(kind, id, fwdFrom, fwdTo string) {
		t.Helper()
		var got []event
		for _, c := range where(evs, "carbon", "kind", kind) {
			if c.str("id") == id {
				got = append(got, c)
			}
		}
		if len(got) != 1 {
			t.Errorf("alice/phone got %d %s copies of message %q, want exactly 1", len(got), kind, id)
			return
		}
		c := got[0]
		if c.str("wrapper_from") != s.jid("alice") || c.str("wrapper_to") != phoneJID {
			t.Errorf("%s wrapper from=%q to=%q, want from=%q (the bare JID) to=%q (XEP-0280 §7/§8): %s", kind, c.str("wrapper_from"), c.str("wrapper_to"), s.jid("alice"), phoneJID, c.str("wrapper_xml"))
		}
		if c.str("from") != fwdFrom || c.str("to") != fwdTo {
			t.Errorf("forwarded message in the %s has from=%q to=%q, want from=%q to=%q: %s", kind, c.str("from"), c.str("to"), fwdFrom, fwdTo, c.str("wrapper_xml"))
		}
		if want := sent[id].str("body"); c.str("body") != want || c.str("type") != "chat" {
			t.Errorf("forwarded message in the %s has body=%q type=%q, want body=%q type=chat: %s", kind, c.str("body"), c.str("type"), want, c.str("wrapper_xml"))
		}
	}
	// bob -> alice/pc: a received carbon whose forwarded 'from' is bob's full JID.
	checkCarbon("carbon_received", inID, bobJID, pcJID)
	// alice/pc -> bob: a sent carbon; bob gets the message itself.
	checkCarbon("carbon_sent", outID, pcJID, s.jid("bob"))
	checkCarbon("carbon_sent", barrierID, pcJID, s.jid("bob"))
	if n := len(all(evs, "carbon")); n != 3 {
		t.Errorf("alice/phone got %d carbons, want 3 (one received, two sent)", n)
	}
	bobGot := map[string]int{}
	for _, r := range where(evs, "received", "client", "bob") {
		bobGot[r.str("id")]++
		if r.str("from") != pcJID {
			t.Errorf("bob got %q from %q, want %q: %s", r.str("id"), r.str("from"), pcJID, r.str("xml"))
		}
	}
	for _, id := range []string{outID, privID, barrierID} {
		if bobGot[id] != 1 {
			t.Errorf("bob got message %q %d times, want once (received: %v)", id, bobGot[id], sortedKeys(bobGot))
		}
	}
	// Neither resource saw any copy of the <private/> message, and the pc
	// (carbons not enabled) got no carbons at all.
	for _, r := range all(evs, "raw_message") {
		x := r.str("xml")
		if strings.Contains(x, privID) {
			t.Errorf("%s got a copy of the <private/><no-copy/> message (XEP-0280 §9): %s", r.str("client"), x)
		}
		if r.str("client") == "alice-pc" && strings.Contains(x, "urn:xmpp:carbons:2") {
			t.Errorf("alice/pc did not enable carbons but got one: %s", x)
		}
	}
}

// 14. XEP-0363 HTTP File Upload with slixmpp's xep_0363 plugin: it finds
// the service in the domain's disco#info (store/file identity, feature,
// max-file-size form), gets a slot, PUTs the file with the slot's
// Authorization header; the GET URL returns the same bytes. A slot for a
// file over the limit is refused with <file-too-large><max-file-size>.
func testHTTPUpload(t *testing.T) {
	need(t, "slixmpp")
	if out, err := exec.Command(pythonPath, "-c", "import aiohttp").CombinedOutput(); err != nil {
		t.Fatalf("aiohttp is not importable by %s (%v: %s); install it with: apt-get install -y python3-aiohttp", pythonPath, err, bytes.TrimSpace(out))
	}
	s := startServer(t, "alice")
	evs := slix(t, s, "upload", map[string]any{"size": 300000, "huge": 200 << 20}).finish(t)
	const limit = "104857600" // upload.max_file_size default
	d := one(t, evs, "disco")
	if !slices.Contains(d.strs("features"), "urn:xmpp:http:upload:0") {
		t.Errorf("server disco#info lacks urn:xmpp:http:upload:0: %s", d.str("xml"))
	}
	if !strings.Contains(d.str("xml"), "<value>"+limit+"</value>") {
		t.Errorf("disco#info lacks the max-file-size form (XEP-0363 §2): %s", d.str("xml"))
	}
	up := one(t, evs, "uploaded")
	if up.str("service") != domain || !strings.HasPrefix(up.str("url"), fmt.Sprintf("http://%s:%d/upload/", domain, s.http)) {
		t.Errorf("upload: service %q, url %q", up.str("service"), up.str("url"))
	}
	if m, _ := up.num("max_file_size"); fmt.Sprint(int64(m)) != limit {
		t.Errorf("slixmpp read max-file-size %v from disco, want %s", m, limit)
	}
	dl := one(t, evs, "downloaded")
	if st, _ := dl.num("status"); st != 200 || dl.str("sha256") != dl.str("want_sha256") {
		t.Errorf("GET of the uploaded file: %s", dl)
	}
	if dl.str("etag") != `"`+dl.str("want_sha256")+`"` || dl.str("content_type") != "image/png" {
		t.Errorf("GET headers: ETag %q, Content-Type %q", dl.str("etag"), dl.str("content_type"))
	}
	if r := one(t, evs, "client_refused"); !r.boolean("refused") {
		t.Errorf("slixmpp did not refuse a file over the advertised max-file-size: %s", r)
	}
	o := one(t, evs, "oversize")
	if !o.boolean("refused") || o.str("condition") != "not-acceptable" || o.str("max_file_size") != limit {
		t.Errorf("oversize slot request: want not-acceptable with <max-file-size>%s</max-file-size>, got %s", limit, o)
	}
	s.alive(t)
}

// 16. PEP (XEP-0163) with slixmpp: notifications filtered by verified caps,
// access models, publish-options, OMEMO nodes, avatars, nick, bookmarks,
// private XML and vcard-temp.
func testPEP(t *testing.T) {
	s := startServer(t, "alice", "bob", "carol")
	evs := slix(t, s, "pep", nil).finish(t)
	for _, m := range all(evs, "missing") {
		t.Errorf("%s", m.str("what"))
	}
	result := func(name string) event {
		t.Helper()
		for _, r := range all(evs, "result") {
			if r.str("name") == name {
				return r
			}
		}
		t.Fatalf("no result %q (events: %s)", name, summary(evs))
		return nil
	}
	ok := func(name string) event {
		t.Helper()
		r := result(name)
		if !r.boolean("ok") {
			t.Errorf("%s failed: %s %s: %s", name, r.str("condition"), r.str("app"), r.str("xml"))
		}
		return r
	}
	refused := func(name, cond, app string) {
		t.Helper()
		r := result(name)
		if r.boolean("ok") {
			t.Errorf("%s succeeded, want %s/%s: %s", name, cond, app, r.str("xml"))
		} else if r.str("condition") != cond || r.str("app") != app {
			t.Errorf("%s refused with %s/%s, want %s/%s: %s", name, r.str("condition"), r.str("app"), cond, app, r.str("xml"))
		}
	}

	d := one(t, evs, "disco")
	if !slices.Contains(d.strs("features"), "http://jabber.org/protocol/pubsub#publish-options") {
		t.Errorf("account disco#info lacks publish-options: %v", d.strs("features"))
	}
	if !strings.Contains(fmt.Sprint(d["identities"]), "pubsub pep") {
		t.Errorf("account disco#info lacks the pubsub/pep identity: %v", d["identities"])
	}

	for _, n := range []string{"publish_avatar_data", "publish_avatar_metadata", "publish_nick", "publish_devicelist", "publish_bundle", "publish_bookmark", "store_private_pep", "private_set", "vcard_set"} {
		ok(n)
	}
	refused("publish_devicelist_conflict", "conflict", "precondition-not-met")

	got := map[string]bool{}
	for _, n := range all(evs, "notification") {
		if n.str("from") != s.jid("alice") || n.str("type") != "headline" {
			t.Errorf("notification envelope: from %q type %q, want alice's bare JID and headline: %s", n.str("from"), n.str("type"), n.str("xml"))
		}
		got[n.str("node")] = true
	}
	for _, node := range []string{"eu.siacs.conversations.axolotl.devicelist", "urn:xmpp:avatar:metadata", "http://jabber.org/protocol/nick"} {
		if !got[node] {
			t.Errorf("bob got no notification for %s (got %v)", node, got)
		}
	}
	if got["urn:xmpp:avatar:data"] || got["urn:xmpp:bookmarks:1"] {
		t.Errorf("bob notified of nodes he has no +notify for or may not see: %v", got)
	}

	if r := ok("bob_devicelist"); !strings.Contains(r.str("xml"), "device id=\"1234\"") && !strings.Contains(r.str("xml"), "device id='1234'") {
		t.Errorf("device list retrieved: %s", r.str("xml"))
	}
	if r := ok("bob_bundle"); !strings.Contains(r.str("xml"), "BASE64IDENTITY") {
		t.Errorf("bundle retrieved: %s", r.str("xml"))
	}
	ok("bob_avatar")
	if a := one(t, evs, "avatar"); !a.boolean("ok") {
		t.Error("avatar data retrieved by bob differs from what alice published")
	}
	ok("carol_devicelist")
	refused("carol_nick", "not-authorized", "presence-subscription-required")

	if r := ok("alice_bookmarks"); !strings.Contains(r.str("xml"), "room@conference.localhost") {
		t.Errorf("alice's bookmarks: %s", r.str("xml"))
	}
	refused("bob_bookmarks", "not-allowed", "closed-node")
	refused("bob_private_pep", "not-allowed", "closed-node")
	if r := ok("private_get"); !strings.Contains(r.str("xml"), "room@conference.localhost") {
		t.Errorf("private XML: %s", r.str("xml"))
	}
	ok("vcard_get")
	if v := one(t, evs, "vcard"); v.str("fn") != "Alice Liddell" {
		t.Errorf("bob reads alice's vCard FN %q, want Alice Liddell", v.str("fn"))
	}

	// bob's new resource got the last items at login ("missing" above
	// reports any that did not come), never the private bookmarks.
	for _, l := range all(evs, "last_item") {
		if l.str("node") == "urn:xmpp:bookmarks:1" || l.str("from") != s.jid("alice") {
			t.Errorf("last item %s", l)
		}
	}
}

// 15. Groups (XEP-0045 members-only rooms, docs/groups.md) with slixmpp's
// xep_0045 and xep_0313: creation, members, fan-out order, an offline
// member's catch-up from the room archive, an invite link, kick and ban,
// and the errors non-members and plain members get.
func testGroups(t *testing.T) {
	s := startServer(t, "alice", "bob", "carol", "dave", "eve", "mallory")
	evs := slix(t, s, "groups", nil).finish(t)
	room := "team@groups." + domain
	obj := func(e event, k string) map[string]any {
		m, _ := e[k].(map[string]any)
		return m
	}
	if c := one(t, evs, "create"); !c.boolean("ok") || !slices.Contains(c.strs("codes"), "201") || !slices.Contains(c.strs("codes"), "110") || obj(c, "item")["affiliation"] != "owner" {
		t.Fatalf("creating the group: want self-presence with 110 and 201 as owner (XEP-0045 §10.1.1), got %v", c)
	}
	if m := one(t, evs, "members"); strings.Join(m.strs("jids"), " ") != "bob@localhost carol@localhost dave@localhost" {
		t.Errorf("member list %v, want bob, carol, dave", m.strs("jids"))
	}
	sent := one(t, evs, "sent_order").strs("bodies")
	var bobIDs []string
	for _, who := range []string{"bob", "carol"} {
		f := where(evs, "fanout", "client", who)
		if len(f) != 1 {
			t.Fatalf("no fan-out report for %s", who)
		}
		if got := f[0].strs("bodies"); strings.Join(got, ",") != strings.Join(sent, ",") {
			t.Errorf("%s got %v, want every message in the order sent %v", who, got, sent)
		}
		for i, by := range f[0].strs("by") {
			if by != room || f[0].strs("stanza_ids")[i] == "" {
				t.Errorf("%s: message %d has stanza-id by %q, want one by the room (XEP-0359 on MUC)", who, i, by)
			}
		}
		if who == "bob" {
			bobIDs = f[0].strs("stanza_ids")
		} else if strings.Join(f[0].strs("stanza_ids"), ",") != strings.Join(bobIDs, ",") {
			t.Errorf("bob and carol saw different stanza-ids for the same messages")
		}
	}
	arch, _ := one(t, evs, "archive")["messages"].([]any)
	var archBodies, archIDs []string
	for _, a := range arch {
		m, _ := a.(map[string]any)
		b, _ := m["body"].(string)
		id, _ := m["id"].(string)
		archBodies, archIDs = append(archBodies, b), append(archIDs, id)
	}
	if strings.Join(archBodies, ",") != strings.Join(sent, ",") {
		t.Errorf("dave (offline during the chat) caught up %v from the room archive, want %v", archBodies, sent)
	}
	if strings.Join(archIDs, ",") != strings.Join(bobIDs, ",") {
		t.Errorf("archive result ids %v differ from the live stanza-ids %v", archIDs, bobIDs)
	}
	cond := func(name, want string) {
		t.Helper()
		e := one(t, evs, name)
		if e.boolean("ok") || e.str("condition") != want {
			t.Errorf("%s: want error %s, got %v", name, want, e)
		}
	}
	cond("eve_without_link", "registration-required")
	link := one(t, evs, "invite_link")
	if tok := link.str("token"); tok == "" || link.str("uri") != "xmpp:"+room+"?join;password="+tok {
		t.Errorf("invite link %v", link)
	}
	if e := one(t, evs, "eve_with_link"); !e.boolean("ok") || obj(e, "item")["affiliation"] != "member" {
		t.Errorf("joining with the invite link: want membership, got %v", e)
	}
	if k := one(t, evs, "kicked"); !slices.Contains(k.strs("codes"), "307") {
		t.Errorf("kick presence lacks status 307: %v", k)
	}
	if e := one(t, evs, "carol_rejoin_after_kick"); !e.boolean("ok") {
		t.Errorf("a kicked member may rejoin: %v", e)
	}
	if b := one(t, evs, "banned"); !slices.Contains(b.strs("codes"), "301") || obj(b, "item")["affiliation"] != "outcast" {
		t.Errorf("ban presence lacks status 301 / outcast: %v", b)
	}
	cond("carol_rejoin_after_ban", "forbidden")
	cond("mallory_join", "registration-required")
	cond("mallory_archive", "forbidden")
	cond("mallory_members", "forbidden")
	cond("member_adds", "forbidden")
	cond("admin_removes_owner", "not-allowed")
	if e := one(t, evs, "mallory_post"); e.str("condition") != "not-acceptable" {
		t.Errorf("a non-occupant posting: want not-acceptable, got %v", e)
	}
}
