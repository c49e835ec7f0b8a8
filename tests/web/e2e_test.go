package web

import "testing"

// TestE2E: OMEMO in Bluetick Web (docs/e2e.md), scenario e2e.mjs.
func TestE2E(t *testing.T) {
	fs := run(t, "e2e", nil, "alice", "bob", "carol")
	o := fs.get(t, "one-to-one")
	if o.str("bob_e2e") != "ok" || o.str("alice_e2e") != "ok" || o.str("alice_out_lock") != "ok" {
		t.Errorf("1:1 messages not shown as encrypted: %s", o)
	}
	if o.boolean("plain_to_bob") || o.boolean("plain_from_alice") || !o.boolean("encrypted_to_bob") {
		t.Errorf("the WebSockets carried the text in the clear, or no <encrypted/>: %s", o)
	}
	if r := fs.get(t, "reload"); r.str("e2e") != "ok" {
		t.Errorf("after a reload: %s", r)
	}
}
