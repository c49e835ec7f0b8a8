package cluster

import (
	"context"
	"sync"
	"testing"

	"bluetick/internal/jid"
	"bluetick/internal/natstest"
	"bluetick/internal/xmlstream"
)

// TestAsleepAcrossNodes: a message delivered to a session on another node
// that is inactive (XEP-0352) or hibernated wakes the user (the push hook
// of the sending node's router fires); an awake one does not.
func TestAsleepAcrossNodes(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	nodes := startNodes(t, ns.URL, st, "a", "b")
	a, b := nodes[0], nodes[1]
	var mu sync.Mutex
	var woke []string
	a.srv.Router.OnUndelivered = func(ctx context.Context, bare jid.JID, el *xmlstream.Element) {
		mu.Lock()
		woke = append(woke, el.Attr("id"))
		mu.Unlock()
	}
	wokeNow := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), woke...)
	}
	alice := a.connect(t, "alice@localhost/pc")
	alice.send(presence())
	bob := b.connect(t, "bob@localhost/phone")
	bob.send(presence())
	eventually(t, "node a to see bob online", func() bool { return a.srv.Router.Online(jid.MustParse("bob@localhost")) })

	alice.send(chat("bob@localhost", "w1"))
	bob.sink.WaitFor(t, "w1", byID("w1"))
	if w := wokeNow(); len(w) != 0 {
		t.Fatalf("awake remote session woken: %v", w)
	}
	bob.s.SetInactive(true)
	alice.send(chat("bob@localhost", "w2"))
	bob.sink.WaitFor(t, "w2", byID("w2"))
	if w := wokeNow(); len(w) != 1 || w[0] != "w2" {
		t.Fatalf("inactive remote session: woke %v, want [w2]", w)
	}
	bob.s.SetInactive(false)
	bob.s.Detach() // connection gone, session hibernated
	alice.send(chat("bob@localhost", "w3"))
	if w := wokeNow(); len(w) != 2 || w[1] != "w3" {
		t.Fatalf("hibernated remote session: woke %v, want [w2 w3]", w)
	}
}
