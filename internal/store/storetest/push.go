package storetest

import (
	"bytes"
	"maps"
	"testing"
	"time"

	"bluetick/internal/store"
)

// pushTests are the store.Push contract, run by Run.
func (s *suite) pushTests() []struct {
	name string
	fn   func(t *testing.T)
} {
	return []struct {
		name string
		fn   func(t *testing.T)
	}{
		{"Push/RegistrationRoundTrip", s.testPushRegistration},
		{"Push/RegistrationDelete", s.testPushRegistrationDelete},
		{"Push/DeviceRoundTrip", s.testPushDevice},
		{"Push/UnknownUser", s.testPushUnknownUser},
		{"Push/DeleteUserCascades", s.testPushCascade},
	}
}

func (s *suite) testPushRegistration(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)
	a := store.PushRegistration{User: "alice", Resource: "phone", Service: "push.example.org", Node: "n1",
		Options: map[string]string{"secret": "s3cr3t", "endpoint": "x"}, Created: t0}
	b := store.PushRegistration{User: "alice", Resource: "tablet", Service: "push.example.org", Node: "n2", Created: t0.Add(time.Second)}
	must(t, "Put a", st.PutPushRegistration(ctx, a))
	must(t, "Put b", st.PutPushRegistration(ctx, b))
	got, err := st.PushRegistrations(ctx, "alice")
	must(t, "PushRegistrations", err)
	if len(got) != 2 {
		t.Fatalf("got %d registrations, want 2: %+v", len(got), got)
	}
	check := func(got, want store.PushRegistration) {
		t.Helper()
		if got.User != want.User || got.Resource != want.Resource || got.Service != want.Service || got.Node != want.Node ||
			!got.Created.Equal(want.Created) || len(got.Options) != len(want.Options) || !maps.Equal(got.Options, want.Options) && len(want.Options) > 0 {
			t.Fatalf("registration = %+v, want %+v", got, want)
		}
	}
	check(got[0], a)
	check(got[1], b)
	// Replacing by (user, service, node): one row, new fields.
	a.Resource = "phone2"
	a.Options = map[string]string{"secret": "new"}
	must(t, "Put a again", st.PutPushRegistration(ctx, a))
	got, err = st.PushRegistrations(ctx, "alice")
	must(t, "PushRegistrations", err)
	if len(got) != 2 {
		t.Fatalf("after replace: %d registrations, want 2", len(got))
	}
	for _, r := range got {
		if r.Node == "n1" {
			check(r, a)
		}
	}
	if got, err := st.PushRegistrations(ctx, "bob"); err != nil || len(got) != 0 {
		t.Fatalf("bob's registrations = %v, %v; want none", got, err)
	}
}

func (s *suite) testPushRegistrationDelete(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	for _, r := range []store.PushRegistration{
		{User: "alice", Service: "p1", Node: "a", Created: time.Now()},
		{User: "alice", Service: "p1", Node: "b", Created: time.Now()},
		{User: "alice", Service: "p2", Node: "a", Created: time.Now()},
	} {
		must(t, "Put", st.PutPushRegistration(ctx, r))
	}
	n, err := st.DeletePushRegistrations(ctx, "alice", "p1", "a")
	must(t, "Delete p1/a", err)
	if n != 1 {
		t.Fatalf("deleted %d, want 1", n)
	}
	n, err = st.DeletePushRegistrations(ctx, "alice", "p1", "a")
	must(t, "Delete p1/a again", err)
	if n != 0 {
		t.Fatalf("deleted %d again, want 0", n)
	}
	must(t, "Put p1/c", st.PutPushRegistration(ctx, store.PushRegistration{User: "alice", Service: "p1", Node: "c", Created: time.Now()}))
	n, err = st.DeletePushRegistrations(ctx, "alice", "p1", "")
	must(t, "Delete p1/*", err)
	if n != 2 {
		t.Fatalf("deleted %d for the whole service, want 2", n)
	}
	got, err := st.PushRegistrations(ctx, "alice")
	must(t, "PushRegistrations", err)
	if len(got) != 1 || got[0].Service != "p2" {
		t.Fatalf("left %+v, want only p2/a", got)
	}
}

func (s *suite) testPushDevice(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	t0 := time.Date(2026, 5, 6, 7, 8, 9, 0, time.UTC)
	d := store.PushDevice{Node: "node-1", Owner: "alice", DeviceID: "dev", Provider: "webpush", Token: "https://push.example/ep",
		P256DH: []byte{4, 1, 2, 0, 3}, Auth: []byte{0, 9, 8}, SecretHash: bytes.Repeat([]byte{0xab}, 32), Created: t0}
	must(t, "PutPushDevice", st.PutPushDevice(ctx, d))
	got, err := st.PushDevice(ctx, "node-1")
	must(t, "PushDevice", err)
	eq := func(got, want store.PushDevice) bool {
		return got.Node == want.Node && got.Owner == want.Owner && got.DeviceID == want.DeviceID && got.Provider == want.Provider &&
			got.Token == want.Token && bytes.Equal(got.P256DH, want.P256DH) && bytes.Equal(got.Auth, want.Auth) &&
			bytes.Equal(got.SecretHash, want.SecretHash) && got.Created.Equal(want.Created)
	}
	if !eq(got, d) {
		t.Fatalf("PushDevice = %+v, want %+v", got, d)
	}
	e := store.PushDevice{Node: "node-2", Owner: "alice", Provider: "fcm", Token: "tok", SecretHash: []byte{1}, Created: t0.Add(time.Minute)}
	must(t, "PutPushDevice 2", st.PutPushDevice(ctx, e))
	d.Token = "https://push.example/ep2"
	must(t, "replace", st.PutPushDevice(ctx, d))
	list, err := st.PushDevices(ctx, "alice")
	must(t, "PushDevices", err)
	if len(list) != 2 || !eq(list[0], d) || !eq(list[1], e) {
		t.Fatalf("PushDevices = %+v, want [%+v %+v]", list, d, e)
	}
	ok, err := st.DeletePushDevice(ctx, "node-1")
	must(t, "DeletePushDevice", err)
	if !ok {
		t.Fatal("DeletePushDevice reported no device")
	}
	ok, err = st.DeletePushDevice(ctx, "node-1")
	must(t, "DeletePushDevice again", err)
	if ok {
		t.Fatal("DeletePushDevice of a deleted device reported one")
	}
	_, err = st.PushDevice(ctx, "node-1")
	wantErr(t, "PushDevice after delete", err, store.ErrNotFound)
}

func (s *suite) testPushUnknownUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	err := st.PutPushRegistration(ctx, store.PushRegistration{User: "ghost", Service: "p", Node: "n", Created: time.Now()})
	wantErr(t, "PutPushRegistration(ghost)", err, store.ErrNotFound)
	err = st.PutPushDevice(ctx, store.PushDevice{Node: "n", Owner: "ghost", Provider: "fcm", Created: time.Now()})
	wantErr(t, "PutPushDevice(ghost)", err, store.ErrNotFound)
	if got, err := st.PushRegistrations(ctx, "ghost"); err != nil || len(got) != 0 {
		t.Fatalf("PushRegistrations(ghost) = %v, %v", got, err)
	}
	if got, err := st.PushDevices(ctx, "ghost"); err != nil || len(got) != 0 {
		t.Fatalf("PushDevices(ghost) = %v, %v", got, err)
	}
	_, err = st.PushDevice(ctx, "n")
	wantErr(t, "PushDevice(n)", err, store.ErrNotFound)
}

func (s *suite) testPushCascade(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	for _, u := range []string{"alice", "bob"} {
		must(t, "Put reg", st.PutPushRegistration(ctx, store.PushRegistration{User: u, Service: "p", Node: u, Created: time.Now()}))
		must(t, "Put dev", st.PutPushDevice(ctx, store.PushDevice{Node: "dev-" + u, Owner: u, Provider: "fcm", Token: "t", Created: time.Now()}))
	}
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))
	must(t, "CreateUser again", st.CreateUser(ctx, "alice", nil))
	if got, err := st.PushRegistrations(ctx, "alice"); err != nil || len(got) != 0 {
		t.Fatalf("registrations survive DeleteUser: %v, %v", got, err)
	}
	_, err := st.PushDevice(ctx, "dev-alice")
	wantErr(t, "device after DeleteUser", err, store.ErrNotFound)
	if got, err := st.PushRegistrations(ctx, "bob"); err != nil || len(got) != 1 {
		t.Fatalf("bob's registrations = %v, %v", got, err)
	}
	if _, err := st.PushDevice(ctx, "dev-bob"); err != nil {
		t.Fatalf("bob's device: %v", err)
	}
}
