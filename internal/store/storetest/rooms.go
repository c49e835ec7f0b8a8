package storetest

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"bluetick/internal/store"
)

const roomA = "friends@groups.example.com"

func (s *suite) withRoom(t *testing.T) store.Store {
	t.Helper()
	st := s.fresh(t)
	must(t, "CreateRoom", st.CreateRoom(t.Context(), store.Room{JID: roomA, Config: []byte(`{"name":"Friends"}`), Created: time.Now()}))
	return st
}

func (s *suite) testRoomCRUD(t *testing.T) {
	st := s.fresh(t)
	ctx := t.Context()
	created := time.Date(2026, 1, 2, 3, 4, 5, 123456000, time.UTC)
	r := store.Room{JID: roomA, Config: []byte(`{"a":1}`), Subject: "hello", SubjectFrom: "alice", Created: created}
	must(t, "CreateRoom", st.CreateRoom(ctx, r))
	wantErr(t, "CreateRoom twice", st.CreateRoom(ctx, r), store.ErrExists)
	got, err := st.Room(ctx, roomA)
	must(t, "Room", err)
	if got.JID != r.JID || !bytes.Equal(got.Config, r.Config) || got.Subject != "hello" || got.SubjectFrom != "alice" || !got.Created.Equal(created) {
		t.Fatalf("Room = %+v, want %+v", got, r)
	}
	_, err = st.Room(ctx, "nope@groups.example.com")
	wantErr(t, "Room(unknown)", err, store.ErrNotFound)
	r.Config, r.Subject, r.SubjectFrom = []byte(`{"a":2}`), "new", "bob"
	must(t, "UpdateRoom", st.UpdateRoom(ctx, r))
	got, _ = st.Room(ctx, roomA)
	if string(got.Config) != `{"a":2}` || got.Subject != "new" || got.SubjectFrom != "bob" {
		t.Fatalf("after UpdateRoom: %+v", got)
	}
	wantErr(t, "UpdateRoom(unknown)", st.UpdateRoom(ctx, store.Room{JID: "x@groups.example.com"}), store.ErrNotFound)
	must(t, "CreateRoom b", st.CreateRoom(ctx, store.Room{JID: "a@groups.example.com", Created: created}))
	list, err := st.ListRooms(ctx)
	must(t, "ListRooms", err)
	if len(list) != 2 || list[0].JID != "a@groups.example.com" || list[1].JID != roomA {
		t.Fatalf("ListRooms = %+v", list)
	}
	must(t, "DeleteRoom", st.DeleteRoom(ctx, roomA))
	wantErr(t, "DeleteRoom again", st.DeleteRoom(ctx, roomA), store.ErrNotFound)
	_, err = st.Room(ctx, roomA)
	wantErr(t, "Room after delete", err, store.ErrNotFound)
}

func (s *suite) testRoomAffiliations(t *testing.T) {
	st := s.withRoom(t)
	ctx := t.Context()
	must(t, "owner", st.SetAffiliation(ctx, roomA, store.Affiliation{JID: "alice@example.com", Affiliation: "owner"}))
	must(t, "member", st.SetAffiliation(ctx, roomA, store.Affiliation{JID: "bob@example.com", Affiliation: "member", Nick: "Bob"}))
	must(t, "outcast", st.SetAffiliation(ctx, roomA, store.Affiliation{JID: "eve@example.com", Affiliation: "outcast", Reason: "spam"}))
	must(t, "promote", st.SetAffiliation(ctx, roomA, store.Affiliation{JID: "bob@example.com", Affiliation: "admin", Nick: "Bob"}))
	wantErr(t, "unknown room", st.SetAffiliation(ctx, "x@groups.example.com", store.Affiliation{JID: "a@example.com", Affiliation: "member"}), store.ErrNotFound)
	wantErr(t, "unknown room removal", st.SetAffiliation(ctx, "x@groups.example.com", store.Affiliation{JID: "a@example.com", Affiliation: "none"}), store.ErrNotFound)
	got, err := st.Affiliations(ctx, roomA)
	must(t, "Affiliations", err)
	want := []store.Affiliation{
		{JID: "alice@example.com", Affiliation: "owner"},
		{JID: "bob@example.com", Affiliation: "admin", Nick: "Bob"},
		{JID: "eve@example.com", Affiliation: "outcast", Reason: "spam"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Affiliations = %+v, want %+v", got, want)
	}
	must(t, "CreateRoom b", st.CreateRoom(ctx, store.Room{JID: "a@groups.example.com", Created: time.Now()}))
	must(t, "member of b", st.SetAffiliation(ctx, "a@groups.example.com", store.Affiliation{JID: "bob@example.com", Affiliation: "member"}))
	for user, want := range map[string]string{"bob@example.com": "[a@groups.example.com " + roomA + "]", "alice@example.com": "[" + roomA + "]", "eve@example.com": "[]"} {
		got, err := st.RoomsOf(ctx, user)
		must(t, "RoomsOf", err)
		if fmt.Sprint(got) != want {
			t.Errorf("RoomsOf(%s) = %v, want %s (outcasts excluded)", user, got, want)
		}
	}
	must(t, "remove", st.SetAffiliation(ctx, roomA, store.Affiliation{JID: "eve@example.com", Affiliation: "none"}))
	must(t, "remove absent", st.SetAffiliation(ctx, roomA, store.Affiliation{JID: "zed@example.com", Affiliation: "none"}))
	got, _ = st.Affiliations(ctx, roomA)
	if len(got) != 2 {
		t.Fatalf("after removal: %+v", got)
	}
}

func archiveN(t *testing.T, st store.Store, n int, at time.Time) {
	t.Helper()
	for i := 0; i < n; i++ {
		sender := "alice@example.com"
		if i%2 == 1 {
			sender = "bob@example.com"
		}
		_, err := st.ArchiveRoomMessage(t.Context(), roomA, store.RoomMessage{
			StanzaID: fmt.Sprintf("id%02d", i), Sender: sender, Nick: sender[:3],
			Stored: at.Add(time.Duration(i) * time.Minute), Data: []byte(fmt.Sprintf("<message n='%d'/>", i)),
		})
		must(t, "ArchiveRoomMessage", err)
	}
}

func roomIDs(ms []store.RoomMessage) string {
	var b bytes.Buffer
	for _, m := range ms {
		b.WriteString(m.StanzaID[2:])
		b.WriteByte(' ')
	}
	return b.String()
}

func (s *suite) testRoomArchivePaging(t *testing.T) {
	st := s.withRoom(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	archiveN(t, st, 10, at)
	_, err := st.ArchiveRoomMessage(ctx, "x@groups.example.com", store.RoomMessage{StanzaID: "z", Stored: at})
	wantErr(t, "archive in unknown room", err, store.ErrNotFound)
	_, err = st.ArchiveRoomMessage(ctx, roomA, store.RoomMessage{StanzaID: "id03", Stored: at})
	wantErr(t, "duplicate stanza id", err, store.ErrExists)

	for _, tc := range []struct {
		q    store.RoomQuery
		want string
		more bool
	}{
		{store.RoomQuery{}, "00 01 02 03 04 05 06 07 08 09 ", false},
		{store.RoomQuery{Max: 3}, "00 01 02 ", true},
		{store.RoomQuery{Max: 3, After: "id02"}, "03 04 05 ", true},
		{store.RoomQuery{Max: 3, After: "id06"}, "07 08 09 ", false},
		{store.RoomQuery{Max: 3, Last: true}, "07 08 09 ", true},
		{store.RoomQuery{Max: 3, Before: "id07"}, "04 05 06 ", true},
		{store.RoomQuery{Max: 3, Before: "id03"}, "00 01 02 ", false},
		{store.RoomQuery{Max: 10}, "00 01 02 03 04 05 06 07 08 09 ", false},
		{store.RoomQuery{Max: 20, Last: true}, "00 01 02 03 04 05 06 07 08 09 ", false},
	} {
		got, more, err := st.RoomMessages(ctx, roomA, tc.q)
		must(t, "RoomMessages", err)
		if roomIDs(got) != tc.want || more != tc.more {
			t.Errorf("RoomMessages(%+v) = %q more=%v, want %q more=%v", tc.q, roomIDs(got), more, tc.want, tc.more)
		}
	}
	_, _, err = st.RoomMessages(ctx, roomA, store.RoomQuery{After: "nope"})
	wantErr(t, "unknown after id", err, store.ErrNotFound)
	got, _, _ := st.RoomMessages(ctx, roomA, store.RoomQuery{Max: 1, After: "id04"})
	if len(got) != 1 || got[0].Seq == 0 || got[0].Sender != "bob@example.com" || got[0].Nick != "bob" ||
		!got[0].Stored.Equal(at.Add(5*time.Minute)) || string(got[0].Data) != "<message n='5'/>" {
		t.Fatalf("fields of id05: %+v", got)
	}
	other, _, err := st.RoomMessages(ctx, "x@groups.example.com", store.RoomQuery{})
	if err != nil || len(other) != 0 {
		t.Fatalf("unknown room archive: %v, %v", other, err)
	}
}

func (s *suite) testRoomArchiveFilters(t *testing.T) {
	st := s.withRoom(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	archiveN(t, st, 10, at)
	for _, tc := range []struct {
		q    store.RoomQuery
		want string
	}{
		{store.RoomQuery{With: "bob@example.com"}, "01 03 05 07 09 "},
		{store.RoomQuery{Start: at.Add(7 * time.Minute)}, "07 08 09 "},
		{store.RoomQuery{End: at.Add(2 * time.Minute)}, "00 01 02 "},
		{store.RoomQuery{Start: at.Add(2 * time.Minute), End: at.Add(5 * time.Minute), With: "alice@example.com"}, "02 04 "},
		{store.RoomQuery{With: "bob@example.com", Max: 2, Last: true}, "07 09 "},
	} {
		got, _, err := st.RoomMessages(ctx, roomA, tc.q)
		must(t, "RoomMessages", err)
		if roomIDs(got) != tc.want {
			t.Errorf("RoomMessages(%+v) = %q, want %q", tc.q, roomIDs(got), tc.want)
		}
	}
	n, err := st.ExpireRoomMessages(ctx, at.Add(4*time.Minute))
	must(t, "ExpireRoomMessages", err)
	if n != 4 {
		t.Fatalf("expired %d, want 4", n)
	}
	got, _, _ := st.RoomMessages(ctx, roomA, store.RoomQuery{})
	if roomIDs(got) != "04 05 06 07 08 09 " {
		t.Fatalf("after expiry: %q", roomIDs(got))
	}
}

func (s *suite) testRoomInvites(t *testing.T) {
	st := s.withRoom(t)
	ctx := t.Context()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	inv := store.RoomInvite{Token: "tok1", Room: roomA, Creator: "alice@example.com", Created: at}
	must(t, "PutRoomInvite", st.PutRoomInvite(ctx, inv))
	must(t, "PutRoomInvite 2", st.PutRoomInvite(ctx, store.RoomInvite{Token: "tok2", Room: roomA, Creator: "bob@example.com", Created: at.Add(time.Second)}))
	wantErr(t, "duplicate token", st.PutRoomInvite(ctx, inv), store.ErrExists)
	wantErr(t, "unknown room", st.PutRoomInvite(ctx, store.RoomInvite{Token: "t3", Room: "x@groups.example.com", Created: at}), store.ErrNotFound)
	got, err := st.RoomInvite(ctx, "tok1")
	must(t, "RoomInvite", err)
	if got != inv {
		t.Fatalf("RoomInvite = %+v, want %+v", got, inv)
	}
	_, err = st.RoomInvite(ctx, "nope")
	wantErr(t, "unknown token", err, store.ErrNotFound)
	list, err := st.RoomInvites(ctx, roomA)
	must(t, "RoomInvites", err)
	if len(list) != 2 || list[0].Token != "tok1" || list[1].Token != "tok2" {
		t.Fatalf("RoomInvites = %+v", list)
	}
	must(t, "DeleteRoomInvite", st.DeleteRoomInvite(ctx, roomA, "tok1"))
	wantErr(t, "delete again", st.DeleteRoomInvite(ctx, roomA, "tok1"), store.ErrNotFound)
	wantErr(t, "delete in other room", st.DeleteRoomInvite(ctx, "x@groups.example.com", "tok2"), store.ErrNotFound)
	_, err = st.RoomInvite(ctx, "tok1")
	wantErr(t, "revoked token", err, store.ErrNotFound)
}

func (s *suite) testRoomDeleteCascades(t *testing.T) {
	st := s.withRoom(t)
	ctx := t.Context()
	archiveN(t, st, 3, time.Now())
	must(t, "aff", st.SetAffiliation(ctx, roomA, store.Affiliation{JID: "alice@example.com", Affiliation: "owner"}))
	must(t, "invite", st.PutRoomInvite(ctx, store.RoomInvite{Token: "t", Room: roomA, Created: time.Now()}))
	must(t, "DeleteRoom", st.DeleteRoom(ctx, roomA))
	must(t, "re-create", st.CreateRoom(ctx, store.Room{JID: roomA, Created: time.Now()}))
	affs, _ := st.Affiliations(ctx, roomA)
	msgs, _, _ := st.RoomMessages(ctx, roomA, store.RoomQuery{})
	invs, _ := st.RoomInvites(ctx, roomA)
	_, err := st.RoomInvite(ctx, "t")
	if len(affs) != 0 || len(msgs) != 0 || len(invs) != 0 || err == nil {
		t.Fatalf("re-created room inherited data: %v %v %v %v", affs, msgs, invs, err)
	}
}

func (s *suite) testMUCSecret(t *testing.T) {
	st := s.fresh(t)
	a, err := st.MUCSecret(t.Context())
	must(t, "MUCSecret", err)
	b, err := st.MUCSecret(t.Context())
	must(t, "MUCSecret again", err)
	if len(a) < 16 || !bytes.Equal(a, b) {
		t.Fatalf("MUCSecret not stable: %x vs %x", a, b)
	}
}
