package cluster

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/natstest"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

type node struct {
	srv *server.Server
	cl  *Node
}

func logger() *slog.Logger {
	if os.Getenv("BLUETICK_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startNodes runs n IM cores sharing one store, joined over NATS.
func startNodes(t *testing.T, url string, st store.Store, names ...string) []*node {
	t.Helper()
	return startNodesWith(t, url, st, func(string, *Config) {}, names...)
}

// startNodesWith is startNodes with each node's cluster configuration
// adjusted by tune.
func startNodesWith(t *testing.T, url string, st store.Store, tune func(name string, c *Config), names ...string) []*node {
	t.Helper()
	var out []*node
	for _, name := range names {
		cfg := config.Default()
		srv := server.New(cfg, st, logger())
		ccfg := Config{NATS: url, Node: name, Heartbeat: 200 * time.Millisecond, Gone: srv.RemoteGone}
		tune(name, &ccfg)
		cl, err := Start(context.Background(), ccfg, srv.Router, logger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		out = append(out, &node{srv: srv, cl: cl})
	}
	return out
}

func sharedStore(t *testing.T) store.Store {
	t.Helper()
	st, err := sqlite.Open(t.TempDir() + "/bt.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(context.Background(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

type client struct {
	s    *session.Session
	sink *xmpptest.Sink
	n    *node
}

func (n *node) connect(t *testing.T, full string) *client {
	s := session.New(server.NewID(), jid.MustParse(full), 1000, n.srv.Hooks())
	w := &xmpptest.Sink{}
	s.Attach(w)
	n.srv.Bound(context.Background(), s)
	return &client{s: s, sink: w, n: n}
}

func (c *client) send(el *xmlstream.Element) {
	c.n.srv.Handle(context.Background(), c.s, el)
}

func (c *client) end() {
	c.s.Detach()
	c.n.srv.End(context.Background(), c.s)
}

func presence(attrs ...string) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "presence", attrs...)
}

func chat(to, id string) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "message", "to", to, "type", "chat", "id", id).
		Append(xmlstream.New(xmlstream.NSClient, "body").AppendText("hi " + id))
}

func byID(id string) func(*xmlstream.Element) bool {
	return func(el *xmlstream.Element) bool { return el.Name == "message" && el.Attr("id") == id }
}

// eventually waits for cond (directory updates travel through NATS).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestCrossNodeMessagesPresenceAndOffline(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	nodes := startNodes(t, ns.URL, st, "a", "b")
	a, b := nodes[0], nodes[1]
	bobJID := jid.MustParse("bob@localhost")

	alice := a.connect(t, "alice@localhost/pc")
	alice.send(presence())
	bob := b.connect(t, "bob@localhost/phone")
	bob.send(presence())
	eventually(t, "node a to see bob online", func() bool { return a.srv.Router.Online(bobJID) })

	// A message crosses nodes, with its receipt back.
	alice.send(chat("bob@localhost", "x1"))
	m := bob.sink.WaitFor(t, "alice's message on node b", byID("x1"))
	if m.Attr("from") != "alice@localhost/pc" || m.Child(server.NSSID, "stanza-id") == nil {
		t.Fatalf("bob got %v", m)
	}
	bob.send(xmlstream.New(xmlstream.NSClient, "message", "to", "alice@localhost/pc", "id", "r1").
		Append(xmlstream.New("urn:xmpp:receipts", "received", "id", "x1")))
	alice.sink.WaitFor(t, "bob's receipt on node a", byID("r1"))

	// Subscription across nodes: bob sees the request, approves, alice
	// then gets bob's presence from the directory.
	alice.send(presence("to", "bob@localhost", "type", "subscribe"))
	bob.sink.WaitFor(t, "subscribe request", func(el *xmlstream.Element) bool {
		return el.Name == "presence" && el.Attr("type") == "subscribe"
	})
	bob.send(presence("to", "alice@localhost", "type", "subscribed"))
	alice.sink.WaitFor(t, "bob's presence after approval", func(el *xmlstream.Element) bool {
		return el.Name == "presence" && el.Attr("type") == "" && el.Attr("from") == "bob@localhost/phone"
	})

	// Bob leaves: alice sees it; a message goes to the shared offline
	// store and reaches bob when he logs in on the other node.
	bob.end()
	alice.sink.WaitFor(t, "bob unavailable", func(el *xmlstream.Element) bool {
		return el.Attr("type") == "unavailable" && el.Attr("from") == "bob@localhost/phone"
	})
	eventually(t, "bob's directory entry to go", func() bool { return !a.srv.Router.Online(bobJID) })
	alice.send(chat("bob@localhost", "off1"))
	if n, _ := st.CountOffline(context.Background(), "bob"); n != 1 {
		t.Fatalf("offline count = %d, want 1", n)
	}
	bob2 := a.connect(t, "bob@localhost/laptop")
	bob2.send(presence())
	if m := bob2.sink.WaitFor(t, "offline message", byID("off1")); m.Child("urn:xmpp:delay", "delay") == nil {
		t.Fatalf("no delay stamp: %v", m)
	}
}

func TestDeadNodeFallsBackToOffline(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	nodes := startNodes(t, ns.URL, st, "a", "b")
	a, b := nodes[0], nodes[1]
	bobJID := jid.MustParse("bob@localhost")
	ctx := context.Background()
	st.PutRosterItem(ctx, "bob", store.RosterItem{Contact: "alice@localhost", Subscription: store.SubFrom, InRoster: true})
	st.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "bob@localhost", Subscription: store.SubTo, InRoster: true})
	alice := a.connect(t, "alice@localhost/pc")
	alice.send(presence())
	bob := b.connect(t, "bob@localhost/phone")
	bob.send(presence())
	eventually(t, "bob online on a", func() bool { return a.srv.Router.Online(bobJID) })

	// Node b dies without a word: its NATS connection just goes.
	b.cl.cancel()
	b.cl.nc.Close()
	eventually(t, "node b declared dead", func() bool { return !a.srv.Router.Online(bobJID) })
	alice.sink.WaitFor(t, "bob's unavailable presence after his node died", func(el *xmlstream.Element) bool {
		return el.Name == "presence" && el.Attr("type") == "unavailable" && el.Attr("from") == "bob@localhost/phone"
	})
	alice.send(chat("bob@localhost", "d1"))
	if n, _ := st.CountOffline(context.Background(), "bob"); n != 1 {
		t.Fatalf("message to a user on a dead node: offline count = %d, want 1", n)
	}
}

func TestSameResourceOnAnotherNodeReplacesTheOld(t *testing.T) {
	ns := natstest.Start(t)
	st := sharedStore(t)
	nodes := startNodes(t, ns.URL, st, "a", "b")
	bobJID := jid.MustParse("bob@localhost")
	kicked := make(chan *stanza.StreamError, 1)
	s := session.New(server.NewID(), jid.MustParse("bob@localhost/phone"), 100, nodes[0].srv.Hooks())
	s.Attach(kickWriter{kicked})
	nodes[0].srv.Bound(context.Background(), s)
	eventually(t, "node b to see bob", func() bool { return len(nodes[1].srv.Router.Resources(bobJID)) == 1 })
	nodes[1].connect(t, "bob@localhost/phone")
	select {
	case se := <-kicked:
		if se == nil || se.Condition != "conflict" {
			t.Fatalf("old session closed with %v, want conflict", se)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the session on the other node was not replaced")
	}
}

type kickWriter struct{ c chan *stanza.StreamError }

func (k kickWriter) Write([]*xmlstream.Element) error { return nil }
func (k kickWriter) Close(se *stanza.StreamError) {
	select {
	case k.c <- se:
	default:
	}
}

func TestEmbeddedNATS(t *testing.T) {
	url, stop, err := StartEmbedded(Embedded{Listen: "127.0.0.1:0", StoreDir: t.TempDir(), Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop) // after the nodes' cleanups: they leave the cluster first
	st := sharedStore(t)
	// Node a embeds NATS; node b connects to a's embedded server.
	nodes := startNodes(t, url, st, "a", "b")
	alice := nodes[0].connect(t, "alice@localhost/pc")
	alice.send(presence())
	bob := nodes[1].connect(t, "bob@localhost/phone")
	bob.send(presence())
	eventually(t, "node a to see bob", func() bool { return nodes[0].srv.Router.Online(jid.MustParse("bob@localhost")) })
	alice.send(chat("bob@localhost", "e1"))
	bob.sink.WaitFor(t, "message through the embedded NATS", byID("e1"))
}
