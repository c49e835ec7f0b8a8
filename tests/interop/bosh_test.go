package interop

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// 21. Strophe.js over BOSH (XEP-0206) to a slixmpp bot over TCP and back.
func testBOSH(t *testing.T) {
	need(t, "strophe")
	s := startServer(t, "alice", "bob")
	bot := slix(t, s, "echo", map[string]any{"user": "bob", "count": 1})
	bobJID := fullJIDOf(t, "bob", bot.waitEvent(t, "ready", 15*time.Second).str("jid"))
	body := "hello over BOSH"
	evs := start(t, "strophe", nil, "node", filepath.Join(clientsDir, "bosh_client.mjs"),
		s.config(map[string]any{"user": "alice", "to": s.jid("bob"), "body": body})).finish(t)
	l := one(t, evs, "login")
	aliceJID := fullJIDOf(t, "alice", l.str("jid"))
	if !strings.HasPrefix(l.str("mechanism"), "SCRAM-SHA-") || l.str("sid") == "" {
		t.Errorf("Strophe login over BOSH: %s", l)
	}
	got := one(t, bot.finish(t), "received")
	if got.str("from") != aliceJID || got.str("body") != body {
		t.Errorf("bot got from=%q body=%q, want from=%q body=%q", got.str("from"), got.str("body"), aliceJID, body)
	}
	r := one(t, evs, "received")
	if r.str("from") != bobJID || r.str("body") != "echo: "+body || r.str("stanza_id_by") != s.jid("alice") {
		t.Errorf("Strophe got %s, want the echo from %s with a stanza-id by %s", r, bobJID, s.jid("alice"))
	}
}
