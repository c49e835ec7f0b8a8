package storetest

import (
	"testing"

	"bluetick/internal/store"
)

func (s *suite) disabledTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Disabling/SetAndClear", s.testDisableUser},
		{"Disabling/UnknownUser", s.testDisableUnknownUser},
	}
}

// testDisableUser: a new account is enabled; disabling touches only that
// account and keeps its credentials; re-enabling clears it.
func (s *suite) testDisableUser(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	cred := scram("SCRAM-SHA-256", 3)
	must(t, "CreateUser alice", st.CreateUser(ctx, "alice", []store.Credential{cred}))
	must(t, "CreateUser bob", st.CreateUser(ctx, "bob", nil))
	disabled := func(user string) bool {
		t.Helper()
		d, err := st.UserDisabled(ctx, user)
		must(t, "UserDisabled "+user, err)
		return d
	}
	if disabled("alice") {
		t.Fatal("a new account is disabled")
	}
	must(t, "SetUserDisabled alice", st.SetUserDisabled(ctx, "alice", true))
	if !disabled("alice") || disabled("bob") {
		t.Fatalf("after disabling alice: alice %v, bob %v", disabled("alice"), disabled("bob"))
	}
	must(t, "SetUserDisabled alice again", st.SetUserDisabled(ctx, "alice", true))
	if got, err := st.Credential(ctx, "alice", "SCRAM-SHA-256"); err != nil || !credEqual(got, cred) {
		t.Fatalf("a disabled account's credential: %+v, %v", got, err)
	}
	must(t, "SetUserDisabled alice false", st.SetUserDisabled(ctx, "alice", false))
	if disabled("alice") {
		t.Fatal("re-enabled account still disabled")
	}
	// A deleted and re-created account starts enabled.
	must(t, "SetUserDisabled bob", st.SetUserDisabled(ctx, "bob", true))
	must(t, "DeleteUser bob", st.DeleteUser(ctx, "bob"))
	must(t, "CreateUser bob again", st.CreateUser(ctx, "bob", nil))
	if disabled("bob") {
		t.Fatal("a re-created account inherits the disabled mark")
	}
}

func (s *suite) testDisableUnknownUser(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	wantErr(t, "SetUserDisabled of an unknown account", st.SetUserDisabled(ctx, "nobody", true), store.ErrNotFound)
	if d, err := st.UserDisabled(ctx, "nobody"); err != nil || d {
		t.Fatalf("UserDisabled of an unknown account: %v, %v", d, err)
	}
}
