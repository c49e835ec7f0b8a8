package storetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"bluetick/internal/store"
)

// userAgentTests are the store.UserAgents contract, run by Run.
func (s *suite) userAgentTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"UserAgents/PutAndReplace", s.testUserAgentPut},
		{"UserAgents/Keep", s.testUserAgentKeep},
		{"UserAgents/Delete", s.testUserAgentDelete},
		{"UserAgents/UnknownUser", s.testUserAgentUnknownUser},
		{"UserAgents/DeleteUserCascades", s.testUserAgentCascade},
	}
}

const (
	uaPhone  = "d4565fa7-4d72-4749-b3d3-740edbf87770"
	uaLaptop = "0f8fad5b-d9cb-469f-a165-70867728950e"
)

func (s *suite) testUserAgentPut(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	if uas, err := st.UserAgents(ctx, "alice"); err != nil || len(uas) != 0 {
		t.Fatalf("new account's user agents = %v, %v; want none", uas, err)
	}
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	phone := store.UserAgent{ID: uaPhone, Software: "AwesomeXMPP", Device: "Kiva's Phone", LastSeen: t0, LastAddr: "10.0.0.1"}
	laptop := store.UserAgent{ID: uaLaptop, Software: "Bluetick Web 1.0", Device: "", LastSeen: t0.Add(time.Minute), LastAddr: "2001:db8::1"}
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "alice", phone, 0))
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "alice", laptop, 0))
	uas, err := st.UserAgents(ctx, "alice")
	must(t, "UserAgents", err)
	if len(uas) != 2 || uas[0] != laptop || uas[1] != phone {
		t.Fatalf("user agents = %+v, want [%+v %+v] (most recently seen first)", uas, laptop, phone)
	}
	// The same id again: the row takes the latest login's values.
	phone2 := store.UserAgent{ID: uaPhone, Software: "AwesomeXMPP 2", Device: "", LastSeen: t0.Add(2 * time.Minute), LastAddr: "10.0.0.2"}
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "alice", phone2, 0))
	uas, err = st.UserAgents(ctx, "alice")
	must(t, "UserAgents", err)
	if len(uas) != 2 || uas[0] != phone2 || uas[1] != laptop {
		t.Fatalf("after a second login of the phone: %+v, want [%+v %+v]", uas, phone2, laptop)
	}
	// Per account: bob may use the same id, and sees only his.
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "bob", phone, 0))
	uas, err = st.UserAgents(ctx, "bob")
	must(t, "UserAgents", err)
	if len(uas) != 1 || uas[0] != phone {
		t.Fatalf("bob's user agents = %+v, want [%+v]", uas, phone)
	}
	if uas, _ := st.UserAgents(ctx, "alice"); len(uas) != 2 || uas[0] != phone2 {
		t.Fatalf("bob's login changed alice's user agents: %+v", uas)
	}
}

func (s *suite) testUserAgentKeep(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "bob", store.UserAgent{ID: uaPhone, LastSeen: t0, LastAddr: "10.0.0.1"}, 0))
	for i := range 5 {
		ua := store.UserAgent{ID: fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", i), LastSeen: t0.Add(time.Duration(i) * time.Minute), LastAddr: "10.0.0.1"}
		must(t, "PutUserAgent", st.PutUserAgent(ctx, "alice", ua, 3))
	}
	uas, err := st.UserAgents(ctx, "alice")
	must(t, "UserAgents", err)
	if len(uas) != 3 {
		t.Fatalf("%d user agents kept, want 3: %+v", len(uas), uas)
	}
	for i, ua := range uas {
		if want := fmt.Sprintf("00000000-0000-4000-8000-00000000000%d", 4-i); ua.ID != want {
			t.Fatalf("user agent %d is %q, want %q (the most recently seen are kept)", i, ua.ID, want)
		}
	}
	// A login of a kept one again refreshes it; the oldest goes.
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "alice", store.UserAgent{ID: "00000000-0000-4000-8000-000000000002", LastSeen: t0.Add(time.Hour), LastAddr: "10.0.0.1"}, 2))
	uas, err = st.UserAgents(ctx, "alice")
	must(t, "UserAgents", err)
	if len(uas) != 2 || uas[0].ID != "00000000-0000-4000-8000-000000000002" || uas[1].ID != "00000000-0000-4000-8000-000000000004" {
		t.Fatalf("after a refresh with keep 2: %+v", uas)
	}
	if uas, _ := st.UserAgents(ctx, "bob"); len(uas) != 1 {
		t.Fatalf("alice's bound removed bob's user agents: %+v", uas)
	}
}

func (s *suite) testUserAgentDelete(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "alice", store.UserAgent{ID: uaPhone, LastSeen: t0}, 0))
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "alice", store.UserAgent{ID: uaLaptop, LastSeen: t0}, 0))
	if err := st.DeleteUserAgent(ctx, "bob", uaPhone); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting another account's user agent: %v, want ErrNotFound", err)
	}
	must(t, "DeleteUserAgent", st.DeleteUserAgent(ctx, "alice", uaPhone))
	if err := st.DeleteUserAgent(ctx, "alice", uaPhone); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleting it twice: %v, want ErrNotFound", err)
	}
	uas, err := st.UserAgents(ctx, "alice")
	must(t, "UserAgents", err)
	if len(uas) != 1 || uas[0].ID != uaLaptop {
		t.Fatalf("after delete: %+v", uas)
	}
}

func (s *suite) testUserAgentUnknownUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	err := st.PutUserAgent(ctx, "nobody", store.UserAgent{ID: uaPhone, LastSeen: time.Now()}, 0)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("PutUserAgent for an absent account: %v, want ErrNotFound", err)
	}
	if uas, err := st.UserAgents(ctx, "nobody"); err != nil || len(uas) != 0 {
		t.Fatalf("UserAgents of an absent account: %v, %v; want none", uas, err)
	}
}

func (s *suite) testUserAgentCascade(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	must(t, "PutUserAgent", st.PutUserAgent(ctx, "alice", store.UserAgent{ID: uaPhone, LastSeen: time.Now()}, 0))
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))
	must(t, "CreateUser", st.CreateUser(ctx, "alice", nil))
	if uas, err := st.UserAgents(ctx, "alice"); err != nil || len(uas) != 0 {
		t.Fatalf("a re-created account inherited user agents %+v (%v)", uas, err)
	}
}
