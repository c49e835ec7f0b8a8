package interop

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The admin socket's commands, run as the operator runs them (the bluetick
// binary, against the running server), with slixmpp clients on the other
// end: status counts what is connected, the online list shows the
// sessions, the announcement reaches both clients, the destroyed room's
// occupant gets the XEP-0045 destroy presence with the reason, and the
// kicked client gets the stream error and its session is gone. Unknown
// users and rooms fail with a clear message.
func TestAdminSocketCLI(t *testing.T) {
	s := startServer(t, "alice", "bob", "carol")
	if fi, err := os.Stat(filepath.Join(s.dir, "admin.sock")); err != nil || fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin socket: %v %v, want a socket with mode 0600", fi, err)
	}
	cli := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command(binPath, append(args, "--data", s.dir, "--domain", domain)...).CombinedOutput()
		return string(out), err
	}
	ok := func(args ...string) string {
		t.Helper()
		out, err := cli(args...)
		if err != nil {
			t.Fatalf("bluetick %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
	fails := func(want string, args ...string) {
		t.Helper()
		out, err := cli(args...)
		if err == nil || !strings.Contains(out, want) {
			t.Errorf("bluetick %s: %v %q, want a failure saying %q", strings.Join(args, " "), err, out, want)
		}
	}
	type status struct {
		Sessions    map[string]int `json:"sessions"`
		OnlineUsers int            `json:"online_users"`
		Accounts    int            `json:"accounts"`
		Rooms       int            `json:"rooms"`
		Occupants   int            `json:"occupants"`
		Version     string         `json:"version"`
	}
	getStatus := func() status {
		t.Helper()
		var st status
		if err := json.Unmarshal([]byte(ok("status", "--json")), &st); err != nil {
			t.Fatal(err)
		}
		return st
	}
	type session struct{ JID, Transport, State, Addr string }
	online := func() []session {
		t.Helper()
		var list struct{ Sessions []session }
		if err := json.Unmarshal([]byte(ok("user", "list", "--online", "--json")), &list); err != nil {
			t.Fatal(err)
		}
		return list.Sessions
	}

	st := getStatus()
	if st.Accounts != 3 || st.OnlineUsers != 0 || st.Rooms != 0 || st.Version == "" {
		t.Errorf("status before any client: %+v", st)
	}
	c := slixWith(t, s, "slix_adminsock.py", "adminsock", map[string]any{}, 60)
	c.waitEvent(t, "ready", 30*time.Second)

	st = getStatus()
	if st.Sessions["tls"] != 2 || st.OnlineUsers != 2 || st.Accounts != 3 || st.Rooms != 1 || st.Occupants != 2 {
		t.Errorf("status with alice and bob in a room: %+v", st)
	}
	human := ok("status")
	for _, want := range []string{"serving " + domain, "sessions:         2 on this server: tcp 0, tls 2", "accounts:         3", "rooms:            1 (2 occupants)", "memory:"} {
		if !strings.Contains(human, want) {
			t.Errorf("bluetick status lacks %q:\n%s", want, human)
		}
	}
	ss := online()
	if len(ss) != 2 || ss[0].JID != "alice@"+domain+"/phone" || ss[1].JID != "bob@"+domain+"/pc" {
		t.Fatalf("online sessions: %+v", ss)
	}
	for _, x := range ss {
		if x.Transport != "tls" || x.State != "active" || x.Addr != "127.0.0.1" {
			t.Errorf("session %+v: want tls, active, 127.0.0.1", x)
		}
	}
	rooms := ok("room", "list")
	if !strings.Contains(rooms, "team@groups."+domain) || !strings.Contains(rooms, "1 room(s)") {
		t.Errorf("room list:\n%s", rooms)
	}
	t.Logf("bluetick status:\n%s\nbluetick user list --online:\n%s\nbluetick room list:\n%s", human, ok("user", "list", "--online"), rooms)

	if out := ok("announce", "maintenance at noon", "--subject", "Notice"); !strings.Contains(out, "sent to 2 session(s)") {
		t.Errorf("announce: %s", out)
	}
	ann := c.waitEvent(t, "announced", 20*time.Second)
	for _, who := range []string{"alice", "bob"} {
		got, _ := ann[who].(map[string]any)
		if got["body"] != "maintenance at noon" || got["subject"] != "Notice" {
			t.Errorf("%s's announcement: %v", who, got)
		}
	}

	fails("no room nowhere@groups."+domain, "room", "destroy", "nowhere@groups."+domain)
	if out := ok("room", "destroy", "team@groups."+domain, "--reason", "moving to a new group"); !strings.Contains(out, "2 occupant(s) told") {
		t.Errorf("room destroy: %s", out)
	}
	if d := c.waitEvent(t, "destroyed", 20*time.Second); d.str("reason") != "moving to a new group" || d.str("sender") != "team@groups."+domain+"/Bob" {
		t.Errorf("bob's destroy presence: %s", d)
	}
	if out := ok("room", "list"); !strings.Contains(out, "0 room(s)") {
		t.Errorf("room list after destroy:\n%s", out)
	}

	fails("no user nobody@"+domain, "user", "kick", "nobody")
	fails("carol@"+domain+" has no session online", "user", "kick", "carol")
	if out := ok("user", "kick", "alice@"+domain, "--reason", "account review"); !strings.Contains(out, "ended 1 session(s) of alice@"+domain) {
		t.Errorf("user kick: %s", out)
	}
	k := c.waitEvent(t, "kicked", 20*time.Second)
	if k.str("condition") != "policy-violation" || k.str("text") != "session ended by an administrator: account review" {
		t.Errorf("alice's stream error: %s", k)
	}
	// alice asked for resumption (XEP-0198): the kicked session must not
	// wait for it, so it is gone at once.
	// (bob disconnects meanwhile: the script is done.)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ss := online()
		gone := true
		for _, x := range ss {
			if strings.HasPrefix(x.JID, "alice@") {
				gone = false
			}
		}
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions after the kick: %+v, want none of alice's", ss)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if st := getStatus(); st.Sessions["none"] != 0 {
		t.Errorf("status after the kick: %+v: a session waits for a resumption", st)
	}
	c.finish(t)
}

// slixWith runs a scenario of another slixmpp script of clients/ with a
// bound of timeout seconds.
func slixWith(t *testing.T, s *server, script, scenario string, args map[string]any, timeout int) *proc {
	t.Helper()
	need(t, "slixmpp")
	var cfg map[string]any
	json.Unmarshal([]byte(s.config(args)), &cfg)
	cfg["timeout"] = timeout
	b, _ := json.Marshal(cfg)
	return start(t, "slixmpp:"+scenario, nil, pythonPath, filepath.Join(clientsDir, script), scenario, string(b))
}

// With no server running, the commands say so, name the data directory
// and the fix, and fail.
func TestAdminSocketNoServer(t *testing.T) {
	if skipAll() {
		t.Skip("BLUETICK_INTEROP_SKIP=1")
	}
	dir := t.TempDir()
	for _, args := range [][]string{{"status"}, {"user", "list", "--online"}, {"user", "kick", "alice"}, {"room", "list"}, {"announce", "hi"}} {
		out, err := exec.Command(binPath, append(args, "--data", dir)...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "no server running with data directory "+dir) || !strings.Contains(string(out), "start it with bluetick serve") {
			t.Errorf("bluetick %s without a server: %v %q", strings.Join(args, " "), err, out)
		}
	}
}
