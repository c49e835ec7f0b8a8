package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"bluetick/internal/store"
)

// fastTests are the store.FastTokens contract, run by Run.
func (s *suite) fastTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Fast/RoundTrip", s.testFastRoundTrip},
		{"Fast/UnknownUser", s.testFastUnknownUser},
		{"Fast/Rotation", s.testFastRotation},
		{"Fast/Count", s.testFastCount},
		{"Fast/CountConcurrent", s.testFastCountConcurrent},
		{"Fast/Invalidate", s.testFastInvalidate},
		{"Fast/Revoke", s.testFastRevoke},
		{"Fast/Evict", s.testFastEvict},
		{"Fast/Expire", s.testFastExpire},
		{"Fast/DeleteUserCascades", s.testFastCascade},
	}
}

var fastT0 = time.Date(2026, 3, 1, 10, 0, 0, 123000, time.UTC)

// fastToken makes a token of user's client agent, created `at`, valid 14
// days, whose hash is derived from name.
func fastToken(user, agent, name string, at time.Time) store.FastToken {
	h := bytes.Repeat([]byte(name), 32/len(name)+1)[:32]
	return store.FastToken{User: user, AgentID: agent, Hash: h, Mechanism: "HT-SHA-256-NONE",
		Software: "App " + agent, Device: "Phone " + agent, Created: at, Expires: at.Add(14 * 24 * time.Hour)}
}

// fastHashes returns the names (first byte of the hash) of user's tokens,
// live ones as "x", revoked ones as "x!reason".
func fastHashes(t *testing.T, st store.Store, user string) []string {
	t.Helper()
	ts, err := st.FastTokens(t.Context(), user)
	must(t, "FastTokens", err)
	var out []string
	for _, tk := range ts {
		n := string(tk.Hash[:1])
		if !tk.Revoked.IsZero() {
			n += "!" + tk.RevokeReason
		}
		out = append(out, n)
	}
	return out
}

func wantTokens(t *testing.T, st store.Store, user string, want ...string) {
	t.Helper()
	got := fastHashes(t, st, user)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s's tokens = %v, want %v", user, got, want)
	}
}

func (s *suite) testFastRoundTrip(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	a := fastToken("alice", "agent-1", "a", fastT0)
	a.Mechanism = "HT-SHA-256-EXPR"
	must(t, "PutFastToken", st.PutFastToken(ctx, a, 10))
	b := fastToken("alice", "agent-2", "b", fastT0.Add(time.Second))
	must(t, "PutFastToken b", st.PutFastToken(ctx, b, 10))
	got, err := st.FastTokens(ctx, "alice")
	must(t, "FastTokens", err)
	if len(got) != 2 {
		t.Fatalf("got %d tokens, want 2", len(got))
	}
	g := got[0]
	if g.User != "alice" || g.AgentID != "agent-1" || !bytes.Equal(g.Hash, a.Hash) || g.Mechanism != "HT-SHA-256-EXPR" ||
		g.Software != "App agent-1" || g.Device != "Phone agent-1" || !g.Created.Equal(a.Created) || !g.Expires.Equal(a.Expires) ||
		!g.LastUsed.IsZero() || g.Count != 0 || !g.Revoked.IsZero() || g.RevokeReason != "" {
		t.Fatalf("token = %+v, want %+v", g, a)
	}
	if got[0].Created.Location() != time.UTC {
		t.Errorf("Created in %v, want UTC", got[0].Created.Location())
	}
	dup := a
	dup.AgentID = "agent-2"
	if err := st.PutFastToken(ctx, dup, 10); !errors.Is(err, store.ErrExists) {
		t.Fatalf("PutFastToken with a taken hash: %v, want ErrExists", err)
	}
	if got2, _ := st.FastTokens(ctx, "alice"); len(got2) != 2 {
		t.Fatalf("a refused PutFastToken changed the tokens: %d, want 2 (nothing done)", len(got2))
	}
	if bob, err := st.FastTokens(ctx, "bob"); err != nil || len(bob) != 0 {
		t.Fatalf("bob's tokens = %v, %v; want none", bob, err)
	}
	// The same hash may exist for another account (the key is per user).
	must(t, "PutFastToken for bob", st.PutFastToken(ctx, fastToken("bob", "agent-1", "a", fastT0), 10))
	// A use sets LastUsed and the count.
	must(t, "UseFastToken", st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: a.Hash, At: fastT0.Add(time.Hour), Count: 3}))
	got, err = st.FastTokens(ctx, "alice")
	must(t, "FastTokens", err)
	if !got[0].LastUsed.Equal(fastT0.Add(time.Hour)) || got[0].Count != 3 {
		t.Fatalf("after use: LastUsed %v Count %d, want %v 3", got[0].LastUsed, got[0].Count, fastT0.Add(time.Hour))
	}
	// A use without count keeps the count.
	must(t, "UseFastToken", st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: a.Hash, At: fastT0.Add(2 * time.Hour)}))
	got, _ = st.FastTokens(ctx, "alice")
	if got[0].Count != 3 || !got[0].LastUsed.Equal(fastT0.Add(2*time.Hour)) {
		t.Fatalf("after a use without count: %+v", got[0])
	}
}

func (s *suite) testFastUnknownUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	if err := st.PutFastToken(ctx, fastToken("nobody", "a", "a", fastT0), 10); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutFastToken for an unknown account: %v, want ErrNotFound", err)
	}
	if ts, err := st.FastTokens(ctx, "nobody"); err != nil || len(ts) != 0 {
		t.Fatalf("FastTokens of an unknown account: %v, %v", ts, err)
	}
	if err := st.UseFastToken(ctx, store.FastUse{User: "nobody", Hash: []byte("x"), At: fastT0}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UseFastToken for an unknown account: %v, want ErrNotFound", err)
	}
	if err := st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: []byte("x"), At: fastT0}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("UseFastToken of an unknown token: %v, want ErrNotFound", err)
	}
	if n, err := st.RevokeFastTokens(ctx, "nobody", "", fastT0, "admin"); err != nil || n != 0 {
		t.Fatalf("RevokeFastTokens of an unknown account: %d, %v", n, err)
	}
}

// testFastRotation follows XEP-0484's token rotation: a new token leaves
// the client's used token valid until the new one is used; a newer token
// replaces an unused one at once.
func (s *suite) testFastRotation(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	use := func(name string, at time.Time) error {
		return st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: fastToken("", "", name, at).Hash, At: at})
	}
	must(t, "Put a", st.PutFastToken(ctx, fastToken("alice", "phone", "a", fastT0), 10))
	must(t, "Put other", st.PutFastToken(ctx, fastToken("alice", "laptop", "z", fastT0), 10))
	// b replaces the unused a.
	must(t, "Put b", st.PutFastToken(ctx, fastToken("alice", "phone", "b", fastT0.Add(time.Minute)), 10))
	wantTokens(t, st, "alice", "z", "b")
	must(t, "use b", use("b", fastT0.Add(time.Hour)))
	// c is issued (rotation): b, used, stays valid until c is used.
	must(t, "Put c", st.PutFastToken(ctx, fastToken("alice", "phone", "c", fastT0.Add(2*time.Hour)), 10))
	wantTokens(t, st, "alice", "z", "b", "c")
	must(t, "use b again", use("b", fastT0.Add(3*time.Hour))) // the client never got c
	wantTokens(t, st, "alice", "z", "b", "c")
	// d replaces the unused c, not the used b.
	must(t, "Put d", st.PutFastToken(ctx, fastToken("alice", "phone", "d", fastT0.Add(4*time.Hour)), 10))
	wantTokens(t, st, "alice", "z", "b", "d")
	// Using d invalidates b (earlier expiry), not the other client's z.
	must(t, "use d", use("d", fastT0.Add(5*time.Hour)))
	wantTokens(t, st, "alice", "z", "d")
	if err := use("b", fastT0.Add(6*time.Hour)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use of a superseded token: %v, want ErrNotFound", err)
	}
}

func (s *suite) testFastCount(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	a := fastToken("alice", "phone", "a", fastT0)
	must(t, "Put", st.PutFastToken(ctx, a, 10))
	use := func(count int64) error {
		return st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: a.Hash, At: fastT0.Add(time.Minute), Count: count})
	}
	must(t, "count 1", use(1))
	if err := use(1); !errors.Is(err, store.ErrReplay) {
		t.Fatalf("count 1 again: %v, want ErrReplay", err)
	}
	must(t, "count 5", use(5))
	for _, c := range []int64{5, 4, 2} {
		if err := use(c); !errors.Is(err, store.ErrReplay) {
			t.Fatalf("count %d after 5: %v, want ErrReplay", c, err)
		}
	}
	ts, _ := st.FastTokens(ctx, "alice")
	if ts[0].Count != 5 {
		t.Fatalf("count = %d after refused replays, want 5", ts[0].Count)
	}
	must(t, "no count", use(0))
	must(t, "count 6", use(6))
}

// testFastCountConcurrent sends the same count from many goroutines (on
// PostgreSQL, many connections, as several nodes would): exactly one use
// is accepted.
func (s *suite) testFastCountConcurrent(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	a := fastToken("alice", "phone", "a", fastT0)
	must(t, "Put", st.PutFastToken(ctx, a, 10))
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, replays := 0, 0
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: a.Hash, At: fastT0.Add(time.Minute), Count: 7})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, store.ErrReplay):
				replays++
			default:
				t.Errorf("UseFastToken: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok != 1 || replays != n-1 {
		t.Fatalf("%d accepted, %d replays; want 1 and %d", ok, replays, n-1)
	}
}

func (s *suite) testFastInvalidate(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	must(t, "Put a", st.PutFastToken(ctx, fastToken("alice", "phone", "a", fastT0), 10))
	must(t, "Put z", st.PutFastToken(ctx, fastToken("alice", "laptop", "z", fastT0), 10))
	a := fastToken("alice", "phone", "a", fastT0)
	must(t, "use a", st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: a.Hash, At: fastT0.Add(time.Minute)}))
	must(t, "Put b", st.PutFastToken(ctx, fastToken("alice", "phone", "b", fastT0.Add(time.Hour)), 10))
	wantTokens(t, st, "alice", "a", "z", "b")
	// Invalidating a also ends the client's pending b.
	must(t, "invalidate a", st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: a.Hash, At: fastT0.Add(2 * time.Hour), Invalidate: true}))
	wantTokens(t, st, "alice", "z")
	if err := st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: a.Hash, At: fastT0.Add(3 * time.Hour)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use after invalidate: %v, want ErrNotFound", err)
	}
}

func (s *suite) testFastRevoke(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	must(t, "Put a", st.PutFastToken(ctx, fastToken("alice", "phone", "a", fastT0), 10))
	must(t, "Put b", st.PutFastToken(ctx, fastToken("alice", "laptop", "b", fastT0.Add(time.Second)), 10))
	must(t, "Put c", st.PutFastToken(ctx, fastToken("alice", "tablet", "c", fastT0.Add(2*time.Second)), 10))
	must(t, "Put bob", st.PutFastToken(ctx, fastToken("bob", "phone", "x", fastT0), 10))
	n, err := st.RevokeFastTokens(ctx, "alice", "laptop", fastT0.Add(time.Hour), "user")
	if err != nil || n != 1 {
		t.Fatalf("revoke one client: %d, %v; want 1", n, err)
	}
	wantTokens(t, st, "alice", "a", "b!user", "c")
	ts, _ := st.FastTokens(ctx, "alice")
	if !ts[1].Revoked.Equal(fastT0.Add(time.Hour)) {
		t.Fatalf("Revoked = %v, want %v", ts[1].Revoked, fastT0.Add(time.Hour))
	}
	if err := st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: ts[1].Hash, At: fastT0.Add(2 * time.Hour)}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("use of a revoked token: %v, want ErrNotFound", err)
	}
	n, err = st.RevokeFastTokens(ctx, "alice", "", fastT0.Add(2*time.Hour), "password")
	if err != nil || n != 2 {
		t.Fatalf("revoke all: %d, %v; want 2 (the revoked one is not counted again)", n, err)
	}
	wantTokens(t, st, "alice", "a!password", "b!user", "c!password")
	wantTokens(t, st, "bob", "x")
	// A new token after revocation is live.
	must(t, "Put d", st.PutFastToken(ctx, fastToken("alice", "phone", "d", fastT0.Add(3*time.Hour)), 10))
	wantTokens(t, st, "alice", "a!password", "b!user", "c!password", "d")
}

func (s *suite) testFastEvict(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	// Three clients; "b" logs in again later, so "a" is the least recently active.
	must(t, "Put a", st.PutFastToken(ctx, fastToken("alice", "A", "a", fastT0), 3))
	must(t, "Put b", st.PutFastToken(ctx, fastToken("alice", "B", "b", fastT0.Add(time.Minute)), 3))
	must(t, "Put c", st.PutFastToken(ctx, fastToken("alice", "C", "c", fastT0.Add(2*time.Minute)), 3))
	b := fastToken("", "", "b", fastT0)
	must(t, "use b", st.UseFastToken(ctx, store.FastUse{User: "alice", Hash: b.Hash, At: fastT0.Add(time.Hour)}))
	// A rotation of an existing client evicts nobody.
	must(t, "Put c2", st.PutFastToken(ctx, fastToken("alice", "C", "e", fastT0.Add(2*time.Hour)), 3))
	wantTokens(t, st, "alice", "a", "b", "e")
	// A fourth client evicts the least recently active: a.
	must(t, "Put d", st.PutFastToken(ctx, fastToken("alice", "D", "d", fastT0.Add(3*time.Hour)), 3))
	wantTokens(t, st, "alice", "a!evicted", "b", "e", "d")
	// An expired token does not count as a client.
	exp := fastToken("alice", "X", "x", fastT0.Add(-30*24*time.Hour))
	exp.Expires = fastT0.Add(-time.Hour)
	must(t, "Put expired", st.PutFastToken(ctx, exp, 0))
	must(t, "Put f", st.PutFastToken(ctx, fastToken("alice", "F", "f", fastT0.Add(4*time.Hour)), 4))
	wantTokens(t, st, "alice", "x", "a!evicted", "b", "e", "d", "f")
	// The number of revoked tokens kept is bounded (2 * maxAgents).
	for i := 0; i < 6; i++ {
		name := string(rune('g' + i))
		must(t, "Put "+name, st.PutFastToken(ctx, fastToken("alice", "agent-"+name, name, fastT0.Add(time.Duration(5+i)*time.Hour)), 1))
	}
	got := fastHashes(t, st, "alice")
	live, revoked := 0, 0
	for _, g := range got {
		if len(g) > 1 {
			revoked++
		} else if g != "x" {
			live++
		}
	}
	if live != 1 || revoked != 2 {
		t.Fatalf("with maxAgents 1: tokens %v, want 1 live and 2 revoked kept", got)
	}
	if got[len(got)-1] != "l" {
		t.Fatalf("the newest token is not the live one: %v", got)
	}
}

func (s *suite) testFastExpire(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	must(t, "Put a", st.PutFastToken(ctx, fastToken("alice", "A", "a", fastT0), 10))
	must(t, "Put b", st.PutFastToken(ctx, fastToken("alice", "B", "b", fastT0.Add(48*time.Hour)), 10))
	must(t, "Put c", st.PutFastToken(ctx, fastToken("bob", "C", "c", fastT0), 10))
	_, err := st.RevokeFastTokens(ctx, "bob", "", fastT0.Add(time.Hour), "admin")
	must(t, "revoke", err)
	// a and c expire at fastT0+14d; b a day later.
	n, err := st.ExpireFastTokens(ctx, fastT0.Add(14*24*time.Hour+time.Second))
	if err != nil || n != 2 {
		t.Fatalf("ExpireFastTokens: %d, %v; want 2 (a live one and a revoked one)", n, err)
	}
	wantTokens(t, st, "alice", "b")
	wantTokens(t, st, "bob")
}

func (s *suite) testFastCascade(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	must(t, "Put a", st.PutFastToken(ctx, fastToken("alice", "A", "a", fastT0), 10))
	must(t, "Put b", st.PutFastToken(ctx, fastToken("bob", "A", "b", fastT0), 10))
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))
	must(t, "CreateUser", st.CreateUser(ctx, "alice", nil))
	wantTokens(t, st, "alice")
	wantTokens(t, st, "bob", "b")
}
