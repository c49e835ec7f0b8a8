package auth

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
)

// throttleFixture is a Throttle on a fake clock over an SQLite store in
// memory holding the account alice.
type throttleFixture struct {
	t   *testing.T
	th  *Throttle
	st  store.Store
	now time.Time
}

func newThrottleFixture(t *testing.T, cfg ThrottleConfig) *throttleFixture {
	t.Helper()
	st, err := sqlite.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateUser(t.Context(), "alice", nil); err != nil {
		t.Fatal(err)
	}
	f := &throttleFixture{t: t, st: st, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	f.th = NewThrottle(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	f.th.now = func() time.Time { return f.now }
	t.Cleanup(func() { f.th.Close(context.Background()) })
	return f
}

// try admits an attempt from addr and reports it failed; it returns the
// wait when refused.
func (f *throttleFixture) try(user, addr string) time.Duration {
	f.t.Helper()
	a, wait := f.th.Admit(f.t.Context(), user, netip.MustParseAddr(addr))
	if a != nil {
		a.Failed()
	}
	return wait
}

func (f *throttleFixture) login(user, addr string) store.LoginStats {
	f.t.Helper()
	a, wait := f.th.Admit(f.t.Context(), user, netip.MustParseAddr(addr))
	if a == nil {
		f.t.Fatalf("login of %s from %s refused for %v", user, addr, wait)
	}
	prev, err := a.Succeeded(f.t.Context())
	if err != nil {
		f.t.Fatal(err)
	}
	return prev
}

func TestThrottleBackoffDoublesToTheCap(t *testing.T) {
	f := newThrottleFixture(t, ThrottleConfig{Failures: 3, Backoff: time.Second, BackoffMax: 4 * time.Second, Window: time.Hour})
	for i := range 3 {
		if w := f.try("alice", "10.0.0.1"); w != 0 {
			t.Fatalf("attempt %d refused (%v) within the free failures", i+1, w)
		}
	}
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		if w := f.try("alice", "10.0.0.2"); w != d {
			t.Fatalf("refused with wait %v, want %v", w, d)
		}
		f.now = f.now.Add(d - time.Millisecond)
		if w := f.try("alice", "10.0.0.3"); w != time.Millisecond {
			t.Fatalf("a millisecond early: wait %v", w)
		}
		f.now = f.now.Add(time.Millisecond)
		if w := f.try("alice", "10.0.0.4"); w != 0 {
			t.Fatalf("refused after the back-off of %v: %v", d, w)
		}
	}
	if n := f.th.Metrics.ThrottledAccount.Load(); n != 8 {
		t.Fatalf("%d refusals counted, want 8", n)
	}
	// A quiet window forgets the streak: in memory, and in the store.
	f.now = f.now.Add(time.Hour + 5*time.Second)
	for i := range 3 {
		if w := f.try("alice", "10.0.0.1"); w != 0 {
			t.Fatalf("after a quiet window, attempt %d refused (%v)", i+1, w)
		}
	}
}

func TestThrottleOwnerKeepsItsLane(t *testing.T) {
	f := newThrottleFixture(t, ThrottleConfig{Failures: 2, Backoff: time.Hour, BackoffMax: time.Hour, Window: time.Hour})
	f.login("alice", "192.0.2.1")
	f.login("alice", "2001:db8:1:2::10")
	for range 2 {
		f.try("alice", "10.0.0.1")
	}
	if w := f.try("alice", "10.0.0.2"); w == 0 {
		t.Fatal("strangers not in back-off")
	}
	// The known addresses each have their own lane: the owner logs in
	// from both (from another address of the same IPv6 /64 too), and is
	// told of the failures since the previous login each time.
	if prev := f.login("alice", "192.0.2.1"); prev.Failed != 2 || prev.LastFailureAddr != "10.0.0.1" {
		t.Fatalf("record before the login: %+v, want 2 failures, the last from 10.0.0.1", prev)
	}
	if w := f.try("alice", "192.0.2.1"); w != 0 {
		t.Fatalf("known address refused: %v", w)
	}
	prev := f.login("alice", "2001:db8:1:2:aaaa::1")
	if prev.Failed != 1 || prev.LastFailureAddr != "192.0.2.1" {
		t.Fatalf("record before the login: %+v, want 1 failure, from 192.0.2.1", prev)
	}
	if prev = f.login("alice", "192.0.2.1"); prev.Failed != 0 {
		t.Fatalf("failures not reset by a success: %+v", prev)
	}
	// Another address of the /48 is a stranger.
	if w := f.try("alice", "2001:db8:1:3::1"); w == 0 {
		t.Fatal("another /64 shares the known lane")
	}
	// A known lane has a back-off of its own.
	for range 2 {
		f.try("alice", "192.0.2.1")
	}
	if w := f.try("alice", "192.0.2.1"); w == 0 {
		t.Fatal("the known address's lane has no back-off")
	}
}

func TestThrottleSuccessGivesTheCountBack(t *testing.T) {
	f := newThrottleFixture(t, ThrottleConfig{Failures: 2, Backoff: time.Hour, BackoffMax: time.Hour, Window: time.Hour})
	f.try("alice", "10.0.0.1")
	f.login("alice", "10.0.0.9") // a stranger until now, with the right password
	if w := f.try("alice", "10.0.0.2"); w != 0 {
		t.Fatalf("a success counted against the strangers: wait %v", w)
	}
	if w := f.try("alice", "10.0.0.2"); w == 0 {
		t.Fatal("two failures did not start the back-off")
	}
}

// Parallel guesses cannot slip in between admission and verdict: an
// attempt counts as soon as it is admitted.
func TestThrottleParallelAdmissions(t *testing.T) {
	f := newThrottleFixture(t, ThrottleConfig{Failures: 5, Backoff: time.Hour, BackoffMax: time.Hour, Window: time.Hour})
	var admitted atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if a, _ := f.th.Admit(context.Background(), "alice", netip.AddrFrom4([4]byte{10, 0, 1, byte(i)})); a != nil {
				admitted.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if n := admitted.Load(); n != 5 {
		t.Fatalf("%d of 100 parallel attempts admitted, want 5", n)
	}
}

// The streak written by one throttle (one node) holds on another, and
// after a restart.
func TestThrottleStreakShared(t *testing.T) {
	cfg := ThrottleConfig{Failures: 2, Backoff: time.Minute, BackoffMax: time.Hour, Window: time.Hour}
	f := newThrottleFixture(t, cfg)
	f.try("alice", "10.0.0.1")
	f.try("alice", "10.0.0.1")
	if err := f.th.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	other := NewThrottle(cfg, f.st, slog.New(slog.NewTextHandler(io.Discard, nil)))
	other.now = f.th.now
	f.now = f.now.Add(30 * time.Second)
	if a, w := other.Admit(t.Context(), "alice", netip.MustParseAddr("10.0.0.2")); a != nil || w != 30*time.Second {
		t.Fatalf("other node: admitted %v, wait %v; want refused for 30s", a != nil, w)
	}
}

// Memory stays bounded whatever names are guessed.
func TestThrottleBounded(t *testing.T) {
	f := newThrottleFixture(t, ThrottleConfig{Failures: 2, Backoff: time.Hour, BackoffMax: time.Hour, Window: time.Hour, MaxEntries: 100})
	for i := range 1000 {
		f.try("user"+string(rune('a'+i%26))+string(rune('a'+i/26)), "10.0.0.1")
	}
	f.th.mu.Lock()
	nb, na := len(f.th.buckets), len(f.th.accounts)
	f.th.mu.Unlock()
	if nb > 100 || na > 100 {
		t.Fatalf("%d buckets and %d cached accounts for a bound of 100", nb, na)
	}
}

func TestAddressPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":               "192.0.2.1",
		"::ffff:192.0.2.1":        "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":    "2001:db8:1:2::/64",
		"fe80::1":                 "fe80::/64",
		"::1":                     "::/64",
		"2001:db8:1:2::abcd:1234": "2001:db8:1:2::/64",
	} {
		if got := AddressPrefix(netip.MustParseAddr(in)); got != want {
			t.Errorf("AddressPrefix(%s) = %q, want %q", in, got, want)
		}
	}
	if AddressPrefix(netip.Addr{}) != "" {
		t.Error("no address has a prefix")
	}
}

// Admit runs before any credential lookup, for PLAIN and SCRAM alike, and
// its failure is the exchange's.
func TestAdmitBeforeLookup(t *testing.T) {
	ms := newMemStore()
	ms.add(t, "alice", "pw", testIterations)
	var admitted []string
	cfg := Config{Lookup: ms.lookup, Admit: func(ctx context.Context, user string) *Failure {
		admitted = append(admitted, user)
		return &Failure{Condition: condTemporary, Text: "retry in 1s"}
	}}
	for mech, in := range map[string]string{
		Plain:       "\x00Alice\x00pw",
		SCRAMSHA256: "n,,n=Alice,r=abcdefgh",
		SCRAMSHA1:   "n,,n=Alice,r=abcdefgh",
	} {
		cfg.PrepareUser = func(s string) (string, error) { return map[string]string{"Alice": "alice"}[s], nil }
		neg, err := NewNegotiator(mech, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = neg.Step(t.Context(), []byte(in))
		if f, ok := err.(*Failure); !ok || f.Condition != condTemporary {
			t.Errorf("%s: %v, want the Admit failure", mech, err)
		}
	}
	if ms.lookups != 0 || len(admitted) != 3 || admitted[0] != "alice" {
		t.Fatalf("%d lookups, admitted %v", ms.lookups, admitted)
	}
}
