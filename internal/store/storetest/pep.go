package storetest

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"bluetick/internal/store"
)

func itemIDs(items []store.PEPItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func pepItem(id string) store.PEPItem {
	return store.PEPItem{ID: id, Publisher: "alice@example.org/pc", Published: time.Now().Truncate(time.Millisecond), Payload: []byte("<p xmlns='x'>" + id + "</p>")}
}

func (s *suite) testPEPNodes(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	nodes, err := st.PEPNodes(ctx, "alice")
	must(t, "PEPNodes empty", err)
	if len(nodes) != 0 {
		t.Fatalf("new account has nodes %v", nodes)
	}
	must(t, "CreatePEPNode b", st.CreatePEPNode(ctx, "alice", store.PEPNode{Node: "urn:b", Config: []byte(`{"a":1}`)}))
	must(t, "CreatePEPNode a", st.CreatePEPNode(ctx, "alice", store.PEPNode{Node: "urn:a", Config: []byte(`{}`)}))
	wantErr(t, "CreatePEPNode again", st.CreatePEPNode(ctx, "alice", store.PEPNode{Node: "urn:a"}), store.ErrExists)
	wantErr(t, "CreatePEPNode for an absent account", st.CreatePEPNode(ctx, "ghost", store.PEPNode{Node: "urn:a"}), store.ErrNotFound)
	n, err := st.PEPNode(ctx, "alice", "urn:b")
	must(t, "PEPNode", err)
	if n.Node != "urn:b" || string(n.Config) != `{"a":1}` {
		t.Fatalf("PEPNode = %+v", n)
	}
	_, err = st.PEPNode(ctx, "bob", "urn:b")
	wantErr(t, "PEPNode of another user", err, store.ErrNotFound)
	nodes, err = st.PEPNodes(ctx, "alice")
	must(t, "PEPNodes", err)
	if len(nodes) != 2 || nodes[0].Node != "urn:a" || nodes[1].Node != "urn:b" {
		t.Fatalf("PEPNodes = %+v, want urn:a, urn:b", nodes)
	}
	must(t, "SetPEPNodeConfig", st.SetPEPNodeConfig(ctx, "alice", "urn:a", []byte(`{"x":2}`), 0))
	if n, _ := st.PEPNode(ctx, "alice", "urn:a"); string(n.Config) != `{"x":2}` {
		t.Fatalf("config after SetPEPNodeConfig = %s", n.Config)
	}
	wantErr(t, "SetPEPNodeConfig absent", st.SetPEPNodeConfig(ctx, "alice", "urn:zz", nil, 0), store.ErrNotFound)
	must(t, "DeletePEPNode", st.DeletePEPNode(ctx, "alice", "urn:a"))
	wantErr(t, "DeletePEPNode again", st.DeletePEPNode(ctx, "alice", "urn:a"), store.ErrNotFound)
	_, err = st.PEPNode(ctx, "alice", "urn:a")
	wantErr(t, "PEPNode after delete", err, store.ErrNotFound)
}

func (s *suite) testPEPItems(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	wantErr(t, "PublishPEPItem without node", st.PublishPEPItem(ctx, "alice", "n", pepItem("1"), 0), store.ErrNotFound)
	_, err := st.PEPItems(ctx, "alice", "n", nil, 0)
	wantErr(t, "PEPItems without node", err, store.ErrNotFound)
	must(t, "CreatePEPNode", st.CreatePEPNode(ctx, "alice", store.PEPNode{Node: "n", Config: []byte(`{}`)}))
	items, err := st.PEPItems(ctx, "alice", "n", nil, 0)
	must(t, "PEPItems empty", err)
	if len(items) != 0 {
		t.Fatalf("new node has items %v", itemIDs(items))
	}
	want := pepItem("1")
	for _, id := range []string{"1", "2", "3"} {
		must(t, "PublishPEPItem", st.PublishPEPItem(ctx, "alice", "n", pepItem(id), 0))
	}
	items, err = st.PEPItems(ctx, "alice", "n", nil, 0)
	must(t, "PEPItems", err)
	if got := itemIDs(items); !slices.Equal(got, []string{"1", "2", "3"}) {
		t.Fatalf("items %v, want 1 2 3 (oldest first)", got)
	}
	if it := items[0]; it.Publisher != want.Publisher || !bytes.Equal(it.Payload, want.Payload) || it.Published.Sub(want.Published).Abs() > 5*time.Second {
		t.Fatalf("item round trip: %+v", it)
	}
	// Republishing an id makes it the newest.
	must(t, "PublishPEPItem again", st.PublishPEPItem(ctx, "alice", "n", pepItem("1"), 0))
	items, _ = st.PEPItems(ctx, "alice", "n", nil, 0)
	if got := itemIDs(items); !slices.Equal(got, []string{"2", "3", "1"}) {
		t.Fatalf("items after republishing 1: %v, want 2 3 1", got)
	}
	items, _ = st.PEPItems(ctx, "alice", "n", nil, 2)
	if got := itemIDs(items); !slices.Equal(got, []string{"3", "1"}) {
		t.Fatalf("2 newest items: %v, want 3 1", got)
	}
	items, _ = st.PEPItems(ctx, "alice", "n", []string{"3", "nope", "2"}, 0)
	if got := itemIDs(items); !slices.Equal(got, []string{"2", "3"}) {
		t.Fatalf("items by id: %v, want 2 3", got)
	}
	must(t, "RetractPEPItem", st.RetractPEPItem(ctx, "alice", "n", "2"))
	wantErr(t, "RetractPEPItem again", st.RetractPEPItem(ctx, "alice", "n", "2"), store.ErrNotFound)
	wantErr(t, "RetractPEPItem no node", st.RetractPEPItem(ctx, "alice", "zz", "2"), store.ErrNotFound)
	items, _ = st.PEPItems(ctx, "alice", "n", nil, 0)
	if got := itemIDs(items); !slices.Equal(got, []string{"3", "1"}) {
		t.Fatalf("items after retract: %v", got)
	}
	must(t, "PurgePEPItems", st.PurgePEPItems(ctx, "alice", "n"))
	items, _ = st.PEPItems(ctx, "alice", "n", nil, 0)
	if len(items) != 0 {
		t.Fatalf("items after purge: %v", itemIDs(items))
	}
	wantErr(t, "PurgePEPItems no node", st.PurgePEPItems(ctx, "alice", "zz"), store.ErrNotFound)
	// Deleting a node deletes its items: a new node of the same name is empty.
	must(t, "PublishPEPItem", st.PublishPEPItem(ctx, "alice", "n", pepItem("x"), 0))
	must(t, "DeletePEPNode", st.DeletePEPNode(ctx, "alice", "n"))
	must(t, "CreatePEPNode again", st.CreatePEPNode(ctx, "alice", store.PEPNode{Node: "n", Config: []byte(`{}`)}))
	items, _ = st.PEPItems(ctx, "alice", "n", nil, 0)
	if len(items) != 0 {
		t.Fatalf("re-created node has items %v", itemIDs(items))
	}
}

func (s *suite) testPEPMaxItems(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice")
	must(t, "CreatePEPNode", st.CreatePEPNode(ctx, "alice", store.PEPNode{Node: "n", Config: []byte(`{}`)}))
	for i := range 5 {
		must(t, "PublishPEPItem", st.PublishPEPItem(ctx, "alice", "n", pepItem(fmt.Sprint(i)), 3))
	}
	items, _ := st.PEPItems(ctx, "alice", "n", nil, 0)
	if got := itemIDs(items); !slices.Equal(got, []string{"2", "3", "4"}) {
		t.Fatalf("items with max 3: %v, want 2 3 4", got)
	}
	must(t, "SetPEPNodeConfig", st.SetPEPNodeConfig(ctx, "alice", "n", []byte(`{}`), 1))
	items, _ = st.PEPItems(ctx, "alice", "n", nil, 0)
	if got := itemIDs(items); !slices.Equal(got, []string{"4"}) {
		t.Fatalf("items after lowering max to 1: %v, want 4", got)
	}
}

func (s *suite) testPEPPrivateVCard(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	_, err := st.PrivateXML(ctx, "alice", "storage:bookmarks")
	wantErr(t, "PrivateXML empty", err, store.ErrNotFound)
	must(t, "SetPrivateXML", st.SetPrivateXML(ctx, "alice", "storage:bookmarks", []byte("<a/>")))
	must(t, "SetPrivateXML replace", st.SetPrivateXML(ctx, "alice", "storage:bookmarks", []byte("<b/>")))
	if b, err := st.PrivateXML(ctx, "alice", "storage:bookmarks"); err != nil || string(b) != "<b/>" {
		t.Fatalf("PrivateXML = %q, %v", b, err)
	}
	_, err = st.PrivateXML(ctx, "bob", "storage:bookmarks")
	wantErr(t, "PrivateXML of another user", err, store.ErrNotFound)
	wantErr(t, "SetPrivateXML absent account", st.SetPrivateXML(ctx, "ghost", "x", []byte("<a/>")), store.ErrNotFound)

	_, err = st.VCard(ctx, "alice")
	wantErr(t, "VCard empty", err, store.ErrNotFound)
	must(t, "SetVCard", st.SetVCard(ctx, "alice", []byte("<vCard/>")))
	must(t, "SetVCard replace", st.SetVCard(ctx, "alice", []byte("<vCard><FN>A</FN></vCard>")))
	if b, err := st.VCard(ctx, "alice"); err != nil || string(b) != "<vCard><FN>A</FN></vCard>" {
		t.Fatalf("VCard = %q, %v", b, err)
	}
	wantErr(t, "SetVCard absent account", st.SetVCard(ctx, "ghost", []byte("<a/>")), store.ErrNotFound)
}

func (s *suite) testPEPCaps(t *testing.T) {
	ctx := t.Context()
	st := s.fresh(t)
	_, err := st.CapsInfo(ctx, "sha-1 abc=")
	wantErr(t, "CapsInfo unknown", err, store.ErrNotFound)
	must(t, "PutCapsInfo", st.PutCapsInfo(ctx, "sha-1 abc=", []byte("<query/>")))
	must(t, "PutCapsInfo again", st.PutCapsInfo(ctx, "sha-1 abc=", []byte("<query/>")))
	if b, err := st.CapsInfo(ctx, "sha-1 abc="); err != nil || string(b) != "<query/>" {
		t.Fatalf("CapsInfo = %q, %v", b, err)
	}
}

func (s *suite) testPEPDeleteUser(t *testing.T) {
	ctx := t.Context()
	st := s.withUsers(t, "alice", "bob")
	for _, u := range []string{"alice", "bob"} {
		must(t, "CreatePEPNode", st.CreatePEPNode(ctx, u, store.PEPNode{Node: "n", Config: []byte(`{}`)}))
		must(t, "PublishPEPItem", st.PublishPEPItem(ctx, u, "n", pepItem("1"), 0))
		must(t, "SetPrivateXML", st.SetPrivateXML(ctx, u, "ns", []byte("<a/>")))
		must(t, "SetVCard", st.SetVCard(ctx, u, []byte("<v/>")))
	}
	must(t, "DeleteUser", st.DeleteUser(ctx, "alice"))
	must(t, "CreateUser again", st.CreateUser(ctx, "alice", nil))
	if nodes, _ := st.PEPNodes(ctx, "alice"); len(nodes) != 0 {
		t.Fatalf("re-created account has nodes %+v", nodes)
	}
	_, err := st.PrivateXML(ctx, "alice", "ns")
	wantErr(t, "PrivateXML after DeleteUser", err, store.ErrNotFound)
	_, err = st.VCard(ctx, "alice")
	wantErr(t, "VCard after DeleteUser", err, store.ErrNotFound)
	if items, err := st.PEPItems(ctx, "bob", "n", nil, 0); err != nil || len(items) != 1 {
		t.Fatalf("bob's items after deleting alice: %v, %v", itemIDs(items), err)
	}
}
