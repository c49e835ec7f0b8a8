package cluster

import (
	"context"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/mam"
	"bluetick/internal/natstest"
	"bluetick/internal/pgtest"
	"bluetick/internal/privacy"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/store/postgres"
	"bluetick/internal/xmlstream"
)

// TestClusterArchiveAndBlocking runs the archive and blocking on two nodes
// over NATS and one PostgreSQL, as cluster mode does (mam branch): a
// message crossing nodes is archived on both sides under the stanza-id
// each saw, and a block set on one node is enforced at once by the other,
// which routes the blocked contact's messages (no cache may hide it).
func TestClusterArchiveAndBlocking(t *testing.T) {
	ns := natstest.Start(t)
	ctx := context.Background()
	st, err := postgres.Open(ctx, pgtest.Start(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(ctx, u, nil); err != nil {
			t.Fatal(err)
		}
	}
	var nodes []*node
	for _, name := range []string{"a", "b"} {
		cfg := config.Default()
		cfg.Cluster.NATS = ns.URL
		cfg.Archive.Mode = "archive"
		srv := server.New(cfg, st, logger())
		cl, err := Start(ctx, Config{NATS: ns.URL, Node: name, Heartbeat: 200 * time.Millisecond, Gone: srv.RemoteGone}, srv.Router, logger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		nodes = append(nodes, &node{srv: srv, cl: cl})
	}
	a, b := nodes[0], nodes[1]
	alice := a.connect(t, "alice@localhost/pc")
	alice.send(presence())
	bob := b.connect(t, "bob@localhost/phone")
	bob.send(presence())
	eventually(t, "node a to see bob online", func() bool { return a.srv.Router.Online(jid.MustParse("bob@localhost")) })

	alice.send(chat("bob@localhost", "m1"))
	m := bob.sink.WaitFor(t, "m1 on node b", byID("m1"))
	sid := m.Child(server.NSSID, "stanza-id").Attr("id")

	// Bob's archive, queried on node b, and alice's, on node a.
	query := func(c *client, id string) []string {
		c.send(xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", id).Append(xmlstream.New(mam.NS, "query", "queryid", id)))
		c.sink.WaitFor(t, "the query result "+id, func(el *xmlstream.Element) bool { return el.Name == "iq" && el.Attr("id") == id })
		var ids []string
		for _, el := range c.sink.Elements() {
			if r := el.Child(mam.NS, "result"); r != nil && r.Attr("queryid") == id {
				ids = append(ids, r.Attr("id"))
			}
		}
		return ids
	}
	if ids := query(bob, "q1"); len(ids) != 1 || ids[0] != sid {
		t.Fatalf("bob's archive %v, want [%s]", ids, sid)
	}
	if ids := query(alice, "q2"); len(ids) != 1 || ids[0] == sid {
		t.Fatalf("alice's archive %v, want one id of her own", ids)
	}

	// Bob blocks alice on node b; node a refuses her next message.
	bob.send(xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "blk").Append(
		xmlstream.New(privacy.NSBlocking, "block").Append(xmlstream.New(privacy.NSBlocking, "item", "jid", "alice@localhost"))))
	bob.sink.WaitFor(t, "block result", func(el *xmlstream.Element) bool { return el.Attr("id") == "blk" && el.Attr("type") == "result" })
	alice.send(chat("bob@localhost", "m2"))
	bounce := alice.sink.WaitFor(t, "m2 bounced", func(el *xmlstream.Element) bool {
		return el.Attr("id") == "m2" && el.Attr("type") == "error"
	})
	if bounce.Child(xmlstream.NSClient, "error").Child(stanza.NSStanzas, "service-unavailable") == nil {
		t.Fatalf("m2 bounce %v", bounce)
	}
	bob.send(chat("alice@localhost", "m3"))
	refused := bob.sink.WaitFor(t, "m3 refused", func(el *xmlstream.Element) bool {
		return el.Attr("id") == "m3" && el.Attr("type") == "error"
	})
	if refused.Child(xmlstream.NSClient, "error").Child(privacy.NSErrors, "blocked") == nil {
		t.Fatalf("m3 refusal %v", refused)
	}

	// Unblocked on node b: node a routes again.
	bob.send(xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "unb").Append(xmlstream.New(privacy.NSBlocking, "unblock")))
	bob.sink.WaitFor(t, "unblock result", func(el *xmlstream.Element) bool { return el.Attr("id") == "unb" && el.Attr("type") == "result" })
	alice.send(chat("bob@localhost", "m4"))
	bob.sink.WaitFor(t, "m4 after the unblock", byID("m4"))
	if ids := query(bob, "q3"); len(ids) != 2 {
		t.Fatalf("bob's archive after m4: %v (the blocked m2 must not be there)", ids)
	}
}
