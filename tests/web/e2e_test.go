package web

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// TestE2E: OMEMO in Bluetick Web (docs/e2e.md), scenario e2e.mjs: 1:1,
// reload, a second device of each user, replay and forgery refused, a
// group of three; then the server's whole data directory (its database,
// write-ahead log, archive, offline queue and upload files) is searched
// for the text of every message: none may be there.
func TestE2E(t *testing.T) {
	need(t)
	s := startServer(t, nil, "alice", "bob", "carol")
	facts := runOn(t, s, "e2e")
	o := facts.get(t, "one-to-one")
	if o.str("bob_e2e") != "ok" || o.str("alice_e2e") != "ok" || o.str("alice_out_lock") != "ok" {
		t.Errorf("1:1 messages not shown as encrypted: %s", o)
	}
	if o.boolean("plain_to_bob") || o.boolean("plain_from_alice") || !o.boolean("encrypted_to_bob") {
		t.Errorf("the WebSockets carried the text in the clear, or no <encrypted/>: %s", o)
	}
	if r := facts.get(t, "reload"); r.str("e2e") != "ok" {
		t.Errorf("after a reload: %s", r)
	}
	if d := facts.get(t, "devices"); d.str("bob2") != "ok" || d.str("bob1") != "ok" || d.str("alice2_sent_copy") != "ok" {
		t.Errorf("other devices: %s, want each ok (decrypted)", d)
	}
	r := facts.get(t, "refused")
	if n := len(r["refused"].([]any)); n != 2 {
		t.Errorf("replay and forgery: %d messages shown as refused, want 2: %s", n, r)
	}
	for _, tx := range r.strs("texts_after") {
		if tx == "fallback" || tx == "for every one of bob's devices" {
			t.Errorf("a replayed or forged message was shown as text %q", tx)
		}
	}
	if g := facts.get(t, "group"); g.str("bob") != "ok" || g.str("carol") != "ok" || g.str("alice_from_carol") != "ok" || g.str("bob_from_carol") != "ok" || g.boolean("plain_seen") {
		t.Errorf("group: %s", g)
	}
	s.stop()
	texts := facts.get(t, "texts").strs("all")
	filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		for _, tx := range texts {
			if bytes.Contains(b, []byte(tx)) {
				t.Errorf("the server's %s holds the plaintext %q", p, tx)
			}
		}
		return nil
	})
}
