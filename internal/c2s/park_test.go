package c2s

import (
	"bluetick/internal/jid"
	"testing"
	"time"
)

// waitFor polls cond for up to two seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}

// Silent connections give their goroutine up and still work: they receive
// (the session writer never needed the reader), they wake on input, and a
// stanza split across a park arrives whole.
func TestIdleConnectionsParkAndWake(t *testing.T) {
	srv := startServer(t, nil)
	if !srv.svc.park {
		t.Skip("parking needs epoll")
	}
	srv.svc.parkAfter = 50 * time.Millisecond
	alice, bob := dial(t, srv.addr), dial(t, srv.addr)
	alice.login("alice", "pc")
	alice.presence()
	alice.expect("presence")
	bob.login("bob", "phone")
	bob.presence()
	bob.expect("presence")
	waitFor(t, "both connections parked", func() bool { return srv.svc.Parked() == 2 })

	alice.send("<message to='bob@localhost' type='chat' id='m1'><body>wake up</body></message>")
	if m := bob.expect("message"); m.Attr("id") != "m1" {
		t.Fatalf("bob got %v", m)
	}
	// Half a stanza, a pause long enough to park mid-element, the rest.
	bob.send("<message to='alice@localhost' type='chat' id='m2'><bo")
	waitFor(t, "bob parked mid-stanza", func() bool { return srv.svc.Parked() == 2 })
	bob.send("dy>split</body></message>")
	m := alice.expect("message")
	if m.Attr("id") != "m2" || m.ChildText("jabber:client", "body") != "split" {
		t.Fatalf("alice got %v", m)
	}
	waitFor(t, "both parked again", func() bool { return srv.svc.Parked() == 2 })
}

// A parked connection closed by the server (here: replaced by a new
// session of the same resource) wakes, ends its session and is counted
// out.
func TestParkedConnectionClosedByServer(t *testing.T) {
	srv := startServer(t, nil)
	if !srv.svc.park {
		t.Skip("parking needs epoll")
	}
	srv.svc.parkAfter = 50 * time.Millisecond
	old := dial(t, srv.addr)
	old.login("bob", "phone")
	waitFor(t, "parked", func() bool { return srv.svc.Parked() == 1 })
	repl := dial(t, srv.addr)
	repl.login("bob", "phone")
	if e := old.expect("error"); e.Child("urn:ietf:params:xml:ns:xmpp-streams", "conflict") == nil {
		t.Fatalf("old connection got %v, want <conflict/>", e)
	}
	waitFor(t, "old connection counted out", func() bool { return srv.svc.Active() == 1 })
	// The client hanging up on a parked connection ends it too.
	waitFor(t, "replacement parked", func() bool { return srv.svc.Parked() == 1 })
	repl.Conn.Close()
	waitFor(t, "all gone", func() bool { return srv.svc.Active() == 0 && srv.svc.Parked() == 0 })
	if srv.im.Router.Online(jid.MustParse("bob@localhost")) {
		t.Fatal("bob still online after his connection closed")
	}
}
