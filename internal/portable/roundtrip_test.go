package portable

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/pgtest"
	"bluetick/internal/store"
	"bluetick/internal/store/postgres"
	"bluetick/internal/store/sqlite"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

const domain = "example.com"

type opener func(t *testing.T) store.Store

func stores() map[string]opener {
	return map[string]opener{
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Open(filepath.Join(t.TempDir(), "b.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
		"postgres": func(t *testing.T) store.Store {
			st, err := postgres.Open(context.Background(), pgtest.Start(t), postgres.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		},
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// seed fills st with one of everything an export carries.
func seed(t *testing.T, st store.Store) {
	ctx := context.Background()
	creds, err := auth.NewCredentials("pw-alice", 4096)
	must(t, err)
	must(t, st.CreateUser(ctx, "alice", creds))
	creds, err = auth.NewCredentials("pw-bob", 4096)
	must(t, err)
	must(t, st.CreateUser(ctx, "bob", creds[1:])) // SCRAM-SHA-1 only, as imported from Prosody
	must(t, st.CreateUser(ctx, "nopw", nil))
	for _, it := range []store.RosterItem{
		{Contact: "bob@example.com", Name: "Bob", Subscription: store.SubBoth, Groups: []string{"Friends", "Family"}, InRoster: true},
		{Contact: "carol@elsewhere.example", Subscription: store.SubNone, PendingOut: true, Groups: []string{}, InRoster: true},
		{Contact: "dave@example.com", Subscription: store.SubNone, PendingIn: true, Groups: []string{}},
	} {
		_, err := st.PutRosterItem(ctx, "alice", it)
		must(t, err)
	}
	must(t, st.SetVCard(ctx, "alice", []byte(`<vCard xmlns='vcard-temp'><FN>Alice &amp; co</FN></vCard>`)))
	must(t, st.SetPrivateXML(ctx, "alice", "storage:bookmarks", []byte(`<storage xmlns='storage:bookmarks'><conference jid='r@groups.example.com' autojoin='true'/></storage>`)))
	must(t, st.SetPrivateXML(ctx, "alice", "urn:x", []byte(`<x xmlns='urn:x'>1</x>`)))
	must(t, st.CreatePEPNode(ctx, "alice", store.PEPNode{Node: "urn:xmpp:avatar:metadata", Config: []byte(`{"access":"open","max_items":1,"persist":true,"send_last":"on_sub_and_presence","notify_retract":true}`)}))
	for i := 0; i < 2; i++ {
		must(t, st.PublishPEPItem(ctx, "alice", "urn:xmpp:avatar:metadata", store.PEPItem{ID: fmt.Sprint("h", i), Publisher: "alice@example.com/pc", Published: time.Now(), Payload: []byte(fmt.Sprintf(`<metadata xmlns='urn:xmpp:avatar:metadata'><info id='h%d' bytes='1' type='image/png'/></metadata>`, i))}, 1))
	}
	for i := 0; i < 3; i++ {
		_, err := st.StoreOffline(ctx, "bob", store.OfflineMessage{From: "alice@example.com/pc", Stored: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
			Data: []byte(fmt.Sprintf(`<message xmlns='jabber:client' from='alice@example.com/pc' to='bob@example.com' type='chat' id='m%d'><body>hi %d &lt;3</body><delay xmlns='urn:xmpp:delay' from='example.com' stamp='2026-01-02T03:04:05.000Z'>Offline Storage</delay></message>`, i, i))}, 0)
		must(t, err)
	}
	must(t, st.Block(ctx, "alice", []string{"spam@evil.example", "evil.example"}))
	must(t, st.CreateRoom(ctx, store.Room{JID: "friends@groups.example.com", Config: []byte(`{"name":"Friends","members_only":true}`), Subject: "hello", SubjectFrom: "Alice", Created: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}))
	must(t, st.SetAffiliation(ctx, "friends@groups.example.com", store.Affiliation{JID: "alice@example.com", Affiliation: "owner", Nick: "Alice"}))
	must(t, st.SetAffiliation(ctx, "friends@groups.example.com", store.Affiliation{JID: "bob@example.com", Affiliation: "member"}))
}

// state is what a store holds, in a comparable form: everything but the
// store-assigned sequence numbers and publication times.
func state(t *testing.T, st store.Store) map[string]any {
	ctx := context.Background()
	out := map[string]any{}
	users, err := st.ListUsers(ctx)
	must(t, err)
	out["users"] = users
	for _, u := range users {
		for _, m := range []string{"SCRAM-SHA-1", "SCRAM-SHA-256"} {
			c, err := st.Credential(ctx, u, m)
			if err == nil {
				out[u+" cred "+m] = c
			}
		}
		items, _, err := st.Roster(ctx, u)
		must(t, err)
		out[u+" roster"] = items
		v, _ := st.VCard(ctx, u)
		out[u+" vcard"] = string(v)
		nss, err := st.(store.PrivateLister).PrivateXMLNamespaces(ctx, u)
		must(t, err)
		for _, ns := range nss {
			b, err := st.PrivateXML(ctx, u, ns)
			must(t, err)
			out[u+" private "+ns] = string(b)
		}
		nodes, err := st.PEPNodes(ctx, u)
		must(t, err)
		for _, n := range nodes {
			its, err := st.PEPItems(ctx, u, n.Node, nil, 0)
			must(t, err)
			var ps []string
			for _, it := range its {
				ps = append(ps, it.ID+" "+string(it.Payload))
			}
			out[u+" pep "+n.Node] = fmt.Sprintf("%s %v", n.Config, ps)
		}
		msgs, err := st.OfflineMessages(ctx, u, 0)
		must(t, err)
		var ms []string
		for _, m := range msgs {
			ms = append(ms, m.From+" "+m.Stored.UTC().String()+" "+string(m.Data))
		}
		out[u+" offline"] = ms
		bl, err := st.Blocklist(ctx, u)
		must(t, err)
		out[u+" blocked"] = bl
	}
	rooms, err := st.ListRooms(ctx)
	must(t, err)
	for _, r := range rooms {
		affs, err := st.Affiliations(ctx, r.JID)
		must(t, err)
		out["room "+r.JID] = fmt.Sprintf("%s %s %s %s %v", r.Config, r.Subject, r.SubjectFrom, r.Created.UTC(), affs)
	}
	return out
}

func importPath(t *testing.T, st store.Store, path string) Summary {
	t.Helper()
	ctx := context.Background()
	im := &Importer{St: st, Domain: domain}
	must(t, ReadPath(path, Visitor{
		Account: func(a *Account) error { return im.Account(ctx, a) },
		Room:    func(h string, r *Room) error { return im.Room(ctx, h, r) },
	}))
	return im.Sum
}

// TestRoundTrip: export → import into an empty store gives the same
// state, as one file and as a directory, on both stores; importing again
// changes nothing and stores no message twice.
func TestRoundTrip(t *testing.T) {
	for name, open := range stores() {
		t.Run(name, func(t *testing.T) {
			src := open(t)
			seed(t, src)
			want := state(t, src)
			for _, dir := range []bool{false, true} {
				dest := filepath.Join(t.TempDir(), "export.xml")
				if dir {
					dest = filepath.Join(t.TempDir(), "export")
				}
				sum, err := Export(context.Background(), src, domain, dest, dir)
				must(t, err)
				if sum.Users != 3 || sum.Offline != 3 || sum.Rooms != 1 || sum.Contacts != 2 || sum.PEPItems != 1 || sum.Private != 2 {
					t.Fatalf("export summary %+v", sum)
				}
				if fi, err := os.Stat(sum.Files[0]); err != nil || fi.Mode().Perm() != 0o600 {
					t.Fatalf("%s: %v %v", sum.Files[0], fi.Mode(), err)
				}
				dst := open(t)
				is := importPath(t, dst, dest)
				if is.Users != 3 || is.Offline != 3 || is.Rooms != 1 || len(is.NoPassword) != 1 || len(is.SHA1Only) != 1 || len(is.Skipped) != 0 {
					t.Fatalf("import summary %+v", is)
				}
				if got := state(t, dst); !reflect.DeepEqual(got, want) {
					for k := range want {
						if !reflect.DeepEqual(got[k], want[k]) {
							t.Errorf("%s:\n got %v\nwant %v", k, got[k], want[k])
						}
					}
					t.Fatalf("dir=%v: state differs", dir)
				}
				again := importPath(t, dst, dest)
				if again.Users != 0 || again.UsersExisting != 3 || again.Offline != 0 || again.OfflineDuplicate != 3 {
					t.Fatalf("second import %+v", again)
				}
				if got := state(t, dst); !reflect.DeepEqual(got, want) {
					t.Fatalf("dir=%v: state after a second import differs", dir)
				}
			}
		})
	}
}
