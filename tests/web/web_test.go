package web

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestWeb runs the browser scenarios side by side, each with its own
// server and browser.
func TestWeb(t *testing.T) {
	t.Run("ticks", func(t *testing.T) { t.Parallel(); ticks(t) })
	t.Run("offline", func(t *testing.T) { t.Parallel(); offline(t) })
	t.Run("presence", func(t *testing.T) { t.Parallel(); presence(t) })
}

// ticks: every tick state in order, as alice's page shows it; HTML in a
// body stays text; the phone layout.
func ticks(t *testing.T) {
	fs := run(t, "ticks", nil, "alice", "bob", "carol")
	if e := fs.get(t, "signup-closed").str("error"); !strings.Contains(e, "registration is closed") {
		t.Errorf("signing up with registration closed shows %q", e)
	}
	if f := fs.get(t, "signed-in"); !f.boolean("alice_sw") || !f.boolean("bob_sw") {
		t.Errorf("the service worker does not control the pages: %s", f)
	}
	f := fs.get(t, "ticks")
	if f.str("while_stopped") != "pending" {
		t.Errorf("with the server frozen the message shows %q, want pending (🕐)", f.str("while_stopped"))
	}
	if f.str("bob_away") != "sent" {
		t.Errorf("acked by the server, bob away: %q, want sent (✓)", f.str("bob_away"))
	}
	if f.str("before_open") != "delivered" {
		t.Errorf("received by bob, chat not open: %q, want delivered (✓✓)", f.str("before_open"))
	}
	if seq := f.strs("sequence"); !slices.Equal(seq, []string{"pending", "sent", "delivered", "read"}) {
		t.Errorf("tick sequence in alice's page: %q, want pending, sent, delivered, read", seq)
	}
	if st := fs.get(t, "all-states").strs("states"); len(st) < 4 || !slices.Equal(st[len(st)-4:], []string{"read", "delivered", "sent", "pending"}) {
		t.Errorf("the last four messages show %q, want read, delivered, sent, pending", st)
	}
	h := fs.get(t, "html-body")
	if !slices.Contains(h.strs("texts"), "<img src=x onerror=alert(1)>") || h.num("imgs") != 0 || h.num("dialogs") != 0 {
		t.Errorf("a body with HTML was not shown as text: %s", h)
	}
	p := fs.get(t, "phone")
	if c, _ := p["chat_open"].(map[string]any); c["list"] != "none" || c["chat"] == "none" || p.str("list_after_back") == "none" {
		t.Errorf("phone layout: %s, want the chat alone, then the list alone", p)
	}
}

// offline: history with no network, the outgoing queue across a reload,
// exactly once after a resend.
func offline(t *testing.T) {
	fs := run(t, "offline", nil, "alice", "bob")
	if n := fs.get(t, "reconnected").num("bob_got"); n != 1 {
		t.Errorf("after a server restart without reload bob shows the new message %v times, want 1", n)
	}
	// Every XEP-0198 ack the pages sent counted every stanza they had
	// received: a short count leaves the server's drain to a new session
	// waiting for an ack that never comes, and every later message to
	// that user waiting behind it.
	sm := fs.get(t, "sm")
	if a, b := sm.strs("alice"), sm.strs("bob"); len(a)+len(b) > 0 {
		t.Errorf("XEP-0198 acks that miscount the stanzas received: alice %q, bob %q", a, b)
	}
	r := fs.get(t, "offline-reload")
	if !slices.Contains(r.strs("history"), "before the outage") {
		t.Errorf("reload with the server stopped: history %q lacks the message", r.strs("history"))
	}
	if !strings.Contains(r.str("banner"), "Offline") && !strings.Contains(r.str("banner"), "Connecting") {
		t.Errorf("no offline banner with the server stopped: %q", r.str("banner"))
	}
	t.Logf("chat list shown %vms after reload with no server", r.num("list_ms"))
	q := fs.get(t, "queued")
	if q.str("before") != "pending" || q.str("after_reload") != "pending" {
		t.Errorf("typed offline: %s, want pending before and after the reload", q)
	}
	if q.num("bob_count") != 1 || q.num("alice_count") != 1 {
		t.Errorf("typed offline: %s, want it once on each side", q)
	}
	s := fs.get(t, "resent")
	// Usually 2: the copy the server read from the old socket after the
	// thaw, and the app's resend on its new session.
	t.Logf("sent twice: bob's page received %v copies and shows %v", s.num("bob_received"), s.num("bob_count"))
	if s.str("frozen") != "pending" || s.num("bob_count") != 1 || s.num("alice_count") != 1 {
		t.Errorf("sent twice: %s, want pending while frozen and shown once on each side", s)
	}
}

// presence: sign-up, a subscription request accepted, online, typing, last
// seen from presence and from XEP-0012, sign-out wiping the device.
func presence(t *testing.T) {
	fs := run(t, "presence", []string{"--registration", "open"}, "alice")
	if me := fs.get(t, "signed-up").str("me"); me != "carol@localhost" {
		t.Errorf("signed up as %q, want carol@localhost", me)
	}
	ty := fs.get(t, "typing")
	if !strings.Contains(ty.str("request"), "alice@localhost") {
		t.Errorf("carol's subscription request: %q", ty.str("request"))
	}
	if ty.str("online") != "online" || ty.str("typing") != "typing…" || ty.str("list_typing") != "typing…" || ty.str("after_pause") != "online" {
		t.Errorf("presence and typing in alice's page: %s", ty)
	}
	ls := fs.get(t, "last-seen")
	re := regexp.MustCompile(`^last seen today at \d\d:\d\d$`)
	if !re.MatchString(ls.str("presence")) || !re.MatchString(ls.str("iq")) {
		t.Errorf("last seen: %s", ls)
	}
	if c, _ := ls["carol_after_signout"].(map[string]any); c["addr"] != "" || c["chats"] != 0.0 || c["messages"] != 0.0 || c["kv"] != 0.0 {
		t.Errorf("carol signed out and wiped her device, yet: %v", c)
	}
	rv := fs.get(t, "revoked")
	if !strings.Contains(rv.str("error"), "Enter your password") || rv.str("addr") != "alice@localhost" || !rv.boolean("token_after") {
		t.Errorf("token revoked: %s, want the password asked for alice@localhost, then a new token", rv)
	}
}
