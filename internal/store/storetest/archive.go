package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"bluetick/internal/store"
)

// Contract of store.Archive, store.Blocking and store.Privacy (mam branch).

// archiveTests are run by Run.
func (s *suite) archiveTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Archive/AppendAndPage", s.testArchivePaging},
		{"Archive/Filters", s.testArchiveFilters},
		{"Archive/UnknownIDs", s.testArchiveUnknownIDs},
		{"Archive/StoredNeverGoesBack", s.testArchiveMonotonic},
		{"Archive/AppendErrors", s.testArchiveAppendErrors},
		{"Archive/Expire", s.testArchiveExpire},
		{"Archive/Prefs", s.testArchivePrefs},
		{"Archive/DeleteUserCascades", s.testArchiveDeleteUser},
		{"Archive/ConcurrentAppend", s.testArchiveConcurrent},
		{"Blocking/BlockUnblock", s.testBlocking},
		{"Privacy/LastSeen", s.testLastSeen},
	}
}

func arch(user, id, with string, at time.Time) store.ArchiveEntry {
	return store.ArchiveEntry{User: user, ArchivedMessage: store.ArchivedMessage{
		ID: id, With: with, Stored: at, Data: []byte("<message id='" + id + "'>\x00\xff</message>"),
	}}
}

func ids(p store.ArchivePage) []string {
	var out []string
	for _, m := range p.Messages {
		out = append(out, m.ID)
	}
	return out
}

// fill appends n messages to alice's archive, a minute apart from t0,
// alternating between bob and carol (with resources), and returns the ids.
func fill(t *testing.T, st store.Store, n int, t0 time.Time) []string {
	t.Helper()
	var out []string
	for i := range n {
		with := "bob@example.org/phone"
		if i%2 == 1 {
			with = "carol@example.org/pc"
		}
		id := fmt.Sprintf("id-%03d", i)
		must(t, "AppendArchive", st.AppendArchive(t.Context(), []store.ArchiveEntry{arch("alice", id, with, t0.Add(time.Duration(i)*time.Minute))}))
		out = append(out, id)
	}
	return out
}

func query(t *testing.T, st store.Store, user string, q store.ArchiveQuery) store.ArchivePage {
	t.Helper()
	p, err := st.QueryArchive(t.Context(), user, q)
	must(t, "QueryArchive", err)
	return p
}

func (s *suite) testArchivePaging(t *testing.T) {
	st := s.withUsers(t, "alice", "bob")
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	all := fill(t, st, 25, t0)

	p := query(t, st, "alice", store.ArchiveQuery{Max: 100})
	if !slices.Equal(ids(p), all) || !p.Complete {
		t.Fatalf("whole archive = %v complete=%v", ids(p), p.Complete)
	}
	m := p.Messages[3]
	if m.With != "carol@example.org/pc" || !m.Stored.Equal(t0.Add(3*time.Minute)) || string(m.Data) != "<message id='id-003'>\x00\xff</message>" {
		t.Fatalf("fields: %+v", m)
	}
	// Forward paging by 10.
	var got []string
	q := store.ArchiveQuery{Max: 10}
	for page := 0; ; page++ {
		p := query(t, st, "alice", q)
		got = append(got, ids(p)...)
		if p.Complete {
			if page != 2 || len(p.Messages) != 5 {
				t.Fatalf("complete at page %d with %d messages", page, len(p.Messages))
			}
			break
		}
		if page > 3 {
			t.Fatal("paging does not end")
		}
		q.After = []string{p.Messages[len(p.Messages)-1].ID}
	}
	if !slices.Equal(got, all) {
		t.Fatalf("forward pages = %v", got)
	}
	// Backward paging from the end (RSM <before/>): pages in order.
	got = nil
	q = store.ArchiveQuery{Max: 10, FromEnd: true}
	for {
		p := query(t, st, "alice", q)
		got = append(ids(p), got...)
		if p.Complete {
			break
		}
		q.Before = []string{p.Messages[0].ID}
	}
	if !slices.Equal(got, all) {
		t.Fatalf("backward pages = %v", got)
	}
	// Exactly a full last page is complete.
	p = query(t, st, "alice", store.ArchiveQuery{Max: 5, After: []string{all[19]}})
	if !slices.Equal(ids(p), all[20:]) || !p.Complete {
		t.Fatalf("last full page = %v complete=%v", ids(p), p.Complete)
	}
	// Max 0: nothing, but tells whether anything matches.
	if p := query(t, st, "alice", store.ArchiveQuery{}); len(p.Messages) != 0 || p.Complete {
		t.Fatalf("Max 0 = %v complete=%v", ids(p), p.Complete)
	}
	if p := query(t, st, "bob", store.ArchiveQuery{Max: 10}); len(p.Messages) != 0 || !p.Complete {
		t.Fatalf("bob's empty archive = %v", ids(p))
	}
	// Between two ids.
	p = query(t, st, "alice", store.ArchiveQuery{Max: 100, After: []string{all[3]}, Before: []string{all[7]}})
	if !slices.Equal(ids(p), all[4:7]) {
		t.Fatalf("between = %v", ids(p))
	}
	// Several bounds: the tightest wins.
	p = query(t, st, "alice", store.ArchiveQuery{Max: 100, After: []string{all[3], all[5]}, Before: []string{all[9], all[8]}})
	if !slices.Equal(ids(p), all[6:8]) {
		t.Fatalf("tightest bounds = %v", ids(p))
	}
}

func (s *suite) testArchiveFilters(t *testing.T) {
	st := s.withUsers(t, "alice")
	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	all := fill(t, st, 20, t0)
	must(t, "AppendArchive", st.AppendArchive(t.Context(), []store.ArchiveEntry{arch("alice", "other-res", "bob@example.org/pc", t0.Add(time.Hour))}))

	p := query(t, st, "alice", store.ArchiveQuery{Max: 100, With: "bob@example.org"})
	want := []string{}
	for i := 0; i < 20; i += 2 {
		want = append(want, all[i])
	}
	if !slices.Equal(ids(p), append(want, "other-res")) {
		t.Fatalf("with bare = %v", ids(p))
	}
	if p := query(t, st, "alice", store.ArchiveQuery{Max: 100, With: "bob@example.org/phone"}); !slices.Equal(ids(p), want) {
		t.Fatalf("with full = %v", ids(p))
	}
	if p := query(t, st, "alice", store.ArchiveQuery{Max: 100, With: "dave@example.org"}); len(p.Messages) != 0 {
		t.Fatalf("with stranger = %v", ids(p))
	}
	p = query(t, st, "alice", store.ArchiveQuery{Max: 100, Start: t0.Add(5 * time.Minute), End: t0.Add(8 * time.Minute)})
	if !slices.Equal(ids(p), all[5:9]) {
		t.Fatalf("start/end inclusive = %v", ids(p))
	}
	p = query(t, st, "alice", store.ArchiveQuery{Max: 2, Start: t0.Add(5 * time.Minute), With: "carol@example.org", FromEnd: true})
	if !slices.Equal(ids(p), []string{all[17], all[19]}) || p.Complete {
		t.Fatalf("combined from end = %v complete=%v", ids(p), p.Complete)
	}
	p = query(t, st, "alice", store.ArchiveQuery{Max: 100, IDs: []string{all[7], all[2]}})
	if !slices.Equal(ids(p), []string{all[2], all[7]}) {
		t.Fatalf("ids = %v", ids(p))
	}
}

func (s *suite) testArchiveUnknownIDs(t *testing.T) {
	st := s.withUsers(t, "alice", "bob")
	all := fill(t, st, 3, time.Now())
	for _, q := range []store.ArchiveQuery{
		{Max: 10, After: []string{"nope"}},
		{Max: 10, Before: []string{"nope"}},
		{Max: 10, IDs: []string{all[0], "nope"}},
	} {
		_, err := st.QueryArchive(t.Context(), "alice", q)
		wantErr(t, fmt.Sprintf("QueryArchive(%+v)", q), err, store.ErrNotFound)
	}
	// Another user's id is not in this archive.
	_, err := st.QueryArchive(t.Context(), "bob", store.ArchiveQuery{Max: 10, After: []string{all[0]}})
	wantErr(t, "QueryArchive with another user's id", err, store.ErrNotFound)
}

// testArchiveMonotonic: a message stamped earlier than the latest (a clock
// step back, another node's clock) still sorts after it.
func (s *suite) testArchiveMonotonic(t *testing.T) {
	st := s.withUsers(t, "alice")
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	must(t, "append", st.AppendArchive(t.Context(), []store.ArchiveEntry{arch("alice", "a", "bob@example.org", t0)}))
	must(t, "append", st.AppendArchive(t.Context(), []store.ArchiveEntry{arch("alice", "b", "bob@example.org", t0.Add(-time.Hour))}))
	must(t, "append", st.AppendArchive(t.Context(), []store.ArchiveEntry{arch("alice", "c", "bob@example.org", t0.Add(time.Second))}))
	p := query(t, st, "alice", store.ArchiveQuery{Max: 10})
	if !slices.Equal(ids(p), []string{"a", "b", "c"}) || p.Messages[1].Stored.Before(t0) {
		t.Fatalf("order = %v, b stored %v", ids(p), p.Messages[1].Stored)
	}
	if p.Messages[0].Stored.Location() != time.UTC {
		t.Fatal("stored not in UTC")
	}
}

func (s *suite) testArchiveAppendErrors(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	now := time.Now()
	// Both copies at once.
	must(t, "append pair", st.AppendArchive(ctx, []store.ArchiveEntry{
		arch("alice", "x1", "bob@example.org/a", now), arch("bob", "y1", "alice@example.org/b", now),
	}))
	err := st.AppendArchive(ctx, []store.ArchiveEntry{arch("alice", "x2", "bob@example.org", now), arch("ghost", "g", "alice@example.org", now)})
	wantErr(t, "append for an absent user", err, store.ErrNotFound)
	if p := query(t, st, "alice", store.ArchiveQuery{Max: 10}); !slices.Equal(ids(p), []string{"x1"}) {
		t.Fatalf("a failed append stored %v", ids(p))
	}
	err = st.AppendArchive(ctx, []store.ArchiveEntry{arch("alice", "x1", "bob@example.org", now)})
	wantErr(t, "append with a taken id", err, store.ErrExists)
	// The same id in another archive is fine.
	must(t, "same id, other user", st.AppendArchive(ctx, []store.ArchiveEntry{arch("bob", "x1", "alice@example.org", now)}))
	must(t, "empty append", st.AppendArchive(ctx, nil))
}

func (s *suite) testArchiveExpire(t *testing.T) {
	st := s.withUsers(t, "alice", "bob")
	t0 := time.Now().Add(-10 * time.Hour)
	all := fill(t, st, 10, t0)
	must(t, "append bob", st.AppendArchive(t.Context(), []store.ArchiveEntry{arch("bob", "b", "alice@example.org", t0)}))
	n, err := st.ExpireArchive(t.Context(), t0.Add(4*time.Minute+time.Second))
	must(t, "ExpireArchive", err)
	if n != 6 {
		t.Fatalf("expired %d, want 6", n)
	}
	if p := query(t, st, "alice", store.ArchiveQuery{Max: 100}); !slices.Equal(ids(p), all[5:]) {
		t.Fatalf("after expiry = %v", ids(p))
	}
	// Expired ids are gone (item-not-found for paging on them).
	_, err = st.QueryArchive(t.Context(), "alice", store.ArchiveQuery{Max: 10, After: []string{all[0]}})
	wantErr(t, "paging after an expired id", err, store.ErrNotFound)
}

func (s *suite) testArchivePrefs(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	_, err := st.ArchivePrefs(ctx, "alice")
	wantErr(t, "ArchivePrefs before set", err, store.ErrNotFound)
	p := store.ArchivePrefs{Default: "roster", Always: []string{"a@example.org", "b@example.org"}, Never: []string{"c@example.org"}}
	must(t, "SetArchivePrefs", st.SetArchivePrefs(ctx, "alice", p))
	got, err := st.ArchivePrefs(ctx, "alice")
	must(t, "ArchivePrefs", err)
	if got.Default != p.Default || !slices.Equal(got.Always, p.Always) || !slices.Equal(got.Never, p.Never) {
		t.Fatalf("prefs = %+v", got)
	}
	must(t, "SetArchivePrefs replace", st.SetArchivePrefs(ctx, "alice", store.ArchivePrefs{Default: "never"}))
	got, err = st.ArchivePrefs(ctx, "alice")
	must(t, "ArchivePrefs", err)
	if got.Default != "never" || len(got.Always) != 0 || len(got.Never) != 0 {
		t.Fatalf("replaced prefs = %+v", got)
	}
	wantErr(t, "SetArchivePrefs for an absent account", st.SetArchivePrefs(ctx, "ghost", p), store.ErrNotFound)
}

func (s *suite) testArchiveDeleteUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	fill(t, st, 3, time.Now())
	must(t, "prefs", st.SetArchivePrefs(ctx, "alice", store.ArchivePrefs{Default: "never"}))
	must(t, "block", st.Block(ctx, "alice", []string{"x@example.org"}))
	must(t, "last seen", st.SetLastSeenVisibility(ctx, "alice", "nobody"))
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))
	must(t, "CreateUser", st.CreateUser(ctx, "alice", nil))
	if p := query(t, st, "alice", store.ArchiveQuery{Max: 10}); len(p.Messages) != 0 {
		t.Fatalf("archive survived DeleteUser: %v", ids(p))
	}
	_, err := st.ArchivePrefs(ctx, "alice")
	wantErr(t, "prefs after DeleteUser", err, store.ErrNotFound)
	if l, err := st.Blocklist(ctx, "alice"); err != nil || len(l) != 0 {
		t.Fatalf("blocklist after DeleteUser = %v, %v", l, err)
	}
	_, err = st.LastSeenVisibility(ctx, "alice")
	wantErr(t, "last seen after DeleteUser", err, store.ErrNotFound)
}

// testArchiveConcurrent appends from several goroutines to the same two
// archives (both copies of each message at once, in both orders) and
// checks nothing is lost and every page walk sees each message once.
func (s *suite) testArchiveConcurrent(t *testing.T) {
	st := s.withUsers(t, "alice", "bob")
	const workers, per = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				a := arch("alice", fmt.Sprintf("a-%d-%d", w, i), "bob@example.org", time.Now())
				b := arch("bob", fmt.Sprintf("b-%d-%d", w, i), "alice@example.org", time.Now())
				e := []store.ArchiveEntry{a, b}
				if w%2 == 1 {
					e = []store.ArchiveEntry{b, a}
				}
				if err := st.AppendArchive(t.Context(), e); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, u := range []string{"alice", "bob"} {
		seen := map[string]bool{}
		q := store.ArchiveQuery{Max: 7}
		for {
			p := query(t, st, u, q)
			for _, id := range ids(p) {
				if seen[id] {
					t.Fatalf("%s: %s seen twice", u, id)
				}
				seen[id] = true
			}
			if p.Complete {
				break
			}
			q.After = []string{p.Messages[len(p.Messages)-1].ID}
		}
		if len(seen) != workers*per {
			t.Fatalf("%s: %d messages, want %d", u, len(seen), workers*per)
		}
	}
}

func (s *suite) testBlocking(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	if l, err := st.Blocklist(ctx, "alice"); err != nil || len(l) != 0 {
		t.Fatalf("empty blocklist = %v, %v", l, err)
	}
	must(t, "Block", st.Block(ctx, "alice", []string{"x@example.org", "evil.example", "y@example.org/r"}))
	must(t, "Block again", st.Block(ctx, "alice", []string{"x@example.org"}))
	l, err := st.Blocklist(ctx, "alice")
	must(t, "Blocklist", err)
	if !slices.Equal(l, []string{"evil.example", "x@example.org", "y@example.org/r"}) {
		t.Fatalf("blocklist = %v", l)
	}
	for _, c := range []struct {
		jids []string
		want bool
	}{
		{[]string{"x@example.org/a", "x@example.org"}, true},
		{[]string{"y@example.org/other", "y@example.org"}, false},
		{[]string{"m@evil.example", "evil.example"}, true},
		{nil, false},
	} {
		got, err := st.BlockedAny(ctx, "alice", c.jids)
		must(t, "BlockedAny", err)
		if got != c.want {
			t.Fatalf("BlockedAny(%v) = %v", c.jids, got)
		}
	}
	if got, _ := st.BlockedAny(ctx, "bob", []string{"x@example.org"}); got {
		t.Fatal("bob blocks what alice blocked")
	}
	must(t, "Unblock one", st.Unblock(ctx, "alice", []string{"x@example.org", "not-there@example.org"}))
	if l, _ := st.Blocklist(ctx, "alice"); !slices.Equal(l, []string{"evil.example", "y@example.org/r"}) {
		t.Fatalf("after unblock = %v", l)
	}
	must(t, "Unblock all", st.Unblock(ctx, "alice", nil))
	if l, _ := st.Blocklist(ctx, "alice"); len(l) != 0 {
		t.Fatalf("after unblock all = %v", l)
	}
	wantErr(t, "Block for an absent account", st.Block(ctx, "ghost", []string{"x@example.org"}), store.ErrNotFound)
}

func (s *suite) testLastSeen(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	_, err := st.LastSeenVisibility(ctx, "alice")
	wantErr(t, "LastSeenVisibility before set", err, store.ErrNotFound)
	must(t, "set", st.SetLastSeenVisibility(ctx, "alice", "nobody"))
	must(t, "set again", st.SetLastSeenVisibility(ctx, "alice", "everyone"))
	if v, err := st.LastSeenVisibility(ctx, "alice"); err != nil || v != "everyone" {
		t.Fatalf("LastSeenVisibility = %q, %v", v, err)
	}
	wantErr(t, "set for an absent account", st.SetLastSeenVisibility(ctx, "ghost", "nobody"), store.ErrNotFound)
}
