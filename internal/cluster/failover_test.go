package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"bluetick/internal/jid"
	"bluetick/internal/natstest"
	"bluetick/internal/session"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// die makes a node vanish as a killed process does: no more heartbeats,
// and its NATS connection (so its subscriptions) is gone. Its directory
// entries stay until the others declare it dead. It returns once the NATS
// server has noticed (other's requests to it get "no responders"), as it
// has long before a client of a killed node can have reconnected: a
// request published in between would go to the closing connection and
// wait for its timeout.
func (n *node) die(t *testing.T, other *node) {
	t.Helper()
	n.cl.cancel()
	n.cl.nc.Close()
	eventually(t, "NATS to drop the dead node's subscriptions", func() bool {
		_, err := other.cl.nc.Request(subjectPrefix+n.cl.id, nil, 100*time.Millisecond)
		return errors.Is(err, nats.ErrNoResponders)
	})
}

// A client of a dead node that tries to resume there learns at once that
// nothing can be resumed, long before heartbeats declare the node dead; a
// session held by a live node is still handed over.
func TestResumeFailsFastWhenTheHolderDied(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	nodes := startNodesWith(t, ns.URL, st, func(name string, c *Config) {
		c.Heartbeat = 2 * time.Second // dead after 6 s: far beyond what the test allows
		if name == "c" {
			c.HandOver = func(previd, user string, h uint32) (session.Snapshot, bool) {
				if previd != "held-by-c" || user != "bob" {
					return session.Snapshot{}, false
				}
				return session.Snapshot{ID: previd, JID: jid.MustParse("bob@localhost/phone"), InH: 3, Acked: h}, true
			}
		}
	}, "a", "b", "c")
	a, b := nodes[0], nodes[1]
	ctx := context.Background()

	snap, err := a.cl.Resume(ctx, "held-by-c", "bob", 2)
	if err != nil || snap.ID != "held-by-c" || snap.InH != 3 || snap.Acked != 2 {
		t.Fatalf("resumption of a session on a live node: %+v, %v", snap, err)
	}

	b.die(t, a)
	start := time.Now()
	_, err = a.cl.Resume(ctx, "held-by-b", "bob", 0)
	if !errors.Is(err, ErrNoSession) {
		t.Fatalf("resumption of a session on a dead node: %v, want ErrNoSession", err)
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Fatalf("resumption of a session on a dead node took %v to fail: it waited for the dead node", d)
	}
	if snap, err := a.cl.Resume(ctx, "held-by-c", "bob", 3); err != nil || snap.ID != "held-by-c" {
		t.Fatalf("resumption on a live node with a dead one around: %+v, %v", snap, err)
	}
}

// A user whose node died logs in on another node with the same resource:
// the newer login wins at once, everywhere. The dead node's entry leaves
// the directory without waiting for heartbeats, so messages to the full
// JID reach the new session, and when the dead node is finally declared
// dead, contacts are not told that the (new) resource went offline.
func TestSameResourceReplacesASessionOfADeadNode(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	const hb = time.Second // dead after 3 s
	nodes := startNodesWith(t, ns.URL, st, func(name string, c *Config) { c.Heartbeat = hb }, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	ctx := context.Background()
	st.PutRosterItem(ctx, "bob", store.RosterItem{Contact: "alice@localhost", Subscription: store.SubFrom, InRoster: true})
	st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "bob@localhost", Subscription: store.SubTo, InRoster: true})
	bobPhone := jid.MustParse("bob@localhost/phone")

	alice := a.connect(t, "alice@localhost/pc")
	alice.send(presence())
	bob := b.connect(t, "bob@localhost/phone")
	bob.send(presence())
	onNode := func(n *node, want string) func() bool {
		return func() bool {
			s := n.srv.Router.Session(bobPhone)
			rs, ok := s.(*remoteSession)
			return ok && rs.node == want
		}
	}
	eventually(t, "node a to see bob on b", onNode(a, "b"))
	alice.sink.Take()

	start := time.Now()
	b.die(t, c)
	bob2 := c.connect(t, "bob@localhost/phone")
	bob2.send(presence())
	eventually(t, "node a to route bob/phone to c", onNode(a, "c"))
	for _, n := range []*node{a, c} {
		eventually(t, "the dead node's entry to leave the directory", func() bool {
			for _, r := range n.srv.Router.Resources(bobPhone.Bare()) {
				if rs, ok := r.(*remoteSession); ok && rs.node == "b" {
					return false
				}
			}
			return true
		})
	}
	if d := time.Since(start); d > hb {
		t.Fatalf("the replaced entry took %v to go: it waited for heartbeats", d)
	}
	alice.send(chat("bob@localhost/phone", "full1"))
	bob2.sink.WaitFor(t, "a message to the full JID on the new node", byID("full1"))
	alice.send(chat("bob@localhost", "bare1"))
	bob2.sink.WaitFor(t, "a message to the bare JID on the new node", byID("bare1"))

	// Past the dead node's detection: bob/phone is still available for
	// alice.
	time.Sleep(4*hb + 500*time.Millisecond)
	for _, el := range alice.sink.Take() {
		if el.Name == "presence" && el.Attr("type") == "unavailable" && el.Attr("from") == bobPhone.String() {
			t.Fatalf("alice was told bob/phone went offline when its old node was declared dead: %v", xmlstream.Append(nil, el, ""))
		}
	}
	if !a.srv.Router.Online(bobPhone.Bare()) {
		t.Fatal("bob is not online for node a")
	}
}

// A request that reached a node in the instant it died (published before
// NATS dropped its subscription) is never answered; the asking node finds
// the node gone within a probe interval or two instead of waiting for the
// whole request timeout. A node that is merely slow is waited for.
func TestAskGivesUpOnANodeThatDiedMidRequest(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	a := startNodes(t, ns.URL, st, "a")[0]

	// "dying" takes the request and dies without answering.
	dying, err := nats.Connect(ns.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer dying.Close()
	if _, err := dying.Subscribe(subjectPrefix+"dying", func(m *nats.Msg) { go dying.Close() }); err != nil {
		t.Fatal(err)
	}
	// "slow" answers pings at once and requests after 700 ms.
	slow, err := nats.Connect(ns.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := slow.Subscribe(subjectPrefix+"slow", func(m *nats.Msg) {
		if m.Header.Get("op") == opPing {
			m.Respond([]byte(replyOK))
			return
		}
		go func() {
			time.Sleep(700 * time.Millisecond)
			m.Respond([]byte(replyOK))
		}()
	}); err != nil {
		t.Fatal(err)
	}
	dying.Flush()
	slow.Flush()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	start := time.Now()
	m := nats.NewMsg(subjectPrefix + "dying")
	m.Header.Set("op", opSend)
	if _, err := a.cl.ask(ctx, "dying", m); !errors.Is(err, errNodeGone) {
		t.Fatalf("request to a node that died: %v, want errNodeGone", err)
	}
	if d := time.Since(start); d > 4*probeAfter {
		t.Fatalf("request to a node that died took %v to fail", d)
	}

	m = nats.NewMsg(subjectPrefix + "slow")
	m.Header.Set("op", opSend)
	resp, err := a.cl.ask(ctx, "slow", m)
	if err != nil || string(resp.Data) != replyOK {
		t.Fatalf("request to a slow node: %v, %v", resp, err)
	}
}
