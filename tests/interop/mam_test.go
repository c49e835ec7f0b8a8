package interop

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
)

// Archive (XEP-0313) and blocking (XEP-0191) with slixmpp (mam branch):
// TestInterop's subtests 17_mam_paging and 18_blocking.

func slixMAM(t *testing.T, s *server, scenario string, args map[string]any) *proc {
	t.Helper()
	need(t, "slixmpp")
	return start(t, "slixmpp:"+scenario, nil, pythonPath, filepath.Join(clientsDir, "slix_mam.py"), scenario, s.config(args))
}

// seedDay writes a day of traffic into alice's archive through the store
// (the running server shares the SQLite file; WAL lets both use it): n
// messages from t0 on, one every 24h/n, with bob, except every third with
// carol. It returns their times.
func seedDay(t *testing.T, s *server, n int, t0 time.Time) []time.Time {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(s.dir, "bluetick.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var entries []store.ArchiveEntry
	var times []time.Time
	step := 24 * time.Hour / time.Duration(n)
	for i := range n {
		peer := "bob@" + domain
		if i%3 == 2 {
			peer = "carol@" + domain
		}
		from, to := peer+"/phone", "alice@"+domain
		if i%2 == 0 {
			from, to = "alice@"+domain+"/pc", peer
		}
		at := t0.Add(time.Duration(i) * step)
		data := fmt.Sprintf("<message xmlns='jabber:client' from='%s' to='%s' type='chat' id='seed%d'><body>seed %03d</body></message>", from, to, i, i)
		entries = append(entries, store.ArchiveEntry{User: "alice", ArchivedMessage: store.ArchivedMessage{
			ID: fmt.Sprintf("SEED%04d", i), With: peer + "/phone", Stored: at, Data: []byte(data)}})
		times = append(times, at)
	}
	if err := st.AppendArchive(context.Background(), entries); err != nil {
		t.Fatal(err)
	}
	return times
}

// 17. A day of traffic in the archive (300 seeded messages spread over 24
// hours, then 20 sent live); slixmpp pages through it 50 at a time, pages
// back from the end with RSM <before/>, and filters by 'with' and by a
// start/end window. Counts, order and uniqueness are checked against what
// was seeded.
func testMAMPaging(t *testing.T) {
	s := startServerArgs(t, []string{"--archive", "archive"}, "alice", "bob", "carol")
	const seeded, live = 300, 20
	t0 := time.Now().Add(-25 * time.Hour).UTC().Truncate(time.Second)
	times := seedDay(t, s, seeded, t0)
	start, end := t0.Add(6*time.Hour), t0.Add(12*time.Hour)
	inWindow := 0
	for _, at := range times {
		if !at.Before(start) && !at.After(end) {
			inWindow++
		}
	}
	evs := slixMAM(t, s, "mam_paging", map[string]any{
		"live": live, "with": "carol@" + domain, "back": 120,
		"start": start.Format(time.RFC3339), "end": end.Format(time.RFC3339),
	}).finish(t)
	if d := one(t, evs, "disco"); !slices.Contains(d.strs("features"), "urn:xmpp:mam:2") {
		t.Errorf("account disco#info lacks urn:xmpp:mam:2: %v", d.strs("features"))
	}
	for _, by := range one(t, evs, "bob_stanza_ids").strs("by") {
		if by != s.jid("bob") {
			t.Errorf("bob's stanza-id by %q, want %s", by, s.jid("bob"))
		}
	}

	results := func(label string) []event { return where(evs, "result", "label", label) }
	pages := func(label string) []event { return where(evs, "page", "label", label) }

	// The whole archive, forward.
	all := results("all")
	var want []string
	for i := range seeded {
		want = append(want, fmt.Sprintf("seed %03d", i))
	}
	for i := range live {
		want = append(want, fmt.Sprintf("live %03d", i))
	}
	var bodies, ids []string
	seen := map[string]bool{}
	var last time.Time
	for _, r := range all {
		bodies = append(bodies, r.str("body"))
		ids = append(ids, r.str("id"))
		if seen[r.str("id")] {
			t.Errorf("id %s returned twice", r.str("id"))
		}
		seen[r.str("id")] = true
		at, err := time.Parse(time.RFC3339Nano, r.str("stamp"))
		if err != nil {
			t.Errorf("result %s has no usable delay stamp %q", r.str("id"), r.str("stamp"))
		} else if at.Before(last) {
			t.Errorf("result %s at %v is before the previous one (%v)", r.str("id"), at, last)
		} else {
			last = at
		}
		if r.str("from") != s.jid("alice") {
			t.Errorf("result from %q, want the archive's JID %s", r.str("from"), s.jid("alice"))
		}
		if r.str("queryid") == "" {
			t.Errorf("result %s without the queryid", r.str("id"))
		}
	}
	if !slices.Equal(bodies, want) {
		t.Fatalf("forward paging returned %d messages %v..., want %d in order", len(bodies), bodies[:min(5, len(bodies))], len(want))
	}
	ps := pages("all")
	if len(ps) != (seeded+live+49)/50 {
		t.Errorf("%d pages of max 50 for %d messages", len(ps), seeded+live)
	}
	for i, p := range ps {
		n, _ := p.num("n")
		lastPage := i == len(ps)-1
		if !lastPage && (n != 50 || p.boolean("complete")) {
			t.Errorf("page %d: %v results, complete=%v; want 50, not complete", i, n, p.boolean("complete"))
		}
		if lastPage && !p.boolean("complete") {
			t.Errorf("last page not marked complete: %s", p)
		}
	}
	// Backward from the end: the newest 120, newest first.
	back := one(t, evs, "backward").strs("ids")
	wantBack := slices.Clone(ids[len(ids)-120:])
	slices.Reverse(wantBack)
	if !slices.Equal(back, wantBack) {
		t.Errorf("backward paging from <before/>: got %d ids, want the newest 120 in reverse", len(back))
	}
	// with=carol: every third seeded message, nothing live.
	var carol []string
	for _, r := range results("with") {
		carol = append(carol, r.str("body"))
		if r.str("inner_from") != "carol@"+domain+"/phone" && r.str("inner_to") != "carol@"+domain {
			t.Errorf("with=carol returned a message between %s and %s", r.str("inner_from"), r.str("inner_to"))
		}
	}
	if len(carol) != seeded/3 {
		t.Errorf("with=carol: %d messages, want %d", len(carol), seeded/3)
	}
	// The 6-hour window.
	if n := len(results("window")); n != inWindow {
		t.Errorf("start/end window: %d messages, want %d", n, inWindow)
	}
	if u := one(t, evs, "unknown_after"); u.str("type") != "error" || u.str("condition") != "item-not-found" {
		t.Errorf("<after/> with an unknown id: %s, want item-not-found", u)
	}
}

// 18. alice blocks bob: bob's message comes back service-unavailable,
// alice's comes back not-acceptable with <blocked/>, neither is delivered;
// after the unblock both flow.
func testBlocking(t *testing.T) {
	s := startServer(t, "alice", "bob")
	evs := slixMAM(t, s, "blocking", nil).finish(t)
	if d := one(t, evs, "disco"); !slices.Contains(d.strs("features"), "urn:xmpp:blocking") {
		t.Errorf("server disco#info lacks urn:xmpp:blocking: %v", d.strs("features"))
	}
	lists := map[string][]string{}
	for _, b := range all(evs, "blocklist") {
		lists[b.str("when")] = b.strs("items")
	}
	if len(lists["initial"]) != 0 || !slices.Equal(lists["blocked"], []string{s.jid("bob")}) || len(lists["unblocked"]) != 0 {
		t.Errorf("blocklists: %v", lists)
	}
	var aliceBounce, bobBounce event
	for _, b := range all(evs, "bounce") {
		switch b.str("client") {
		case "alice":
			aliceBounce = b
		case "bob":
			bobBounce = b
		}
	}
	if bobBounce == nil || bobBounce.str("condition") != "service-unavailable" {
		t.Errorf("bob's message to alice while blocked: %v, want a service-unavailable error (XEP-0191 §3.5)", bobBounce)
	}
	if aliceBounce == nil || aliceBounce.str("condition") != "not-acceptable" || !aliceBounce.boolean("blocked") {
		t.Errorf("alice's message to bob while blocking: %v, want not-acceptable with <blocked/> (XEP-0191 §3.6)", aliceBounce)
	}
	w := one(t, evs, "while_blocked")
	if len(w.strs("alice_got")) != 0 || len(w.strs("bob_got")) != 0 {
		t.Errorf("delivered while blocked: %s", w)
	}
	a := one(t, evs, "after_unblock")
	if !slices.Contains(a.strs("alice_got"), "bob after unblock") || !slices.Contains(a.strs("bob_got"), "alice after unblock") {
		t.Errorf("after unblock: %s", a)
	}
}
