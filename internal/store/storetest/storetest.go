// Package storetest is the contract suite every store.Store implementation
// must pass. It checks behaviour only through the store.Store interface, so
// the same tests run against the embedded SQLite store and against
// PostgreSQL: nothing here may depend on how one backend happens to work.
//
// Usage, from an implementation's _test.go file:
//
//	func TestContract(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { ... })
//	}
//
// open must return a new, empty store each time it is called; Run closes it
// when the subtest ends (open may register its own t.Cleanup for files or
// schemas, which then runs after the store is closed).
package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/store"
)

// Run runs the whole contract suite, one subtest per behaviour, each on a
// fresh store from open.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	s := &suite{open: open}
	tests := []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Users/CreateAndExists", s.testCreateAndExists},
		{"Users/CreateDuplicate", s.testCreateDuplicate},
		{"Users/CredentialPerMechanism", s.testCredentialPerMechanism},
		{"Users/SetCredentials", s.testSetCredentials},
		{"Users/ListUsersSorted", s.testListUsersSorted},
		{"Users/DeleteUser", s.testDeleteUser},
		{"Users/DeleteUserCascades", s.testDeleteUserCascades},
		{"Users/UnknownUser", s.testUnknownUser},
		{"Rosters/Empty", s.testRosterEmpty},
		{"Rosters/RoundTrip", s.testRosterRoundTrip},
		{"Rosters/GroupsNilEmpty", s.testRosterGroupsNilEmpty},
		{"Rosters/Replace", s.testRosterReplace},
		{"Rosters/Delete", s.testRosterDelete},
		{"Rosters/VersionIncreases", s.testRosterVersion},
		{"Rosters/VersionNotReused", s.testRosterVersionNotReused},
		{"Rosters/NotInRoster", s.testRosterNotInRoster},
		{"Rosters/PerUser", s.testRosterPerUser},
		{"Rosters/Counts", s.testRosterCounts},
		{"Offline/SeqAndOrder", s.testOfflineSeqAndOrder},
		{"Offline/SeqNeverReused", s.testOfflineSeqNeverReused},
		{"Offline/Fields", s.testOfflineFields},
		{"Offline/StoredTime", s.testOfflineStoredTime},
		{"Offline/DataBytes", s.testOfflineDataBytes},
		{"Offline/Limit", s.testOfflineLimit},
		{"Offline/Quota", s.testOfflineQuota},
		{"Offline/QuotaUnlimited", s.testOfflineQuotaUnlimited},
		{"Offline/QuotaAtomic", s.testOfflineQuotaAtomic},
		{"Offline/DeleteOffline", s.testDeleteOffline},
		{"Offline/ApplyBatch", s.testApplyOffline},
		{"Offline/Count", s.testCountOffline},
		{"Offline/Expire", s.testExpireOffline},
		{"LastActivity/SetAndOverwrite", s.testLastActivity},
		{"PEP/Nodes", s.testPEPNodes},
		{"PEP/Items", s.testPEPItems},
		{"PEP/MaxItems", s.testPEPMaxItems},
		{"PEP/PrivateAndVCard", s.testPEPPrivateVCard},
		{"PEP/Caps", s.testPEPCaps},
		{"PEP/DeleteUserCascades", s.testPEPDeleteUser},
		{"Rooms/CreateGetUpdate", s.testRoomCRUD},
		{"Rooms/Affiliations", s.testRoomAffiliations},
		{"Rooms/ArchivePaging", s.testRoomArchivePaging},
		{"Rooms/ArchiveFilters", s.testRoomArchiveFilters},
		{"Rooms/Invites", s.testRoomInvites},
		{"Rooms/DeleteCascades", s.testRoomDeleteCascades},
		{"Rooms/Secret", s.testMUCSecret},
		{"Concurrent/StoreOffline", s.testConcurrentStoreOffline},
		{"Concurrent/StoreWhileDraining", s.testConcurrentDrain},
		{"Concurrent/Mixed", s.testConcurrentMixed},
	}
	tests = append(tests, s.archiveTests()...) // mam branch
	tests = append(tests, s.pushTests()...)
	tests = append(tests, s.loginTests()...)
	tests = append(tests, s.fastTests()...)
	tests = append(tests, s.userAgentTests()...)
	tests = append(tests, s.disabledTests()...)
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	open func(t *testing.T) store.Store
}

// fresh opens a new store for one subtest and closes it when the subtest ends.
func (s *suite) fresh(t *testing.T) store.Store {
	t.Helper()
	st := s.open(t)
	if st == nil {
		t.Fatal("open returned a nil store")
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return st
}

// withUsers opens a fresh store holding the given accounts (no credentials).
func (s *suite) withUsers(t *testing.T, users ...string) store.Store {
	t.Helper()
	st := s.fresh(t)
	for _, u := range users {
		if err := st.CreateUser(t.Context(), u, nil); err != nil {
			t.Fatalf("CreateUser(%q): %v", u, err)
		}
	}
	return st
}

func scram(mech string, seed byte) store.Credential {
	b := func(n int, x byte) []byte {
		out := make([]byte, n)
		for i := range out {
			out[i] = x + byte(i)
		}
		return out
	}
	size := 20
	if mech == "SCRAM-SHA-256" {
		size = 32
	}
	return store.Credential{
		Mechanism:  mech,
		Salt:       b(16, seed),
		Iterations: 4096 + int(seed),
		StoredKey:  b(size, seed+0x40),
		ServerKey:  b(size, seed+0x80),
	}
}

func credEqual(a, b store.Credential) bool {
	return a.Mechanism == b.Mechanism && a.Iterations == b.Iterations &&
		bytes.Equal(a.Salt, b.Salt) && bytes.Equal(a.StoredKey, b.StoredKey) &&
		bytes.Equal(a.ServerKey, b.ServerKey)
}

// wantErr fails unless errors.Is(err, target).
func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want one matching %v", what, err, target)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// ---- Users ----------------------------------------------------------------

func (s *suite) testCreateAndExists(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	ok, err := st.UserExists(ctx, "alice")
	must(t, "UserExists before create", err)
	if ok {
		t.Fatal("UserExists(alice) = true in an empty store")
	}
	must(t, "CreateUser", st.CreateUser(ctx, "alice", []store.Credential{scram("SCRAM-SHA-1", 1)}))
	// An account without credentials is valid (tests and external auth use it).
	must(t, "CreateUser without credentials", st.CreateUser(ctx, "bob", nil))
	for _, u := range []string{"alice", "bob"} {
		ok, err := st.UserExists(ctx, u)
		must(t, "UserExists", err)
		if !ok {
			t.Fatalf("UserExists(%q) = false after CreateUser", u)
		}
	}
	if ok, _ := st.UserExists(ctx, "Alice"); ok {
		t.Fatal("UserExists(Alice) = true: names must match exactly (callers normalise them)")
	}
}

func (s *suite) testCreateDuplicate(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	orig := scram("SCRAM-SHA-256", 1)
	must(t, "CreateUser", st.CreateUser(ctx, "alice", []store.Credential{orig}))
	err := st.CreateUser(ctx, "alice", []store.Credential{scram("SCRAM-SHA-256", 9)})
	wantErr(t, "second CreateUser(alice)", err, store.ErrExists)
	// The failed create must not have touched the existing account.
	got, err := st.Credential(ctx, "alice", "SCRAM-SHA-256")
	must(t, "Credential", err)
	if !credEqual(got, orig) {
		t.Fatalf("credential changed by a failed CreateUser: %+v", got)
	}
	users, err := st.ListUsers(ctx)
	must(t, "ListUsers", err)
	if !slices.Equal(users, []string{"alice"}) {
		t.Fatalf("ListUsers = %q, want [alice]", users)
	}
}

func (s *suite) testCredentialPerMechanism(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	c1, c256 := scram("SCRAM-SHA-1", 1), scram("SCRAM-SHA-256", 2)
	must(t, "CreateUser", st.CreateUser(ctx, "alice", []store.Credential{c1, c256}))
	must(t, "CreateUser", st.CreateUser(ctx, "bob", []store.Credential{scram("SCRAM-SHA-256", 7)}))
	for _, want := range []store.Credential{c1, c256} {
		got, err := st.Credential(ctx, "alice", want.Mechanism)
		must(t, "Credential "+want.Mechanism, err)
		if !credEqual(got, want) {
			t.Fatalf("Credential(alice, %s) = %+v, want %+v", want.Mechanism, got, want)
		}
	}
	_, err := st.Credential(ctx, "bob", "SCRAM-SHA-1")
	wantErr(t, "Credential for a mechanism the account lacks", err, store.ErrNotFound)
	_, err = st.Credential(ctx, "alice", "PLAIN")
	wantErr(t, "Credential for an unknown mechanism", err, store.ErrNotFound)
	_, err = st.Credential(ctx, "nobody", "SCRAM-SHA-1")
	wantErr(t, "Credential for an absent account", err, store.ErrNotFound)
	// Accounts do not see each other's credentials.
	got, err := st.Credential(ctx, "bob", "SCRAM-SHA-256")
	must(t, "Credential bob", err)
	if !credEqual(got, scram("SCRAM-SHA-256", 7)) {
		t.Fatalf("Credential(bob) = %+v", got)
	}
}

func (s *suite) testSetCredentials(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	must(t, "CreateUser", st.CreateUser(ctx, "alice", []store.Credential{scram("SCRAM-SHA-1", 1), scram("SCRAM-SHA-256", 2)}))
	must(t, "CreateUser", st.CreateUser(ctx, "bob", []store.Credential{scram("SCRAM-SHA-1", 5)}))

	// Replacing keeps only the new set: SCRAM-SHA-1 is gone.
	repl := scram("SCRAM-SHA-256", 3)
	must(t, "SetCredentials", st.SetCredentials(ctx, "alice", []store.Credential{repl}))
	got, err := st.Credential(ctx, "alice", "SCRAM-SHA-256")
	must(t, "Credential", err)
	if !credEqual(got, repl) {
		t.Fatalf("after SetCredentials: %+v, want %+v", got, repl)
	}
	_, err = st.Credential(ctx, "alice", "SCRAM-SHA-1")
	wantErr(t, "Credential for a mechanism removed by SetCredentials", err, store.ErrNotFound)

	// Another account is untouched.
	got, err = st.Credential(ctx, "bob", "SCRAM-SHA-1")
	must(t, "Credential bob", err)
	if !credEqual(got, scram("SCRAM-SHA-1", 5)) {
		t.Fatalf("bob's credential changed by alice's SetCredentials: %+v", got)
	}

	// An empty set removes every credential but keeps the account.
	must(t, "SetCredentials(nil)", st.SetCredentials(ctx, "alice", nil))
	_, err = st.Credential(ctx, "alice", "SCRAM-SHA-256")
	wantErr(t, "Credential after SetCredentials(nil)", err, store.ErrNotFound)
	if ok, err := st.UserExists(ctx, "alice"); err != nil || !ok {
		t.Fatalf("UserExists after SetCredentials(nil) = %v, %v", ok, err)
	}

	err = st.SetCredentials(ctx, "nobody", []store.Credential{repl})
	wantErr(t, "SetCredentials for an absent account", err, store.ErrNotFound)
	if ok, _ := st.UserExists(ctx, "nobody"); ok {
		t.Fatal("SetCredentials created an account")
	}
}

func (s *suite) testListUsersSorted(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	users, err := st.ListUsers(ctx)
	must(t, "ListUsers on an empty store", err)
	if len(users) != 0 {
		t.Fatalf("ListUsers on an empty store = %q", users)
	}
	// Names chosen so that a locale-aware collation (which ignores
	// punctuation, folds accents or sorts digits numerically) gives a
	// different order from the byte order Go's sort uses.
	names := []string{"zoë", "bob", "émile", "alice", "a-z", "az", "10", "9", "carol", "Bob", "a_b", "ab"}
	for _, n := range names {
		must(t, "CreateUser "+n, st.CreateUser(ctx, n, nil))
	}
	users, err = st.ListUsers(ctx)
	must(t, "ListUsers", err)
	want := slices.Clone(names)
	sort.Strings(want)
	if !slices.Equal(users, want) {
		t.Fatalf("ListUsers = %q\nwant (byte order) %q", users, want)
	}
}

func (s *suite) testDeleteUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	wantErr(t, "DeleteUser of an absent account", st.DeleteUser(ctx, "nobody"), store.ErrNotFound)
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))
	if ok, _ := st.UserExists(ctx, "alice"); ok {
		t.Fatal("UserExists(alice) after DeleteUser")
	}
	wantErr(t, "second DeleteUser", st.DeleteUser(ctx, "alice"), store.ErrNotFound)
	users, err := st.ListUsers(ctx)
	must(t, "ListUsers", err)
	if !slices.Equal(users, []string{"bob"}) {
		t.Fatalf("ListUsers after delete = %q", users)
	}
	// The name can be registered again.
	must(t, "CreateUser after delete", st.CreateUser(ctx, "alice", nil))
}

// populate gives user a credential, roster items, offline messages and a
// last activity.
func populate(t *testing.T, st store.Store, user string) {
	t.Helper()
	ctx := t.Context()
	must(t, "SetCredentials", st.SetCredentials(ctx, user, []store.Credential{scram("SCRAM-SHA-256", 1)}))
	for _, c := range []string{"x@example.org", "y@example.org"} {
		_, err := st.PutRosterItem(ctx, user, store.RosterItem{Contact: c, Subscription: store.SubBoth, Groups: []string{"G"}, InRoster: true})
		must(t, "PutRosterItem", err)
	}
	_, err := st.PutRosterItem(ctx, user, store.RosterItem{Contact: "z@example.org", Subscription: store.SubNone, PendingIn: true})
	must(t, "PutRosterItem", err)
	for i := range 3 {
		_, err := st.StoreOffline(ctx, user, msg(user, i, time.Now()), 0)
		must(t, "StoreOffline", err)
	}
	must(t, "SetLastActivity", st.SetLastActivity(ctx, user, time.Now(), "bye"))
}

func (s *suite) testDeleteUserCascades(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	populate(t, st, "alice")
	populate(t, st, "bob")
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))

	checkEmpty := func(when string) {
		t.Helper()
		_, err := st.Credential(ctx, "alice", "SCRAM-SHA-256")
		wantErr(t, when+": Credential", err, store.ErrNotFound)
		_, err = st.RosterItem(ctx, "alice", "x@example.org")
		wantErr(t, when+": RosterItem", err, store.ErrNotFound)
		n, err := st.CountOffline(ctx, "alice")
		must(t, when+": CountOffline", err)
		if n != 0 {
			t.Fatalf("%s: CountOffline = %d, want 0", when, n)
		}
		msgs, err := st.OfflineMessages(ctx, "alice", 0)
		must(t, when+": OfflineMessages", err)
		if len(msgs) != 0 {
			t.Fatalf("%s: %d offline messages survive", when, len(msgs))
		}
		_, _, err = st.LastActivity(ctx, "alice")
		wantErr(t, when+": LastActivity", err, store.ErrNotFound)
	}
	checkEmpty("after DeleteUser")
	// Re-creating the name must not resurrect anything of the old account.
	must(t, "CreateUser again", st.CreateUser(ctx, "alice", nil))
	checkEmpty("after re-creating the account")
	items, _, err := st.Roster(ctx, "alice")
	must(t, "Roster", err)
	if len(items) != 0 {
		t.Fatalf("re-created account has %d roster items", len(items))
	}

	// bob is untouched.
	if _, err := st.Credential(ctx, "bob", "SCRAM-SHA-256"); err != nil {
		t.Fatalf("bob's credential: %v", err)
	}
	items, _, err = st.Roster(ctx, "bob")
	must(t, "Roster bob", err)
	if len(items) != 3 {
		t.Fatalf("bob has %d roster items, want 3", len(items))
	}
	if n, err := st.CountOffline(ctx, "bob"); err != nil || n != 3 {
		t.Fatalf("CountOffline(bob) = %d, %v; want 3", n, err)
	}
	if _, _, err := st.LastActivity(ctx, "bob"); err != nil {
		t.Fatalf("LastActivity(bob): %v", err)
	}
}

// testUnknownUser pins down what the data methods do for a name with no
// account. Nothing can be stored for it (ErrNotFound, and nothing is
// created); reads find nothing, and the ones without an ErrNotFound in their
// contract return an empty result rather than an error, so a session whose
// account was just deleted does not turn every roster read into an error.
func (s *suite) testUnknownUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	_, err := st.PutRosterItem(ctx, "ghost", store.RosterItem{Contact: "a@example.org", Subscription: store.SubNone, InRoster: true})
	wantErr(t, "PutRosterItem for an absent account", err, store.ErrNotFound)
	_, err = st.DeleteRosterItem(ctx, "ghost", "a@example.org")
	wantErr(t, "DeleteRosterItem for an absent account", err, store.ErrNotFound)
	_, err = st.StoreOffline(ctx, "ghost", msg("ghost", 0, time.Now()), 0)
	wantErr(t, "StoreOffline for an absent account", err, store.ErrNotFound)
	_, err = st.StoreOffline(ctx, "ghost", msg("ghost", 0, time.Now()), 5)
	wantErr(t, "StoreOffline with a quota for an absent account", err, store.ErrNotFound)
	wantErr(t, "SetLastActivity for an absent account", st.SetLastActivity(ctx, "ghost", time.Now(), "x"), store.ErrNotFound)

	if ok, _ := st.UserExists(ctx, "ghost"); ok {
		t.Fatal("a write for an absent account created it")
	}
	items, _, err := st.Roster(ctx, "ghost")
	must(t, "Roster of an absent account", err)
	if len(items) != 0 {
		t.Fatalf("Roster of an absent account has %d items", len(items))
	}
	_, err = st.RosterItem(ctx, "ghost", "a@example.org")
	wantErr(t, "RosterItem of an absent account", err, store.ErrNotFound)
	msgs, err := st.OfflineMessages(ctx, "ghost", 0)
	must(t, "OfflineMessages of an absent account", err)
	if len(msgs) != 0 {
		t.Fatalf("OfflineMessages of an absent account = %d", len(msgs))
	}
	n, err := st.CountOffline(ctx, "ghost")
	must(t, "CountOffline of an absent account", err)
	if n != 0 {
		t.Fatalf("CountOffline of an absent account = %d", n)
	}
	must(t, "DeleteOffline of an absent account", st.DeleteOffline(ctx, "ghost", []int64{1, 2, 3}))
	_, _, err = st.LastActivity(ctx, "ghost")
	wantErr(t, "LastActivity of an absent account", err, store.ErrNotFound)
}

// ---- Rosters --------------------------------------------------------------

func normGroups(g []string) []string {
	if len(g) == 0 {
		return nil
	}
	return g
}

func itemEqual(a, b store.RosterItem) bool {
	return a.Contact == b.Contact && a.Name == b.Name && a.Subscription == b.Subscription &&
		a.PendingOut == b.PendingOut && a.PendingIn == b.PendingIn && a.Approved == b.Approved &&
		a.InRoster == b.InRoster && slices.Equal(normGroups(a.Groups), normGroups(b.Groups))
}

func byContact(items []store.RosterItem) map[string]store.RosterItem {
	m := make(map[string]store.RosterItem, len(items))
	for _, it := range items {
		m[it.Contact] = it
	}
	return m
}

// sampleItems covers every field and every subscription state.
func sampleItems() []store.RosterItem {
	return []store.RosterItem{
		{Contact: "both@example.org", Name: "Both Ways", Subscription: store.SubBoth, Groups: []string{"Friends", "Work"}, InRoster: true},
		// Group order is the user's, not alphabetical.
		{Contact: "to@example.org", Name: "Zoë «Z» O'Neil", Subscription: store.SubTo, Groups: []string{"Zeta", "alpha", "Beta", "Ωmega", "with space", "with,comma", `with "quote"`}, InRoster: true},
		{Contact: "from@example.org", Subscription: store.SubFrom, PendingOut: true, InRoster: true},
		{Contact: "none@example.net", Name: "", Subscription: store.SubNone, PendingOut: true, PendingIn: true, Approved: true, InRoster: true},
		{Contact: "preapproved@example.com", Subscription: store.SubNone, Approved: true},
		{Contact: "asking@example.com", Subscription: store.SubNone, PendingIn: true},
		{Contact: "server.example.com", Name: "a server", Subscription: store.SubTo, Groups: []string{""}, InRoster: true},
	}
}

func (s *suite) testRosterEmpty(t *testing.T) {
	st := s.withUsers(t, "alice")
	items, _, err := st.Roster(t.Context(), "alice")
	must(t, "Roster", err)
	if len(items) != 0 {
		t.Fatalf("new account has %d roster items", len(items))
	}
	_, err = st.RosterItem(t.Context(), "alice", "bob@example.org")
	wantErr(t, "RosterItem on an empty roster", err, store.ErrNotFound)
}

func (s *suite) testRosterRoundTrip(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	want := sampleItems()
	for _, it := range want {
		_, err := st.PutRosterItem(ctx, "alice", it)
		must(t, "PutRosterItem "+it.Contact, err)
	}
	for _, w := range want {
		got, err := st.RosterItem(ctx, "alice", w.Contact)
		must(t, "RosterItem "+w.Contact, err)
		if !itemEqual(got, w) {
			t.Errorf("RosterItem(%s)\n got %+v\nwant %+v", w.Contact, got, w)
		}
	}
	items, _, err := st.Roster(ctx, "alice")
	must(t, "Roster", err)
	if len(items) != len(want) {
		t.Fatalf("Roster has %d items, want %d", len(items), len(want))
	}
	m := byContact(items)
	for _, w := range want {
		if got, ok := m[w.Contact]; !ok || !itemEqual(got, w) {
			t.Errorf("Roster item %s\n got %+v\nwant %+v", w.Contact, got, w)
		}
	}
}

func (s *suite) testRosterGroupsNilEmpty(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	for _, it := range []store.RosterItem{
		{Contact: "nil@example.org", Subscription: store.SubNone, Groups: nil, InRoster: true},
		{Contact: "empty@example.org", Subscription: store.SubNone, Groups: []string{}, InRoster: true},
	} {
		_, err := st.PutRosterItem(ctx, "alice", it)
		must(t, "PutRosterItem", err)
		got, err := st.RosterItem(ctx, "alice", it.Contact)
		must(t, "RosterItem", err)
		if len(got.Groups) != 0 {
			t.Fatalf("%s: Groups = %q, want none", it.Contact, got.Groups)
		}
	}
	// Clearing the groups of an item that had some.
	_, err := st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "g@example.org", Subscription: store.SubNone, Groups: []string{"A", "B"}, InRoster: true})
	must(t, "PutRosterItem", err)
	_, err = st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "g@example.org", Subscription: store.SubNone, Groups: []string{}, InRoster: true})
	must(t, "PutRosterItem", err)
	got, err := st.RosterItem(ctx, "alice", "g@example.org")
	must(t, "RosterItem", err)
	if len(got.Groups) != 0 {
		t.Fatalf("groups not cleared: %q", got.Groups)
	}
}

func (s *suite) testRosterReplace(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	first := store.RosterItem{Contact: "bob@example.org", Name: "Bob", Subscription: store.SubNone, PendingOut: true, Groups: []string{"A", "B", "C"}, InRoster: true}
	_, err := st.PutRosterItem(ctx, "alice", first)
	must(t, "PutRosterItem", err)
	// Every field changes; groups are replaced, not merged.
	second := store.RosterItem{Contact: "bob@example.org", Name: "Robert", Subscription: store.SubBoth, PendingIn: true, Approved: true, Groups: []string{"C", "D"}, InRoster: false}
	_, err = st.PutRosterItem(ctx, "alice", second)
	must(t, "PutRosterItem", err)
	got, err := st.RosterItem(ctx, "alice", "bob@example.org")
	must(t, "RosterItem", err)
	if !itemEqual(got, second) {
		t.Fatalf("after replace\n got %+v\nwant %+v", got, second)
	}
	items, _, err := st.Roster(ctx, "alice")
	must(t, "Roster", err)
	if len(items) != 1 {
		t.Fatalf("replace left %d items, want 1", len(items))
	}
}

func (s *suite) testRosterDelete(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	for _, it := range sampleItems()[:3] {
		_, err := st.PutRosterItem(ctx, "alice", it)
		must(t, "PutRosterItem", err)
	}
	_, err := st.DeleteRosterItem(ctx, "alice", "to@example.org")
	must(t, "DeleteRosterItem", err)
	_, err = st.RosterItem(ctx, "alice", "to@example.org")
	wantErr(t, "RosterItem after delete", err, store.ErrNotFound)
	items, _, err := st.Roster(ctx, "alice")
	must(t, "Roster", err)
	m := byContact(items)
	if len(items) != 2 || m["both@example.org"].Contact == "" || m["from@example.org"].Contact == "" {
		t.Fatalf("Roster after delete = %+v", items)
	}
	// Deleting an absent item is not an error.
	_, err = st.DeleteRosterItem(ctx, "alice", "to@example.org")
	must(t, "DeleteRosterItem of an absent item", err)
	_, err = st.DeleteRosterItem(ctx, "alice", "never@example.org")
	must(t, "DeleteRosterItem of a never-present item", err)
}

// testRosterVersionNotReused: after an account is deleted and re-created,
// its roster versions continue above the old ones, so a client's cached
// version from the old account can never match.
func (s *suite) testRosterVersionNotReused(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	var old int64
	for i := range 3 {
		v, err := st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: fmt.Sprint(i), Subscription: store.SubNone, InRoster: true})
		must(t, "PutRosterItem", err)
		old = v
	}
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))
	must(t, "CreateUser", st.CreateUser(ctx, "alice", nil))
	v, err := st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "x", Subscription: store.SubNone, InRoster: true})
	must(t, "PutRosterItem", err)
	if v <= old {
		t.Fatalf("version %d of the re-created account is not above the old account's %d", v, old)
	}
}

func (s *suite) testRosterVersion(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	_, last, err := st.Roster(ctx, "alice")
	must(t, "Roster", err)
	step := func(what string, v int64, err error) {
		t.Helper()
		must(t, what, err)
		if v <= last {
			t.Fatalf("%s returned version %d, not above the previous %d", what, v, last)
		}
		_, cur, err := st.Roster(ctx, "alice")
		must(t, "Roster", err)
		if cur != v {
			t.Fatalf("after %s Roster reports version %d, the call returned %d", what, cur, v)
		}
		last = v
	}
	it := store.RosterItem{Contact: "c@example.org", Subscription: store.SubNone, InRoster: true}
	v, err := st.PutRosterItem(ctx, "alice", it)
	step("PutRosterItem (add)", v, err)
	it.Name = "C"
	v, err = st.PutRosterItem(ctx, "alice", it)
	step("PutRosterItem (rename)", v, err)
	it.Groups = []string{"G"}
	v, err = st.PutRosterItem(ctx, "alice", it)
	step("PutRosterItem (groups)", v, err)
	it.Subscription, it.PendingOut = store.SubTo, false
	v, err = st.PutRosterItem(ctx, "alice", it)
	step("PutRosterItem (subscription)", v, err)
	v, err = st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "d@example.org", Subscription: store.SubNone, PendingIn: true})
	step("PutRosterItem (hidden item)", v, err)
	v, err = st.DeleteRosterItem(ctx, "alice", "c@example.org")
	step("DeleteRosterItem", v, err)

	// Another user's changes never move alice's version backwards.
	for i := range 5 {
		_, err := st.PutRosterItem(ctx, "bob", store.RosterItem{Contact: fmt.Sprintf("b%d@example.org", i), Subscription: store.SubNone, InRoster: true})
		must(t, "PutRosterItem bob", err)
	}
	_, cur, err := st.Roster(ctx, "alice")
	must(t, "Roster", err)
	if cur < last {
		t.Fatalf("alice's version went from %d to %d after bob's changes", last, cur)
	}
	last = cur
	// And many changes in a row keep increasing.
	for i := range 50 {
		v, err := st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: fmt.Sprintf("n%d@example.org", i%7), Name: fmt.Sprint(i), Subscription: store.SubNone, InRoster: true})
		step("PutRosterItem", v, err)
	}
	// A no-op delete may or may not bump the version, but never lowers it.
	v, err = st.DeleteRosterItem(ctx, "alice", "absent@example.org")
	must(t, "DeleteRosterItem absent", err)
	if v < last {
		t.Fatalf("DeleteRosterItem of an absent item returned version %d below %d", v, last)
	}
}

func (s *suite) testRosterNotInRoster(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	hidden := store.RosterItem{Contact: "asker@example.org", Subscription: store.SubNone, PendingIn: true, InRoster: false}
	approved := store.RosterItem{Contact: "pre@example.org", Subscription: store.SubNone, Approved: true, InRoster: false}
	shown := store.RosterItem{Contact: "friend@example.org", Subscription: store.SubBoth, InRoster: true}
	for _, it := range []store.RosterItem{hidden, approved, shown} {
		_, err := st.PutRosterItem(ctx, "alice", it)
		must(t, "PutRosterItem", err)
	}
	items, _, err := st.Roster(ctx, "alice")
	must(t, "Roster", err)
	m := byContact(items)
	if len(items) != 3 {
		t.Fatalf("Roster must include items with InRoster false: got %d items, want 3", len(items))
	}
	for _, w := range []store.RosterItem{hidden, approved, shown} {
		if !itemEqual(m[w.Contact], w) {
			t.Errorf("Roster item %s = %+v, want %+v", w.Contact, m[w.Contact], w)
		}
	}
	got, err := st.RosterItem(ctx, "alice", hidden.Contact)
	must(t, "RosterItem", err)
	if got.InRoster || !got.PendingIn {
		t.Fatalf("hidden item = %+v", got)
	}
	// Promoting it into the roster.
	hidden.InRoster, hidden.PendingIn, hidden.Subscription = true, false, store.SubFrom
	_, err = st.PutRosterItem(ctx, "alice", hidden)
	must(t, "PutRosterItem", err)
	got, err = st.RosterItem(ctx, "alice", hidden.Contact)
	must(t, "RosterItem", err)
	if !itemEqual(got, hidden) {
		t.Fatalf("promoted item = %+v, want %+v", got, hidden)
	}
}

func (s *suite) testRosterPerUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	a := store.RosterItem{Contact: "carol@example.org", Name: "for alice", Subscription: store.SubTo, Groups: []string{"A"}, InRoster: true}
	b := store.RosterItem{Contact: "carol@example.org", Name: "for bob", Subscription: store.SubFrom, Groups: []string{"B"}, InRoster: true}
	_, err := st.PutRosterItem(ctx, "alice", a)
	must(t, "PutRosterItem", err)
	_, err = st.PutRosterItem(ctx, "bob", b)
	must(t, "PutRosterItem", err)
	got, err := st.RosterItem(ctx, "alice", a.Contact)
	must(t, "RosterItem", err)
	if !itemEqual(got, a) {
		t.Fatalf("alice's item = %+v", got)
	}
	_, err = st.DeleteRosterItem(ctx, "alice", a.Contact)
	must(t, "DeleteRosterItem", err)
	got, err = st.RosterItem(ctx, "bob", b.Contact)
	must(t, "RosterItem bob after alice deleted hers", err)
	if !itemEqual(got, b) {
		t.Fatalf("bob's item = %+v", got)
	}
}

// testRosterCounts: RosterCounts counts every item, hidden ones too, and
// the pending-out ones, per user; an unknown account has none.
func (s *suite) testRosterCounts(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	check := func(user string, items, pending int) {
		t.Helper()
		n, p, err := st.RosterCounts(ctx, user)
		must(t, "RosterCounts", err)
		if n != items || p != pending {
			t.Fatalf("RosterCounts(%s) = %d items, %d pending out; want %d, %d", user, n, p, items, pending)
		}
	}
	check("alice", 0, 0)
	check("ghost", 0, 0)
	for i := range 5 {
		_, err := st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: fmt.Sprintf("c%d@example.org", i), Subscription: store.SubNone, PendingOut: i%2 == 0, InRoster: true})
		must(t, "PutRosterItem", err)
	}
	_, err := st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "asker@example.org", Subscription: store.SubNone, PendingIn: true})
	must(t, "PutRosterItem", err)
	_, err = st.PutRosterItem(ctx, "bob", store.RosterItem{Contact: "x@example.org", Subscription: store.SubNone, PendingOut: true, InRoster: true})
	must(t, "PutRosterItem", err)
	check("alice", 6, 3)
	check("bob", 1, 1)
	// Answered: no longer pending. Removed: no longer counted.
	_, err = st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "c0@example.org", Subscription: store.SubTo, InRoster: true})
	must(t, "PutRosterItem", err)
	_, err = st.DeleteRosterItem(ctx, "alice", "c2@example.org")
	must(t, "DeleteRosterItem", err)
	check("alice", 5, 1)
}

// ---- Offline --------------------------------------------------------------

func msg(user string, i int, at time.Time) store.OfflineMessage {
	return store.OfflineMessage{
		StanzaID: fmt.Sprintf("sid-%s-%d", user, i),
		From:     fmt.Sprintf("sender%d@example.org/res", i%3),
		Stored:   at,
		Data:     fmt.Appendf(nil, "<message to='%s@localhost' id='m%d'><body>%d</body></message>", user, i, i),
	}
}

// msgEqual compares everything but Seq; Stored to the millisecond.
func msgEqual(got, want store.OfflineMessage) error {
	switch {
	case got.StanzaID != want.StanzaID:
		return fmt.Errorf("StanzaID %q, want %q", got.StanzaID, want.StanzaID)
	case got.From != want.From:
		return fmt.Errorf("From %q, want %q", got.From, want.From)
	case !bytes.Equal(got.Data, want.Data):
		return fmt.Errorf("Data %q, want %q", got.Data, want.Data)
	case got.Stored.Sub(want.Stored).Abs() >= time.Millisecond:
		return fmt.Errorf("Stored %v, want %v", got.Stored, want.Stored)
	}
	return nil
}

func storeN(t *testing.T, st store.Store, user string, n int, at time.Time) []int64 {
	t.Helper()
	seqs := make([]int64, n)
	for i := range seqs {
		seq, err := st.StoreOffline(t.Context(), user, msg(user, i, at), 0)
		must(t, "StoreOffline", err)
		seqs[i] = seq
	}
	return seqs
}

func seqsOf(msgs []store.OfflineMessage) []int64 {
	out := make([]int64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Seq
	}
	return out
}

func (s *suite) testOfflineSeqAndOrder(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	const n = 300
	base := time.Now().UTC()
	var want []store.OfflineMessage
	var last int64
	for i := range n {
		// Interleave another user's messages: per-user order must hold
		// regardless of what the others do.
		m := msg("alice", i, base.Add(time.Duration(i)*time.Millisecond))
		seq, err := st.StoreOffline(ctx, "alice", m, 0)
		must(t, "StoreOffline", err)
		if i > 0 && seq <= last {
			t.Fatalf("message %d got Seq %d, not above the previous %d", i, seq, last)
		}
		last = seq
		m.Seq = seq
		want = append(want, m)
		if i%3 == 0 {
			_, err := st.StoreOffline(ctx, "bob", msg("bob", i, base), 0)
			must(t, "StoreOffline bob", err)
		}
	}
	got, err := st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages", err)
	if len(got) != n {
		t.Fatalf("OfflineMessages returned %d messages, want %d", len(got), n)
	}
	for i := range got {
		if got[i].Seq != want[i].Seq {
			t.Fatalf("message %d: Seq %d, want %d (store order lost)", i, got[i].Seq, want[i].Seq)
		}
		if err := msgEqual(got[i], want[i]); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

func (s *suite) testOfflineSeqNeverReused(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	seqs := storeN(t, st, "alice", 3, time.Now())
	must(t, "DeleteOffline", st.DeleteOffline(ctx, "alice", seqs))
	// A Seq identifies a message for a client's DeleteOffline; one reused
	// after a drain could delete a message nobody has read.
	seq, err := st.StoreOffline(ctx, "alice", msg("alice", 9, time.Now()), 0)
	must(t, "StoreOffline", err)
	if seq <= slices.Max(seqs) {
		t.Fatalf("Seq %d after deleting %v: Seq must keep increasing", seq, seqs)
	}
}

func (s *suite) testOfflineFields(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	cases := []store.OfflineMessage{
		{StanzaID: "", From: "", Stored: time.Now(), Data: []byte("<message/>")},
		{StanzaID: "7f3c-ÅÄÖ-☃", From: "bob@example.org/Üñî çødé", Stored: time.Now(), Data: []byte("<message>ünïcødé ☃ 𝄞</message>")},
		{StanzaID: strings.Repeat("x", 1000), From: strings.Repeat("y", 3071) + "@example.org", Stored: time.Now(), Data: []byte("x")},
	}
	for i, m := range cases {
		seq, err := st.StoreOffline(ctx, "alice", m, 0)
		must(t, "StoreOffline", err)
		cases[i].Seq = seq
	}
	got, err := st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages", err)
	if len(got) != len(cases) {
		t.Fatalf("%d messages, want %d", len(got), len(cases))
	}
	for i := range got {
		if got[i].Seq != cases[i].Seq {
			t.Fatalf("message %d Seq %d, StoreOffline returned %d", i, got[i].Seq, cases[i].Seq)
		}
		if err := msgEqual(got[i], cases[i]); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

func (s *suite) testOfflineStoredTime(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	east := time.FixedZone("UTC+5:30", 5*3600+1800)
	times := []time.Time{
		time.Date(2026, 3, 29, 1, 59, 59, 999_000_000, time.UTC),
		time.Date(2025, 12, 31, 23, 59, 59, 123_456_789, east), // sub-ms part may be dropped
		time.Date(1999, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
		time.Date(2100, 6, 15, 12, 30, 0, 0, time.UTC),
		time.Now(),
	}
	for i, at := range times {
		m := msg("alice", i, at)
		_, err := st.StoreOffline(ctx, "alice", m, 0)
		must(t, "StoreOffline", err)
	}
	got, err := st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages", err)
	if len(got) != len(times) {
		t.Fatalf("%d messages, want %d", len(got), len(times))
	}
	for i, want := range times {
		g := got[i].Stored
		if g.Location() != time.UTC {
			t.Errorf("message %d: Stored in %v, want UTC", i, g.Location())
		}
		// A store may truncate or round below the millisecond, but a time
		// with nothing below the millisecond comes back exactly.
		if d := g.Sub(want).Abs(); d >= time.Millisecond {
			t.Errorf("message %d: Stored %v, want %v (off by %v)", i, g, want, d)
		}
		if want.Equal(want.Truncate(time.Millisecond)) && !g.Equal(want) {
			t.Errorf("message %d: Stored %v, want exactly %v", i, g, want)
		}
	}
}

func (s *suite) testOfflineDataBytes(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	all := make([]byte, 256)
	for i := range all {
		all[i] = byte(i)
	}
	big := bytes.Repeat([]byte("<body>\x00\xff\xfe</body>"), 1<<14) // ~256 KiB
	payloads := [][]byte{
		all,
		{0},
		{0, 0, 0},
		[]byte("nul\x00inside"),
		{0xff, 0xfe, 0xfd},           // not UTF-8
		{0xc3, 0x28, 0xa0, 0xa1},     // invalid UTF-8 sequences
		[]byte("\xed\xa0\x80"),       // UTF-16 surrogate encoded in UTF-8
		[]byte("trailing space  \n"), // whitespace kept
		[]byte("\\x00 '; DROP TABLE offline; --"),
		big,
	}
	for i, p := range payloads {
		m := msg("alice", i, time.Now())
		m.Data = p
		_, err := st.StoreOffline(ctx, "alice", m, 0)
		must(t, "StoreOffline", err)
	}
	got, err := st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages", err)
	if len(got) != len(payloads) {
		t.Fatalf("%d messages, want %d", len(got), len(payloads))
	}
	for i, p := range payloads {
		if !bytes.Equal(got[i].Data, p) {
			n := min(len(got[i].Data), 40)
			t.Errorf("payload %d: got %d bytes %q..., want %d bytes", i, len(got[i].Data), got[i].Data[:n], len(p))
		}
	}
	// The returned slices are the caller's: changing one changes nothing stored.
	got[0].Data[0] = 'X'
	again, err := st.OfflineMessages(ctx, "alice", 1)
	must(t, "OfflineMessages", err)
	if again[0].Data[0] != 0 {
		t.Fatal("returned Data aliases store memory")
	}
}

func (s *suite) testOfflineLimit(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	seqs := storeN(t, st, "alice", 10, time.Now())
	storeN(t, st, "bob", 4, time.Now())
	for _, tc := range []struct{ limit, want int }{{0, 10}, {1, 1}, {3, 3}, {10, 10}, {11, 10}, {1000, 10}} {
		got, err := st.OfflineMessages(ctx, "alice", tc.limit)
		must(t, "OfflineMessages", err)
		if !slices.Equal(seqsOf(got), seqs[:tc.want]) {
			t.Errorf("limit %d: Seqs %v, want the first %d: %v", tc.limit, seqsOf(got), tc.want, seqs[:tc.want])
		}
	}
	got, err := st.OfflineMessages(ctx, "nobody-here", 5)
	must(t, "OfflineMessages", err)
	if len(got) != 0 {
		t.Fatalf("OfflineMessages for a user without messages = %d", len(got))
	}
}

func (s *suite) testOfflineQuota(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	const quota = 3
	var seqs []int64
	for i := range quota {
		seq, err := st.StoreOffline(ctx, "alice", msg("alice", i, time.Now()), quota)
		must(t, fmt.Sprintf("StoreOffline %d of quota %d", i+1, quota), err)
		seqs = append(seqs, seq)
	}
	_, err := st.StoreOffline(ctx, "alice", msg("alice", 99, time.Now()), quota)
	wantErr(t, "StoreOffline over quota", err, store.ErrQuota)
	_, err = st.StoreOffline(ctx, "alice", msg("alice", 99, time.Now()), quota)
	wantErr(t, "StoreOffline over quota again", err, store.ErrQuota)
	got, err := st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages", err)
	if !slices.Equal(seqsOf(got), seqs) {
		t.Fatalf("after ErrQuota the messages are %v, want %v (nothing stored)", seqsOf(got), seqs)
	}
	// The quota is per user.
	_, err = st.StoreOffline(ctx, "bob", msg("bob", 0, time.Now()), quota)
	must(t, "StoreOffline for another user", err)
	// A larger quota admits more; freeing space admits again.
	_, err = st.StoreOffline(ctx, "alice", msg("alice", 4, time.Now()), quota+1)
	must(t, "StoreOffline with a larger quota", err)
	_, err = st.StoreOffline(ctx, "alice", msg("alice", 5, time.Now()), quota+1)
	wantErr(t, "StoreOffline at the larger quota", err, store.ErrQuota)
	must(t, "DeleteOffline", st.DeleteOffline(ctx, "alice", seqs[:1]))
	_, err = st.StoreOffline(ctx, "alice", msg("alice", 6, time.Now()), quota+1)
	must(t, "StoreOffline after freeing one", err)
	// A quota already exceeded (it was lowered) still refuses.
	_, err = st.StoreOffline(ctx, "alice", msg("alice", 7, time.Now()), 1)
	wantErr(t, "StoreOffline above a lowered quota", err, store.ErrQuota)
	if n, err := st.CountOffline(ctx, "alice"); err != nil || n != quota+1 {
		t.Fatalf("CountOffline = %d, %v; want %d", n, err, quota+1)
	}
}

func (s *suite) testOfflineQuotaUnlimited(t *testing.T) {
	st := s.withUsers(t, "alice")
	const n = 120
	for i := range n {
		_, err := st.StoreOffline(t.Context(), "alice", msg("alice", i, time.Now()), 0)
		must(t, "StoreOffline with quota 0", err)
	}
	if c, err := st.CountOffline(t.Context(), "alice"); err != nil || c != n {
		t.Fatalf("CountOffline = %d, %v; want %d", c, err, n)
	}
}

// testOfflineQuotaAtomic races writers for one user: the quota check and the
// insert must be one atomic step, or two writers both see room for one.
func (s *suite) testOfflineQuotaAtomic(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	const quota, workers, each = 10, 8, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	stored, refused := 0, 0
	errs := make(chan error, workers*each)
	for w := range workers {
		wg.Go(func() {
			for i := range each {
				_, err := st.StoreOffline(ctx, "alice", msg("alice", w*each+i, time.Now()), quota)
				mu.Lock()
				switch {
				case err == nil:
					stored++
				case errors.Is(err, store.ErrQuota):
					refused++
				default:
					errs <- err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("StoreOffline: %v", err)
	}
	if stored != quota || refused != workers*each-quota {
		t.Fatalf("%d stored, %d refused; want %d and %d", stored, refused, quota, workers*each-quota)
	}
	if n, err := st.CountOffline(ctx, "alice"); err != nil || n != quota {
		t.Fatalf("CountOffline = %d, %v; want %d", n, err, quota)
	}
}

// testApplyOffline: one batch of inserts and deletes for several users,
// applied in order, with per-insert refusals that do not fail the batch.
func (s *suite) testApplyOffline(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	old := storeN(t, st, "alice", 2, time.Now())
	ins := func(user string, i, quota int) *store.OfflineWrite {
		m := msg(user, i, time.Now())
		return &store.OfflineWrite{User: user, Msg: &m, Quota: quota}
	}
	ws := []*store.OfflineWrite{
		ins("bob", 10, 0),
		ins("alice", 11, 0),
		{User: "alice", Seqs: []int64{old[0]}},
		ins("bob", 12, 0),
		ins("nobody", 13, 0),
		ins("alice", 14, 2), // alice holds 2 again: refused by quota
		ins("alice", 15, 0),
	}
	must(t, "ApplyOffline", st.ApplyOffline(ctx, ws))
	if ws[0].Seq == 0 || ws[3].Seq <= ws[0].Seq || ws[1].Seq <= old[1] || ws[6].Seq <= ws[1].Seq {
		t.Fatalf("seqs not increasing in batch order: bob %d, %d; alice %d, %d (old %v)", ws[0].Seq, ws[3].Seq, ws[1].Seq, ws[6].Seq, old)
	}
	if !errors.Is(ws[4].Err, store.ErrNotFound) {
		t.Fatalf("insert for a missing user: err %v, want ErrNotFound", ws[4].Err)
	}
	if !errors.Is(ws[5].Err, store.ErrQuota) {
		t.Fatalf("insert beyond the quota: err %v, want ErrQuota", ws[5].Err)
	}
	got, err := st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages alice", err)
	if want := []int64{old[1], ws[1].Seq, ws[6].Seq}; !slices.Equal(seqsOf(got), want) {
		t.Fatalf("alice after the batch: %v, want %v", seqsOf(got), want)
	}
	got, err = st.OfflineMessages(ctx, "bob", 0)
	must(t, "OfflineMessages bob", err)
	if want := []int64{ws[0].Seq, ws[3].Seq}; !slices.Equal(seqsOf(got), want) {
		t.Fatalf("bob after the batch: %v, want %v", seqsOf(got), want)
	}
	if n, _ := st.CountOffline(ctx, "alice"); n != 3 {
		t.Fatalf("CountOffline alice = %d, want 3", n)
	}
	// A delete in a later batch of a row inserted by an earlier one.
	must(t, "ApplyOffline delete", st.ApplyOffline(ctx, []*store.OfflineWrite{{User: "bob", Seqs: []int64{ws[0].Seq, ws[3].Seq}}}))
	if n, _ := st.CountOffline(ctx, "bob"); n != 0 {
		t.Fatalf("CountOffline bob after delete = %d, want 0", n)
	}
	must(t, "ApplyOffline empty", st.ApplyOffline(ctx, nil))
}

func (s *suite) testDeleteOffline(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	a := storeN(t, st, "alice", 6, time.Now())
	b := storeN(t, st, "bob", 3, time.Now())

	must(t, "DeleteOffline", st.DeleteOffline(ctx, "alice", []int64{a[1], a[4]}))
	got, err := st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages", err)
	want := []int64{a[0], a[2], a[3], a[5]}
	if !slices.Equal(seqsOf(got), want) {
		t.Fatalf("after deleting %d and %d: %v, want %v", a[1], a[4], seqsOf(got), want)
	}

	// bob's Seqs given for alice delete nothing of bob's.
	must(t, "DeleteOffline with another user's seqs", st.DeleteOffline(ctx, "alice", b))
	got, err = st.OfflineMessages(ctx, "bob", 0)
	must(t, "OfflineMessages bob", err)
	if !slices.Equal(seqsOf(got), b) {
		t.Fatalf("alice's DeleteOffline removed bob's messages: %v, want %v", seqsOf(got), b)
	}

	// Unknown, repeated and already-deleted seqs are ignored; an empty
	// list is a no-op.
	must(t, "DeleteOffline nil", st.DeleteOffline(ctx, "alice", nil))
	must(t, "DeleteOffline empty", st.DeleteOffline(ctx, "alice", []int64{}))
	must(t, "DeleteOffline unknown", st.DeleteOffline(ctx, "alice", []int64{-1, 0, 1 << 62, a[1], a[0], a[0]}))
	got, err = st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages", err)
	want = []int64{a[2], a[3], a[5]}
	if !slices.Equal(seqsOf(got), want) {
		t.Fatalf("after the second delete: %v, want %v", seqsOf(got), want)
	}

	// A long list in one call.
	many := storeN(t, st, "alice", 500, time.Now())
	must(t, "DeleteOffline 500", st.DeleteOffline(ctx, "alice", many))
	got, err = st.OfflineMessages(ctx, "alice", 0)
	must(t, "OfflineMessages", err)
	if !slices.Equal(seqsOf(got), want) {
		t.Fatalf("after deleting 500: %v, want %v", seqsOf(got), want)
	}
}

func (s *suite) testCountOffline(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	if n, err := st.CountOffline(ctx, "alice"); err != nil || n != 0 {
		t.Fatalf("CountOffline empty = %d, %v", n, err)
	}
	seqs := storeN(t, st, "alice", 7, time.Now())
	storeN(t, st, "bob", 2, time.Now())
	if n, err := st.CountOffline(ctx, "alice"); err != nil || n != 7 {
		t.Fatalf("CountOffline = %d, %v; want 7", n, err)
	}
	must(t, "DeleteOffline", st.DeleteOffline(ctx, "alice", seqs[:3]))
	if n, err := st.CountOffline(ctx, "alice"); err != nil || n != 4 {
		t.Fatalf("CountOffline after delete = %d, %v; want 4", n, err)
	}
	if n, err := st.CountOffline(ctx, "bob"); err != nil || n != 2 {
		t.Fatalf("CountOffline(bob) = %d, %v; want 2", n, err)
	}
}

func (s *suite) testExpireOffline(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	now := time.Now().UTC().Truncate(time.Millisecond)
	ages := []time.Duration{72 * time.Hour, 3 * time.Hour, 2 * time.Hour, time.Hour, time.Minute, 0}
	keep := map[string][]int64{}
	for _, u := range []string{"alice", "bob"} {
		for i, age := range ages {
			seq, err := st.StoreOffline(ctx, u, msg(u, i, now.Add(-age)), 0)
			must(t, "StoreOffline", err)
			if age < 90*time.Minute {
				keep[u] = append(keep[u], seq)
			}
		}
	}
	n, err := st.ExpireOffline(ctx, now.Add(-90*time.Minute))
	must(t, "ExpireOffline", err)
	if n != 6 {
		t.Fatalf("ExpireOffline removed %d, want 6", n)
	}
	for _, u := range []string{"alice", "bob"} {
		got, err := st.OfflineMessages(ctx, u, 0)
		must(t, "OfflineMessages", err)
		if !slices.Equal(seqsOf(got), keep[u]) {
			t.Fatalf("%s after expiry: %v, want %v", u, seqsOf(got), keep[u])
		}
	}
	n, err = st.ExpireOffline(ctx, now.Add(-90*time.Minute))
	must(t, "ExpireOffline again", err)
	if n != 0 {
		t.Fatalf("second ExpireOffline removed %d, want 0", n)
	}
	// "Before t" is strict: a message stored exactly at t stays. A time in
	// another zone means the same instant.
	n, err = st.ExpireOffline(ctx, now.In(time.FixedZone("UTC-7", -7*3600)))
	must(t, "ExpireOffline now", err)
	if n != 4 {
		t.Fatalf("ExpireOffline(now) removed %d, want 4 (the two stored at now stay)", n)
	}
	for _, u := range []string{"alice", "bob"} {
		if c, err := st.CountOffline(ctx, u); err != nil || c != 1 {
			t.Fatalf("CountOffline(%s) = %d, %v; want 1", u, c, err)
		}
	}
	n, err = st.ExpireOffline(ctx, now.Add(time.Second))
	must(t, "ExpireOffline future", err)
	if n != 2 {
		t.Fatalf("ExpireOffline(future) removed %d, want 2", n)
	}
}

// ---- LastActivity ---------------------------------------------------------

func (s *suite) testLastActivity(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	_, _, err := st.LastActivity(ctx, "alice")
	wantErr(t, "LastActivity before any logout", err, store.ErrNotFound)

	t1 := time.Date(2026, 1, 2, 3, 4, 5, 678_000_000, time.FixedZone("CET", 3600))
	must(t, "SetLastActivity", st.SetLastActivity(ctx, "alice", t1, "Gone fishing 🎣"))
	got, status, err := st.LastActivity(ctx, "alice")
	must(t, "LastActivity", err)
	if !got.Equal(t1) || status != "Gone fishing 🎣" {
		t.Fatalf("LastActivity = %v %q, want %v %q", got, status, t1, "Gone fishing 🎣")
	}
	if got.Location() != time.UTC {
		t.Fatalf("LastActivity time in %v, want UTC", got.Location())
	}
	_, _, err = st.LastActivity(ctx, "bob")
	wantErr(t, "LastActivity of another user", err, store.ErrNotFound)

	// Overwrite, including with an empty status and an earlier time: the
	// store records what it is told.
	t2 := time.Now()
	must(t, "SetLastActivity overwrite", st.SetLastActivity(ctx, "alice", t2, ""))
	got, status, err = st.LastActivity(ctx, "alice")
	must(t, "LastActivity", err)
	if got.Sub(t2).Abs() >= time.Millisecond || status != "" {
		t.Fatalf("after overwrite: %v %q, want %v \"\"", got, status, t2)
	}
	must(t, "SetLastActivity earlier", st.SetLastActivity(ctx, "alice", t1, "back"))
	got, status, err = st.LastActivity(ctx, "alice")
	must(t, "LastActivity", err)
	if !got.Equal(t1) || status != "back" {
		t.Fatalf("after second overwrite: %v %q", got, status)
	}
}

// ---- Concurrency ----------------------------------------------------------

// testConcurrentStoreOffline stores for 8 users from 8 goroutines at once and
// checks nothing is lost, duplicated or reordered.
func (s *suite) testConcurrentStoreOffline(t *testing.T) {
	ctx := t.Context()
	const workers, each = 8, 40
	users := make([]string, workers)
	for i := range users {
		users[i] = fmt.Sprintf("user%d", i)
	}
	st := s.withUsers(t, users...)
	seqs := make([][]int64, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w, u := range users {
		wg.Go(func() {
			<-start
			for i := range each {
				seq, err := st.StoreOffline(ctx, u, msg(u, i, time.Now()), 0)
				if err != nil {
					errs[w] = fmt.Errorf("%s message %d: %w", u, i, err)
					return
				}
				seqs[w] = append(seqs[w], seq)
			}
		})
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for w, u := range users {
		got, err := st.OfflineMessages(ctx, u, 0)
		must(t, "OfflineMessages", err)
		if len(got) != each {
			t.Fatalf("%s holds %d messages, want %d", u, len(got), each)
		}
		if !slices.Equal(seqsOf(got), seqs[w]) {
			t.Fatalf("%s: stored Seqs %v, StoreOffline returned %v", u, seqsOf(got), seqs[w])
		}
		for i, m := range got {
			if err := msgEqual(m, msg(u, i, m.Stored)); err != nil {
				t.Fatalf("%s message %d: %v", u, i, err)
			}
		}
	}
}

// testConcurrentDrain delivers while messages keep arriving, as a client
// coming online does: every message must be seen exactly once, in order.
func (s *suite) testConcurrentDrain(t *testing.T) {
	ctx := t.Context()
	const producers, each = 4, 50
	st := s.withUsers(t, "alice")
	var wg sync.WaitGroup
	errs := make(chan error, producers+1)
	for p := range producers {
		wg.Go(func() {
			for i := range each {
				if _, err := st.StoreOffline(ctx, "alice", msg("alice", p*each+i, time.Now()), 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	seen := map[string]bool{}
	var last int64
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < producers*each {
		if time.Now().After(deadline) {
			t.Fatalf("drained %d of %d messages before the deadline", len(seen), producers*each)
		}
		select {
		case err := <-errs:
			t.Fatalf("StoreOffline: %v", err)
		default:
		}
		batch, err := st.OfflineMessages(ctx, "alice", 7)
		must(t, "OfflineMessages", err)
		for _, m := range batch {
			if m.Seq <= last {
				t.Fatalf("Seq %d delivered after %d", m.Seq, last)
			}
			last = m.Seq
			if seen[m.StanzaID] {
				t.Fatalf("message %s delivered twice", m.StanzaID)
			}
			seen[m.StanzaID] = true
		}
		must(t, "DeleteOffline", st.DeleteOffline(ctx, "alice", seqsOf(batch)))
		if len(batch) == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	if n, err := st.CountOffline(ctx, "alice"); err != nil || n != 0 {
		t.Fatalf("CountOffline after draining = %d, %v", n, err)
	}
}

// testConcurrentMixed runs every kind of call from 8 goroutines, each on its
// own account, to shake out pool and locking problems (run it with -race).
func (s *suite) testConcurrentMixed(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	const workers, rounds = 8, 15
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Go(func() {
			errs[w] = func() error {
				u := fmt.Sprintf("mixed%d", w)
				if err := st.CreateUser(ctx, u, []store.Credential{scram("SCRAM-SHA-256", byte(w))}); err != nil {
					return err
				}
				var ver int64
				for r := range rounds {
					v, err := st.PutRosterItem(ctx, u, store.RosterItem{Contact: fmt.Sprintf("c%d@example.org", r%4), Subscription: store.SubBoth, Groups: []string{"G"}, InRoster: true})
					if err != nil {
						return fmt.Errorf("PutRosterItem: %w", err)
					}
					if v <= ver {
						return fmt.Errorf("version %d after %d", v, ver)
					}
					ver = v
					if _, err := st.StoreOffline(ctx, u, msg(u, r, time.Now()), 100); err != nil {
						return fmt.Errorf("StoreOffline: %w", err)
					}
					if _, err := st.Credential(ctx, u, "SCRAM-SHA-256"); err != nil {
						return fmt.Errorf("Credential: %w", err)
					}
					if _, _, err := st.Roster(ctx, u); err != nil {
						return fmt.Errorf("Roster: %w", err)
					}
					if err := st.SetLastActivity(ctx, u, time.Now(), "r"); err != nil {
						return fmt.Errorf("SetLastActivity: %w", err)
					}
					if _, err := st.ListUsers(ctx); err != nil {
						return fmt.Errorf("ListUsers: %w", err)
					}
				}
				got, err := st.OfflineMessages(ctx, u, 0)
				if err != nil {
					return err
				}
				if len(got) != rounds {
					return fmt.Errorf("%s holds %d messages, want %d", u, len(got), rounds)
				}
				if err := st.DeleteOffline(ctx, u, seqsOf(got)); err != nil {
					return err
				}
				if w%2 == 0 {
					return st.DeleteUser(ctx, u)
				}
				return nil
			}()
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	users, err := st.ListUsers(ctx)
	must(t, "ListUsers", err)
	if want := []string{"mixed1", "mixed3", "mixed5", "mixed7"}; !slices.Equal(users, want) {
		t.Fatalf("ListUsers = %q, want %q", users, want)
	}
}
