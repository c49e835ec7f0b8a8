package web

import (
	"slices"
	"strings"
	"testing"
)

// TestWebGroups: a group with three browser users (scenarios/groups.mjs):
// create, invite link, admins only (a refused message shown as not sent),
// make admin, catch-up from the room archive, exit, a revoked link.
func TestWebGroups(t *testing.T) {
	fs := run(t, "groups", nil, "alice", "bob", "carol")

	c := fs.get(t, "created")
	if bl, _ := c["bob_list"].(map[string]any); bl["unread"] != "1" || bl["preview"] != "alice: Hello group! Saturday at 9?" {
		t.Errorf("the group in bob's list: %v, want 1 unread and the preview \"alice: Hello group! Saturday at 9?\"", bl)
	}
	if f := c.strs("bob_from"); !slices.Equal(f, []string{"alice"}) {
		t.Errorf("sender names in bob's group chat: %q", f)
	}
	if ticks := c.strs("alice_ticks"); len(ticks) != 1 || ticks[0] != "sent" {
		t.Errorf("alice's group message shows %q, want sent (✓: groups show ✓ only)", ticks)
	}

	l := fs.get(t, "link")
	if !strings.Contains(l.str("link"), "/#join=g") || !strings.Contains(l.str("link"), "%40groups.localhost&token=") {
		t.Errorf("invite link %q, want http://host/#join=<room>&token=<T>", l.str("link"))
	}
	if m := l.strs("members_before"); !slices.Equal(m, []string{"alice@localhost:owner", "bob@localhost:member"}) {
		t.Errorf("member list before carol: %q", m)
	}
	if ct := l.strs("carol_texts"); !slices.Equal(ct, []string{"Welcome carol!"}) {
		t.Errorf("carol, joined by link, shows %q, want the messages from her join on", ct)
	}

	a := fs.get(t, "admins-only")
	f, _ := a["failed"].(map[string]any)
	if a.str("while_held") != "pending" || f["tick"] != "failed" || !strings.Contains(f["error"].(string), "only admins can send") {
		t.Errorf("bob's message in an admins-only group: %s, want pending then failed with the server's refusal shown", a)
	}
	if a.boolean("alice_got") || a.num("composer_while_on") != 0 {
		t.Errorf("admins only: %s, want the message not delivered and bob's composer replaced", a)
	}

	if r := fs.get(t, "restart"); r.str("tick_down") != "pending" || r.str("tick_after") != "sent" || r.num("carol_count") != 1 {
		t.Errorf("typed while the server was down: %s, want pending, then sent and received once", r)
	}

	cu := fs.get(t, "catch-up")
	away := cu.strs("away")
	for _, k := range []string{"caught", "after_reload"} {
		got := cu.strs(k)
		if len(got) < len(away) || !slices.Equal(got[len(got)-len(away):], away) {
			t.Errorf("carol's catch-up (%s): %q, want it to end with %q", k, got, away)
		}
		seen := map[string]bool{}
		for _, s := range got {
			if seen[s] {
				t.Errorf("carol's catch-up (%s): %q twice in %q", k, s, got)
			}
			seen[s] = true
		}
	}
	t.Logf("carol back: page opened → %d missed messages shown in %vms (sign-in with the token, join, archive query)", len(away), cu.num("catch_ms"))
	if cu.num("unread") != float64(len(away)) || cu.num("offline_row") != 1 {
		t.Errorf("carol back: %s, want the group from the local store and %d unread", cu, len(away))
	}

	if p := fs.get(t, "phone"); p.str("list") != "none" || p.str("chat") != "none" || p.str("info") == "none" || p.num("width") < 380 {
		t.Errorf("group info on a phone: %s, want it alone, full width", p)
	}

	lf := fs.get(t, "left")
	if m := lf.strs("members_after"); !slices.Equal(m, []string{"alice@localhost:owner", "bob@localhost:admin"}) {
		t.Errorf("members after carol exited: %q", m)
	}
	if lf.str("removed_notice") != "You are no longer a member of this group." {
		t.Errorf("carol added back, then removed by alice, sees %q", lf.str("removed_notice"))
	}
	if !strings.Contains(lf.str("revoked_notice"), "revoked") {
		t.Errorf("a revoked link: %q", lf.str("revoked_notice"))
	}
	if !strings.Contains(lf.str("crafted_notice"), "not an invitation") || slices.Contains(lf.strs("carol_rows"), "alice@localhost") {
		t.Errorf("a link naming a person: %s, want it refused and no chat made", lf)
	}
}
