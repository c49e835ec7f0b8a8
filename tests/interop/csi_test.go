package interop

import (
	"context"
	"path/filepath"
	"slices"
	"testing"

	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
)

// Client State Indication (XEP-0352) with slixmpp's xep_0352: TestInterop's
// subtest 25_csi.

// shareMutualPresence puts a and b in each other's roster with
// subscription both, through the store the running server uses.
func shareMutualPresence(t *testing.T, s *server, a, b string) {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(s.dir, "bluetick.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, p := range [][2]string{{a, b}, {b, a}} {
		if _, err := st.PutRosterItem(context.Background(), p[0], store.RosterItem{Contact: s.jid(p[1]), Subscription: store.SubBoth, InRoster: true}); err != nil {
			t.Fatal(err)
		}
	}
}

// kinds returns the "kind:value" of each thing bob received.
func kinds(e event) []string {
	var out []string
	got, _ := e["got"].([]any)
	for _, g := range got {
		m, _ := g.(map[string]any)
		k, _ := m["kind"].(string)
		v, _ := m["value"].(string)
		out = append(out, k+":"+v)
	}
	return out
}

// 25. bob (slixmpp) goes <inactive/>; alice changes her presence three
// times and sends chat states; bob gets nothing for a bounded wait; on
// <active/> he gets only alice's latest presence and latest chat state
// (coalesced). Inactive again: two presence changes and a chat state are
// held, then alice's real message arrives at once (< 1 s), right after the
// latest held presence and chat state (flushed first, in order).
func testCSI(t *testing.T) {
	s := startServer(t, "alice", "bob")
	shareMutualPresence(t, s, "alice", "bob")
	need(t, "slixmpp")
	evs := start(t, "slixmpp:csi", nil, pythonPath, filepath.Join(clientsDir, "slix_csi.py"), "csi", s.config(map[string]any{"hold": 1.5})).finish(t)

	if c := one(t, evs, "csi"); !c.boolean("enabled") {
		t.Fatalf("slixmpp did not enable CSI: the <csi xmlns='urn:xmpp:csi:0'/> stream feature is missing (features %v)", c.strs("features"))
	}
	for _, w := range all(evs, "while_inactive") {
		if got := kinds(w); len(got) != 0 {
			t.Errorf("round %v: bob got %v while inactive, want nothing", w["round"], got)
		}
	}
	if got := kinds(one(t, evs, "after_active")); !slices.Equal(got, []string{"presence:r1 status 3", "chatstate:paused"}) {
		t.Errorf("after <active/> bob got %v, want alice's latest presence and chat state only", got)
	}
	m := one(t, evs, "after_message")
	if !m.boolean("delivered") {
		t.Fatalf("the real message did not reach inactive bob: %s", m)
	}
	if lat, ok := m.num("latency"); !ok || lat > 1.0 {
		t.Errorf("the real message took %v s to reach inactive bob, want at once", m["latency"])
	}
	if got := kinds(m); !slices.Equal(got, []string{"presence:r2 status 2", "chatstate:composing", "message:wake up"}) {
		t.Errorf("the message flush gave bob %v, want the latest held presence and chat state, then the message", got)
	}
}
