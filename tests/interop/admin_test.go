package interop

import (
	"slices"
	"strings"
	"testing"
)

// 30. XEP-0133 service administration driven by slixmpp's xep_0050 and
// xep_0133 plugins: only the admin of the config sees and runs the
// commands; each one does what it says, through the client's forms.
func testAdmin(t *testing.T) {
	s := startServerWith(t, `admins = ["alice@localhost"]`+"\n", "alice", "bob", "carol")
	evs := slix(t, s, "admin", map[string]any{"announcement": "maintenance at noon", "motd": "be kind to each other"}).finish(t)

	admin := "http://jabber.org/protocol/admin#"
	nodes := one(t, evs, "admin_commands").strs("nodes")
	for _, n := range []string{"add-user", "delete-user", "disable-user", "reenable-user", "change-user-password", "end-user-session", "user-stats",
		"get-registered-users-num", "get-online-users-num", "get-online-users-list", "announce", "set-motd", "edit-motd", "delete-motd"} {
		if !slices.Contains(nodes, admin+n) {
			t.Errorf("the admin's commands lack %s: %v", n, nodes)
		}
	}
	for _, n := range one(t, evs, "bob_commands").strs("nodes") {
		if strings.HasPrefix(n, admin) {
			t.Errorf("bob, not an admin, sees %s", n)
		}
	}
	for _, name := range []string{"bob_online_num", "bob_add_user"} {
		if e := one(t, evs, name); e.str("error") != "forbidden" {
			t.Errorf("%s: %s, want forbidden", name, e)
		}
	}
	done := func(name string) event {
		t.Helper()
		e := one(t, evs, name)
		if e["error"] != nil || e.str("status") != "completed" {
			t.Errorf("%s: %s", name, e)
		}
		return e
	}
	value := func(e event, field string) []string {
		vals, _ := e["values"].(map[string]any)
		var out []string
		if vs, ok := vals[field].([]any); ok {
			for _, v := range vs {
				s, _ := v.(string)
				out = append(out, s)
			}
		}
		return out
	}
	if v := value(done("online_num"), "onlineusersnum"); !slices.Equal(v, []string{"3"}) {
		t.Errorf("online users: %v, want 3", v)
	}
	if v := value(done("online_list"), "onlineuserjids"); !slices.Equal(v, []string{"alice@localhost", "bob@localhost", "carol@localhost"}) {
		t.Errorf("online list: %v", v)
	}
	if v := value(done("registered_num"), "registeredusersnum"); !slices.Equal(v, []string{"3"}) {
		t.Errorf("registered users: %v, want 3", v)
	}
	st := done("user_stats")
	if v := value(st, "onlineresources"); len(v) != 1 || !strings.HasPrefix(v[0], "bob@localhost/") {
		t.Errorf("bob's resources: %v", v)
	}
	if v := value(st, "ipaddresses"); !slices.Equal(v, []string{"127.0.0.1"}) {
		t.Errorf("bob's addresses: %v", v)
	}
	if v := value(st, "rostersize"); !slices.Equal(v, []string{"0"}) {
		t.Errorf("bob's roster size: %v", v)
	}
	for name, want := range map[string]string{"add_foreign": "not-acceptable", "add_missing": "bad-request", "delete_unknown": "item-not-found"} {
		if e := one(t, evs, name); e.str("error") != want || e.str("text") == "" {
			t.Errorf("%s: %s, want %s with a text", name, e, want)
		}
	}
	done("announce")
	if e := one(t, evs, "carol_announcement"); e.str("sender") != "localhost" || e.str("subject") != "Notice" {
		t.Errorf("carol's announcement: %s", e)
	}
	done("set_motd")
	done("add_user")
	one(t, evs, "dave_motd")
	done("passwd")
	if e := one(t, evs, "dave_old_password"); !e.boolean("refused") {
		t.Errorf("dave's old password still works after change-user-password")
	}
	one(t, evs, "dave_new_password")
	done("disable")
	if e := one(t, evs, "dave_disabled_login"); !e.boolean("refused") || !strings.Contains(e.str("error"), "account-disabled") {
		t.Errorf("a disabled account's login: %s, want a SASL failure account-disabled", e)
	}
	done("reenable")
	one(t, evs, "dave_reenabled_login")
	done("delete_motd")
	done("delete_user")
	if v := value(done("registered_after"), "registeredusersnum"); !slices.Equal(v, []string{"3"}) {
		t.Errorf("registered users after deleting dave: %v, want 3", v)
	}
	done("end_session")
	if how := one(t, evs, "bob_ended").strs("how"); len(how) == 0 || how[0] != "policy-violation" {
		t.Errorf("bob's session ended with %v, want the stream error policy-violation", how)
	}
	logs := s.logs.String()
	for _, l := range []string{"admin: user added", "admin: password changed", "admin: user deleted", "admin: user disabled", "admin: user re-enabled", "admin: sessions ended", "admin: announcement sent", "admin: message of the day set"} {
		if !strings.Contains(logs, l) || !strings.Contains(logs, "admin=alice@localhost") {
			t.Errorf("the server log lacks %q by alice@localhost", l)
		}
	}
}
