package server

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/dataform"
	"bluetick/internal/fast"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// adminServer is a server whose config lists alice as its admin, with
// alice, bob and carol registered.
func adminServer(t *testing.T) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Admins = []string{"alice@localhost"}
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob", "carol"} {
		if err := st.CreateUser(context.Background(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	return New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

var idn int

// runCommand sends a command IQ and returns the answer (result or error).
func runCommand(t *testing.T, srv *Server, c *conn, node string, x *xmlstream.Element) *xmlstream.Element {
	t.Helper()
	idn++
	id := "a" + strings.Repeat("x", idn%3) + string(rune('a'+idn%26))
	cmd := xmlstream.New(NSCommands, "command", "node", node, "action", "execute")
	if x != nil {
		cmd.Append(x)
	}
	c.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", id, "to", "localhost").Append(cmd))
	for _, r := range c.wait() {
		if r.Name == "iq" && r.Attr("id") == id {
			return r
		}
	}
	t.Fatalf("no answer to %s", node)
	return nil
}

// submit makes a submitted form of field/value pairs (a field may repeat).
func submit(kv ...string) *xmlstream.Element {
	x := xmlstream.New(dataform.NS, "x", "type", "submit")
	x.Append(xmlstream.New(dataform.NS, "field", "var", "FORM_TYPE").Append(xmlstream.New(dataform.NS, "value").AppendText(NSAdmin)))
	for i := 0; i+1 < len(kv); i += 2 {
		x.Append(xmlstream.New(dataform.NS, "field", "var", kv[i]).Append(xmlstream.New(dataform.NS, "value").AppendText(kv[i+1])))
	}
	return x
}

func completed(t *testing.T, r *xmlstream.Element) *xmlstream.Element {
	t.Helper()
	c := r.Child(NSCommands, "command")
	if r.Attr("type") != "result" || c == nil || c.Attr("status") != "completed" {
		t.Fatalf("not completed: %s", r)
	}
	return c
}

func errorCondition(r *xmlstream.Element) string {
	if r.Attr("type") != "error" {
		return ""
	}
	for _, c := range r.Child(xmlstream.NSClient, "error").Elements() {
		return c.Name
	}
	return ""
}

// resultField returns the values of a field of the command's result form.
func resultField(t *testing.T, c *xmlstream.Element, name string) []string {
	t.Helper()
	f, err := dataform.Parse(c.Child(dataform.NS, "x"))
	if err != nil {
		t.Fatalf("%v: %s", err, c)
	}
	for _, fl := range f.Fields {
		if fl.Var == name {
			return fl.Values
		}
	}
	t.Fatalf("no field %s in %s", name, c)
	return nil
}

func TestAdminCommandsOnlyForAdmins(t *testing.T) {
	srv := adminServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/pc")
	items := func(c *conn) []string {
		r := iqResult(t, c, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "d1", "to", "localhost").
			Append(xmlstream.New(NSDiscoItems, "query", "node", NSCommands)))
		var nodes []string
		for _, it := range r.Child(NSDiscoItems, "query").Elements() {
			nodes = append(nodes, it.Attr("node"))
		}
		return nodes
	}
	if n := items(alice); len(n) != 14 || n[0] != NodeAddUser {
		t.Fatalf("admin sees %v", n)
	}
	if n := items(bob); len(n) != 0 {
		t.Fatalf("non-admin sees %v", n)
	}
	bob.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "d2", "to", "localhost").
		Append(xmlstream.New(NSDiscoInfo, "query", "node", NodeAddUser)))
	if r := bob.wait(); len(r) != 1 || r[0].Attr("type") != "error" {
		t.Fatalf("non-admin disco#info of a command: %v", r)
	}
	for _, node := range []string{NodeAddUser, NodeDeleteUser, NodeOnlineNum, NodeAnnounce, NodeDeleteMOTD} {
		if r := runCommand(t, srv, bob, node, nil); errorCondition(r) != "forbidden" {
			t.Fatalf("%s by a non-admin: %s", node, r)
		}
	}
	// Without admins in the config, the commands are not there at all.
	plain := newServer(t)
	carol := connect(t, plain, "carol@localhost/pc")
	if r := runCommand(t, plain, carol, NodeOnlineNum, nil); r.Attr("type") != "error" {
		t.Fatalf("no admins: %s", r)
	}
}

func TestAdminAddUser(t *testing.T) {
	srv := adminServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	ctx := context.Background()
	// Stage one: the form.
	r := runCommand(t, srv, alice, NodeAddUser, nil)
	c := r.Child(NSCommands, "command")
	if c.Attr("status") != "executing" || c.Attr("sessionid") == "" {
		t.Fatalf("first stage: %s", r)
	}
	f, err := dataform.Parse(c.Child(dataform.NS, "x"))
	if err != nil || f.FormType() != NSAdmin || !f.Has("accountjid") || !f.Has("password") || !f.Has("password-verify") {
		t.Fatalf("form %v: %s", err, r)
	}
	completed(t, runCommand(t, srv, alice, NodeAddUser, submit("accountjid", "dave@localhost", "password", "secret-pw", "password-verify", "secret-pw")))
	if ok, _ := srv.store.UserExists(ctx, "dave"); !ok {
		t.Fatal("dave not created")
	}
	if _, err := srv.store.Credential(ctx, "dave", "SCRAM-SHA-256"); err != nil {
		t.Fatalf("dave's credential: %v", err)
	}
	for _, tc := range []struct {
		form *xmlstream.Element
		cond string
	}{
		{submit("accountjid", "dave@localhost", "password", "x1", "password-verify", "x1"), "conflict"},
		{submit("accountjid", "eve@example.com", "password", "x1", "password-verify", "x1"), "not-acceptable"},
		{submit("accountjid", "eve@localhost", "password", "x1", "password-verify", "x2"), "not-acceptable"},
		{submit("accountjid", "eve@localhost"), "bad-request"},
		{submit("password", "x1"), "bad-request"},
	} {
		if r := runCommand(t, srv, alice, NodeAddUser, tc.form); errorCondition(r) != tc.cond {
			t.Fatalf("%s: want %s, got %s", tc.form, tc.cond, r)
		}
	}
}

func TestAdminDeleteUserEndsSessions(t *testing.T) {
	srv := adminServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	_, bobW := connectAgent(t, srv, "bob@localhost/phone", "")
	if r := runCommand(t, srv, alice, NodeDeleteUser, submit("accountjids", "nobody@localhost")); errorCondition(r) != "item-not-found" {
		t.Fatalf("unknown user: %s", r)
	}
	if r := runCommand(t, srv, alice, NodeDeleteUser, submit()); errorCondition(r) != "bad-request" {
		t.Fatalf("no accounts: %s", r)
	}
	completed(t, runCommand(t, srv, alice, NodeDeleteUser, submit("accountjids", "bob@localhost")))
	if ok, _ := srv.store.UserExists(context.Background(), "bob"); ok {
		t.Fatal("bob still exists")
	}
	if bobW.closedWith() != "not-authorized" {
		t.Fatalf("bob's session: %q", bobW.closedWith())
	}
}

func TestAdminDisableUser(t *testing.T) {
	srv := adminServer(t)
	ctx := context.Background()
	svc := fast.New(fast.Config{Fast: config.DefaultFast()}, srv.store, nil)
	if _, err := svc.Issue(ctx, "bob", fast.Client{AgentID: "phone"}, fast.HTSHA256None); err != nil {
		t.Fatal(err)
	}
	alice := connect(t, srv, "alice@localhost/pc")
	_, bobW := connectAgent(t, srv, "bob@localhost/phone", "")
	if r := runCommand(t, srv, alice, NodeDisableUser, submit("accountjids", "bob@example.com")); errorCondition(r) != "not-acceptable" {
		t.Fatalf("other domain: %s", r)
	}
	completed(t, runCommand(t, srv, alice, NodeDisableUser, submit("accountjids", "bob@localhost")))
	if d, _ := srv.store.UserDisabled(ctx, "bob"); !d {
		t.Fatal("bob not disabled")
	}
	if ok, _ := srv.store.UserExists(ctx, "bob"); !ok {
		t.Fatal("disabling deleted bob")
	}
	if bobW.closedWith() != "not-authorized" {
		t.Fatalf("bob's session: %q", bobW.closedWith())
	}
	if d, _ := svc.Devices(ctx, "bob"); len(d) != 0 {
		t.Fatalf("a disabled account keeps login tokens: %+v", d)
	}
	completed(t, runCommand(t, srv, alice, NodeReenableUser, submit("accountjids", "bob@localhost")))
	if d, _ := srv.store.UserDisabled(ctx, "bob"); d {
		t.Fatal("bob still disabled")
	}
}

func TestAdminChangePasswordRevokesTokens(t *testing.T) {
	srv := adminServer(t)
	ctx := context.Background()
	svc := fast.New(fast.Config{Fast: config.DefaultFast()}, srv.store, nil)
	if _, err := svc.Issue(ctx, "bob", fast.Client{AgentID: "phone"}, fast.HTSHA256None); err != nil {
		t.Fatal(err)
	}
	alice := connect(t, srv, "alice@localhost/pc")
	if r := runCommand(t, srv, alice, NodeChangePassword, submit("accountjid", "nobody@localhost", "password", "x")); errorCondition(r) != "item-not-found" {
		t.Fatalf("unknown user: %s", r)
	}
	completed(t, runCommand(t, srv, alice, NodeChangePassword, submit("accountjid", "bob@localhost", "password", "new-secret")))
	if _, err := srv.store.Credential(ctx, "bob", "SCRAM-SHA-256"); err != nil {
		t.Fatalf("bob's credential: %v", err)
	}
	if d, _ := svc.Devices(ctx, "bob"); len(d) != 0 {
		t.Fatalf("bob's devices keep tokens: %+v", d)
	}
}

func TestAdminOnlineUsersAndEndSession(t *testing.T) {
	srv := adminServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	_, phone := connectAgent(t, srv, "bob@localhost/phone", "")
	_, laptop := connectAgent(t, srv, "bob@localhost/laptop", "")
	c := completed(t, runCommand(t, srv, alice, NodeOnlineNum, nil))
	if v := resultField(t, c, "onlineusersnum"); len(v) != 1 || v[0] != "2" {
		t.Fatalf("online num %v", v)
	}
	c = completed(t, runCommand(t, srv, alice, NodeOnlineList, submit("max_items", "25")))
	if v := resultField(t, c, "onlineuserjids"); strings.Join(v, " ") != "alice@localhost bob@localhost" {
		t.Fatalf("online list %v", v)
	}
	c = completed(t, runCommand(t, srv, alice, NodeRegisteredNum, nil))
	if v := resultField(t, c, "registeredusersnum"); len(v) != 1 || v[0] != "3" {
		t.Fatalf("registered num %v", v)
	}
	c = completed(t, runCommand(t, srv, alice, NodeUserStats, submit("accountjid", "bob@localhost")))
	if v := resultField(t, c, "onlineresources"); len(v) != 2 {
		t.Fatalf("bob's resources %v", v)
	}
	if v := resultField(t, c, "rostersize"); len(v) != 1 || v[0] != "0" {
		t.Fatalf("bob's roster size %v", v)
	}
	if r := runCommand(t, srv, alice, NodeUserStats, submit("accountjid", "bob@example.com")); errorCondition(r) != "not-acceptable" {
		t.Fatalf("other domain: %s", r)
	}
	// A full JID ends that session only; a bare one all of them.
	completed(t, runCommand(t, srv, alice, NodeEndUserSession, submit("accountjids", "bob@localhost/phone")))
	if phone.closedWith() != "policy-violation" || laptop.closedWith() != "" {
		t.Fatalf("phone %q laptop %q", phone.closedWith(), laptop.closedWith())
	}
	completed(t, runCommand(t, srv, alice, NodeEndUserSession, submit("accountjids", "bob@localhost")))
	if laptop.closedWith() != "policy-violation" {
		t.Fatalf("laptop %q", laptop.closedWith())
	}
}

func TestAdminAnnounceAndMOTD(t *testing.T) {
	srv := adminServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/pc")
	bob.send(t, srv, presence())
	bob.wait()
	if r := runCommand(t, srv, alice, NodeAnnounce, submit("subject", "hi")); errorCondition(r) != "bad-request" {
		t.Fatalf("no announcement: %s", r)
	}
	completed(t, runCommand(t, srv, alice, NodeAnnounce, submit("subject", "Maintenance", "announcement", "down at 10")))
	got := false
	for _, el := range bob.wait() {
		if el.Name == "message" && el.Attr("from") == "localhost" && el.ChildText(xmlstream.NSClient, "body") == "down at 10" {
			got = true
		}
	}
	if !got {
		t.Fatal("bob did not get the announcement")
	}
	completed(t, runCommand(t, srv, alice, NodeSetMOTD, submit("subject", "Welcome", "announcement", "be nice")))
	gotMOTD := func(c *conn) bool {
		for _, el := range c.wait() {
			if el.Name == "message" && el.ChildText(xmlstream.NSClient, "body") == "be nice" && el.ChildText(xmlstream.NSClient, "subject") == "Welcome" {
				return true
			}
		}
		return false
	}
	motd := func(full string) bool {
		c := connect(t, srv, full)
		c.send(t, srv, presence())
		return gotMOTD(c)
	}
	carol := connect(t, srv, "carol@localhost/a")
	carol.send(t, srv, presence())
	if !gotMOTD(carol) {
		t.Fatal("carol did not get the message of the day")
	}
	// Once per login, not at every return from unavailable.
	carol.send(t, srv, presence("type", "unavailable"))
	carol.send(t, srv, presence())
	if gotMOTD(carol) {
		t.Fatal("the message of the day came again in the same session")
	}
	// edit-motd shows the current one; it survives a restart.
	r := runCommand(t, srv, alice, NodeEditMOTD, nil)
	if v, _ := dataform.Parse(r.Child(NSCommands, "command").Child(dataform.NS, "x")); v == nil || v.Get("announcement") != "be nice" {
		t.Fatalf("edit form %s", r)
	}
	again := New(srv.cfg, srv.store, srv.log)
	if m, err := again.motd.get(); err != nil || m == nil || m.Body != "be nice" {
		t.Fatalf("after restart: %+v %v", m, err)
	}
	completed(t, runCommand(t, srv, alice, NodeDeleteMOTD, nil))
	if motd("carol@localhost/b") {
		t.Fatal("deleted message of the day still sent")
	}
}
