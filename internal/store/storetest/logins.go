package storetest

import (
	"errors"
	"testing"
	"time"

	"bluetick/internal/store"
)

// loginTests are the store.Logins contract, run by Run.
func (s *suite) loginTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Logins/FailuresAndSuccess", s.testLoginFailuresAndSuccess},
		{"Logins/Streak", s.testLoginStreak},
		{"Logins/KnownAddresses", s.testLoginKnown},
		{"Logins/UnknownUser", s.testLoginUnknownUser},
		{"Logins/DeleteUserCascades", s.testLoginCascade},
	}
}

var loginPolicy = store.LoginPolicy{StreakWindow: time.Hour, KeepKnown: 3}

func (s *suite) testLoginFailuresAndSuccess(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	ls, err := st.LoginStats(ctx, "alice")
	must(t, "LoginStats", err)
	if ls.Failed != 0 || !ls.LastFailure.IsZero() || !ls.LastSuccess.IsZero() || ls.Streak != 0 || len(ls.Known) != 0 {
		t.Fatalf("new account's login stats = %+v, want zero", ls)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	must(t, "RecordLogins", st.RecordLogins(ctx, []store.LoginEvent{
		{User: "alice", At: t0, Addr: "10.0.0.1", Success: true, Prefix: "10.0.0.1"},
		{User: "alice", At: t0.Add(time.Minute), Addr: "10.0.0.5", Stranger: true},
		{User: "alice", At: t0.Add(2 * time.Minute), Addr: "10.0.0.6", Stranger: true},
		{User: "alice", At: t0.Add(3 * time.Minute), Addr: "10.0.0.1"},
	}, loginPolicy))
	ls, err = st.LoginStats(ctx, "alice")
	must(t, "LoginStats", err)
	if ls.Failed != 3 || !ls.LastFailure.Equal(t0.Add(3*time.Minute)) || ls.LastFailureAddr != "10.0.0.1" ||
		!ls.LastSuccess.Equal(t0) || ls.LastSuccessAddr != "10.0.0.1" {
		t.Fatalf("after 3 failures: %+v", ls)
	}
	// Only the failures from strangers make the streak.
	if ls.Streak != 2 || !ls.StreakLast.Equal(t0.Add(2*time.Minute)) {
		t.Fatalf("streak %d (last %v), want 2 (last %v)", ls.Streak, ls.StreakLast, t0.Add(2*time.Minute))
	}
	if bob, err := st.LoginStats(ctx, "bob"); err != nil || bob.Failed != 0 {
		t.Fatalf("bob's stats %+v, %v: another account's events leaked", bob, err)
	}

	// A success resets the count since the last success, not the streak.
	must(t, "RecordLogins", st.RecordLogins(ctx, []store.LoginEvent{
		{User: "alice", At: t0.Add(4 * time.Minute), Addr: "10.0.0.1", Success: true, Prefix: "10.0.0.1"},
	}, loginPolicy))
	ls, err = st.LoginStats(ctx, "alice")
	must(t, "LoginStats", err)
	if ls.Failed != 0 || !ls.LastSuccess.Equal(t0.Add(4*time.Minute)) || !ls.LastFailure.Equal(t0.Add(3*time.Minute)) || ls.Streak != 2 {
		t.Fatalf("after a success: %+v", ls)
	}
}

func (s *suite) testLoginStreak(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var evs []store.LoginEvent
	for i := range 4 {
		evs = append(evs, store.LoginEvent{User: "alice", At: t0.Add(time.Duration(i) * time.Minute), Addr: "10.0.0.9", Stranger: true})
	}
	must(t, "RecordLogins", st.RecordLogins(ctx, evs, loginPolicy))
	// Quiet for longer than the window: a new streak.
	late := t0.Add(3*time.Minute + time.Hour + time.Second)
	must(t, "RecordLogins", st.RecordLogins(ctx, []store.LoginEvent{{User: "alice", At: late, Addr: "10.0.0.9", Stranger: true}}, loginPolicy))
	ls, err := st.LoginStats(ctx, "alice")
	must(t, "LoginStats", err)
	if ls.Streak != 1 || !ls.StreakLast.Equal(late) || ls.Failed != 5 {
		t.Fatalf("after a quiet hour: streak %d (last %v), failed %d; want 1, %v, 5", ls.Streak, ls.StreakLast, ls.Failed, late)
	}
	// Within the window it grows again.
	must(t, "RecordLogins", st.RecordLogins(ctx, []store.LoginEvent{{User: "alice", At: late.Add(time.Hour), Addr: "10.0.0.9", Stranger: true}}, loginPolicy))
	if ls, _ = st.LoginStats(ctx, "alice"); ls.Streak != 2 {
		t.Fatalf("streak %d, want 2", ls.Streak)
	}
}

func (s *suite) testLoginKnown(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var evs []store.LoginEvent
	for i, p := range []string{"10.0.0.1", "2001:db8:1:2::/64", "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.2"} {
		evs = append(evs, store.LoginEvent{User: "alice", At: t0.Add(time.Duration(i) * time.Minute), Addr: p, Success: true, Prefix: p})
	}
	must(t, "RecordLogins", st.RecordLogins(ctx, evs, loginPolicy))
	ls, err := st.LoginStats(ctx, "alice")
	must(t, "LoginStats", err)
	// KeepKnown 3: the three most recently used, newest first.
	want := []store.KnownAddress{{Prefix: "10.0.0.2", LastSeen: t0.Add(5 * time.Minute)}, {Prefix: "10.0.0.3", LastSeen: t0.Add(4 * time.Minute)}, {Prefix: "10.0.0.1", LastSeen: t0.Add(2 * time.Minute)}}
	if len(ls.Known) != len(want) {
		t.Fatalf("known = %+v, want %+v", ls.Known, want)
	}
	for i := range want {
		if ls.Known[i].Prefix != want[i].Prefix || !ls.Known[i].LastSeen.Equal(want[i].LastSeen) {
			t.Fatalf("known = %+v, want %+v", ls.Known, want)
		}
	}
	// An older event does not move last_seen back; a success without a
	// prefix adds none.
	must(t, "RecordLogins", st.RecordLogins(ctx, []store.LoginEvent{
		{User: "alice", At: t0, Addr: "10.0.0.2", Success: true, Prefix: "10.0.0.2"},
		{User: "alice", At: t0.Add(time.Hour), Addr: "10.0.0.7", Success: true},
	}, loginPolicy))
	ls, _ = st.LoginStats(ctx, "alice")
	if len(ls.Known) != 3 || ls.Known[0].Prefix != "10.0.0.2" || !ls.Known[0].LastSeen.Equal(t0.Add(5*time.Minute)) || ls.LastSuccessAddr != "10.0.0.7" {
		t.Fatalf("after older and prefix-less successes: %+v", ls)
	}
}

func (s *suite) testLoginUnknownUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	if _, err := st.LoginStats(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("LoginStats of an absent account: %v, want ErrNotFound", err)
	}
	// Events of absent accounts are skipped; the others in the batch apply.
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, "RecordLogins", st.RecordLogins(ctx, []store.LoginEvent{
		{User: "nobody", At: t0, Addr: "10.0.0.5", Stranger: true},
		{User: "nobody", At: t0, Addr: "10.0.0.5", Success: true, Prefix: "10.0.0.5"},
		{User: "alice", At: t0, Addr: "10.0.0.5", Stranger: true},
	}, loginPolicy))
	if _, err := st.LoginStats(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("events created an account: %v", err)
	}
	if ls, err := st.LoginStats(ctx, "alice"); err != nil || ls.Failed != 1 {
		t.Fatalf("alice: %+v, %v", ls, err)
	}
	must(t, "RecordLogins of nothing", st.RecordLogins(ctx, nil, loginPolicy))
}

func (s *suite) testLoginCascade(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, "RecordLogins", st.RecordLogins(ctx, []store.LoginEvent{
		{User: "alice", At: t0, Addr: "10.0.0.1", Success: true, Prefix: "10.0.0.1"},
		{User: "alice", At: t0, Addr: "10.0.0.5", Stranger: true},
	}, loginPolicy))
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))
	must(t, "CreateUser", st.CreateUser(ctx, "alice", nil))
	ls, err := st.LoginStats(ctx, "alice")
	must(t, "LoginStats", err)
	if ls.Failed != 0 || ls.Streak != 0 || len(ls.Known) != 0 || !ls.LastSuccess.IsZero() {
		t.Fatalf("a re-created account inherited %+v", ls)
	}
}
