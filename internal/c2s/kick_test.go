package c2s

import (
	"context"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
)

// A session the server ends on purpose (an administrator's kick, a
// disabled account, a device logged out) is over: it does not hibernate
// for a XEP-0198 resumption the client asked for, so the client cannot
// come back into it by resuming, and its contacts see it go offline.
func TestKickedResumableSessionEnds(t *testing.T) {
	srv := startServer(t, nil)
	bob := dial(t, srv.addr)
	bob.online("bob", "phone", true)
	bobJID := jid.MustParse("bob@localhost/phone")
	s := srv.im.Router.LocalSession(bobJID)
	if s == nil {
		t.Fatal("bob's session is not bound")
	}
	s.Kick("policy-violation", "session ended by an administrator")
	for {
		el, err := bob.Read(5 * time.Second)
		if err != nil {
			t.Fatalf("no stream error: %v", err)
		}
		if el.Name == "error" {
			if el.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
				t.Fatalf("stream error %v, want policy-violation", el)
			}
			break
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for srv.im.Router.LocalSession(bobJID) != nil {
		if time.Now().After(deadline) {
			t.Fatal("the kicked session is still bound (hibernated for a resumption)")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A hibernated session (its connection broke, its client may resume) that
// is kicked ends at once instead of at the end of stream.resume_timeout,
// and a late resumption is refused.
func TestKickEndsHibernatedSession(t *testing.T) {
	srv := startServer(t, nil)
	bob := dial(t, srv.addr)
	bob.login("bob", "phone")
	bob.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	id := bob.expect("enabled").Attr("id")
	bob.presence()
	bob.expect("presence")
	bobJID := jid.MustParse("bob@localhost/phone")
	bob.Conn.Close()
	s := srv.im.Router.LocalSession(bobJID)
	if s == nil {
		t.Fatal("bob's session is not bound")
	}
	waitFor(t, "bob's session to hibernate", func() bool { return len(srv.svc.Sessions()) == 1 && srv.svc.Sessions()[0].State == "hibernated" })
	s.Kick("policy-violation", "session ended by an administrator")
	waitFor(t, "the kicked hibernated session to end", func() bool { return srv.im.Router.LocalSession(bobJID) == nil })
	bob2 := dial(t, srv.addr)
	bob2.auth("bob")
	bob2.send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='1'/>")
	if el := bob2.next(); el.Name != "failed" {
		t.Fatalf("resumption of a kicked session: %v, want <failed/>", el)
	}
}

// A graceful stop kicks every session, hibernated ones included, and a
// kicked hibernated session ends at once (on its own goroutine): Shutdown
// still returns only once it has ended, so the unacknowledged message it
// held is in the store before the journal closes.
func TestShutdownWaitsForKickedHibernatedSessions(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Offline.Durable = "off-loses-acked-on-crash" })
	bob := dial(t, srv.addr)
	bob.online("bob", "phone", true)
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	alice.send("<message to='bob@localhost' type='chat' id='held'><body>unacked</body></message>")
	bob.expect("message")
	bob.Conn.Close() // never acked
	waitFor(t, "bob's session to hibernate", func() bool {
		for _, s := range srv.svc.Sessions() {
			if s.State == "hibernated" {
				return true
			}
		}
		return false
	})
	alice.Conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.svc.Shutdown(ctx)
	srv.im.Offline.Close()
	if n, _ := srv.im.Store().CountOffline(context.Background(), "bob"); n != 1 {
		t.Fatalf("after the stop the offline store holds %d of bob's messages, want the unacked one", n)
	}
}
