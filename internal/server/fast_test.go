package server

import (
	"context"
	"sync"
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/fast"
	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// closeSink is a sink that records the stream error it is closed with.
type closeSink struct {
	sink
	mu     sync.Mutex
	closed *stanza.StreamError
}

func (c *closeSink) Close(e *stanza.StreamError) {
	c.mu.Lock()
	c.closed = e
	c.mu.Unlock()
}

func (c *closeSink) closedWith() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed == nil {
		return ""
	}
	return c.closed.Condition
}

// agentSession is a session that knows its client's user-agent id, as the
// SASL2 layer's sessions will.
type agentSession struct {
	*session.Session
	agent string
}

func (a agentSession) UserAgentID() string { return a.agent }

// connectAgent binds a session of full for the client agent ("" for a
// session without UserAgentID) and returns its writer.
func connectAgent(t *testing.T, srv *Server, full, agent string) (*session.Session, *closeSink) {
	t.Helper()
	s := session.New(NewID(), jid.MustParse(full), 10000, srv.Hooks())
	w := &closeSink{}
	s.Attach(w)
	t.Cleanup(s.Detach)
	if agent == "" {
		srv.Bound(context.Background(), s)
	} else {
		srv.Router.Bind(agentSession{s, agent})
	}
	return s, w
}

func iqResult(t *testing.T, c *conn, srv *Server, el *xmlstream.Element) *xmlstream.Element {
	t.Helper()
	c.send(t, srv, el)
	for _, r := range c.wait() {
		if r.Name == "iq" && r.Attr("id") == el.Attr("id") {
			if r.Attr("type") != "result" {
				t.Fatalf("%s: %s", el, r)
			}
			return r
		}
	}
	t.Fatalf("no answer to %s", el)
	return nil
}

// fastServer is a server with FAST's ad-hoc commands registered as
// cmd/bluetick does.
func fastServer(t *testing.T) (*Server, *fast.Service) {
	srv := newServer(t)
	svc := fast.New(fast.Config{Fast: config.DefaultFast()}, srv.store, nil)
	svc.Kick = srv.KickDevice
	for _, c := range svc.Commands() {
		srv.Mux().Command(c.Node, c.Name, c.Handle)
	}
	return srv, svc
}

func TestAdHocCommandsDisco(t *testing.T) {
	srv, _ := fastServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	info := iqResult(t, alice, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "i1", "to", "localhost").
		Append(xmlstream.New(NSDiscoInfo, "query")))
	found := false
	for _, f := range info.Child(NSDiscoInfo, "query").Elements() {
		if f.Name == "feature" && f.Attr("var") == NSCommands {
			found = true
		}
	}
	if !found {
		t.Fatalf("server disco#info lacks %s: %s", NSCommands, info)
	}
	items := iqResult(t, alice, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "i2", "to", "localhost").
		Append(xmlstream.New(NSDiscoItems, "query", "node", NSCommands)))
	var nodes []string
	for _, it := range items.Child(NSDiscoItems, "query").Elements() {
		if it.Attr("jid") != "localhost" || it.Attr("name") == "" {
			t.Fatalf("item %s", it)
		}
		nodes = append(nodes, it.Attr("node"))
	}
	if len(nodes) != 2 || nodes[0] != fast.NodeListDevices || nodes[1] != fast.NodeRevokeDevice {
		t.Fatalf("command nodes %v", nodes)
	}
	ni := iqResult(t, alice, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "i3", "to", "localhost").
		Append(xmlstream.New(NSDiscoInfo, "query", "node", fast.NodeRevokeDevice)))
	id := ni.Child(NSDiscoInfo, "query").Child(NSDiscoInfo, "identity")
	if id == nil || id.Attr("category") != "automation" || id.Attr("type") != "command-node" {
		t.Fatalf("command node info %s", ni)
	}
	// An unknown node is still item-not-found.
	alice.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "i4", "to", "localhost").
		Append(xmlstream.New(NSDiscoInfo, "query", "node", "nope")))
	if r := alice.wait(); len(r) != 1 || r[0].Attr("type") != "error" {
		t.Fatalf("unknown node: %v", r)
	}
	alice.send(t, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "c0", "to", "localhost").
		Append(xmlstream.New(NSCommands, "command", "node", "nope", "action", "execute")))
	if r := alice.wait(); len(r) != 1 || r[0].Attr("type") != "error" || r[0].Child(xmlstream.NSClient, "error").Child(stanza.NSStanzas, "item-not-found") == nil {
		t.Fatalf("unknown command: %v", r)
	}
}

// TestAdHocRevokeKicks runs the revoke command over the server: the
// chosen device's tokens go and its session is disconnected; the
// requester and the other devices stay.
func TestAdHocRevokeKicks(t *testing.T) {
	srv, svc := fastServer(t)
	ctx := context.Background()
	for _, a := range []string{"phone", "tablet"} {
		if _, err := svc.Issue(ctx, "alice", fast.Client{AgentID: a}, fast.HTSHA256None); err != nil {
			t.Fatal(err)
		}
	}
	_, phoneW := connectAgent(t, srv, "alice@localhost/phone", "phone")
	_, tabletW := connectAgent(t, srv, "alice@localhost/tablet", "tablet")
	_, plainW := connectAgent(t, srv, "alice@localhost/old", "")
	laptop := connect(t, srv, "alice@localhost/laptop")
	submit := func(id string, x *xmlstream.Element) *xmlstream.Element {
		return iqResult(t, laptop, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", id, "to", "localhost").
			Append(xmlstream.New(NSCommands, "command", "node", fast.NodeRevokeDevice).Append(x)))
	}
	form := func(field, value string) *xmlstream.Element {
		return xmlstream.New("jabber:x:data", "x", "type", "submit").Append(
			xmlstream.New("jabber:x:data", "field", "var", field).Append(xmlstream.New("jabber:x:data", "value").AppendText(value)))
	}
	res := submit("c1", form("devices", "phone"))
	if st := res.Child(NSCommands, "command").Attr("status"); st != "completed" {
		t.Fatalf("revoke phone: %s", res)
	}
	if phoneW.closedWith() != "not-authorized" || tabletW.closedWith() != "" || plainW.closedWith() != "" {
		t.Fatalf("after revoking the phone: phone %q tablet %q plain %q", phoneW.closedWith(), tabletW.closedWith(), plainW.closedWith())
	}
	if d, _ := svc.Devices(ctx, "alice"); len(d) != 1 || d[0].AgentID != "tablet" {
		t.Fatalf("devices: %+v", d)
	}
	submit("c2", form("all", "1"))
	if tabletW.closedWith() != "not-authorized" || plainW.closedWith() != "not-authorized" {
		t.Fatalf("after revoking all: tablet %q plain %q", tabletW.closedWith(), plainW.closedWith())
	}
	if srv.Router.Session(jid.MustParse("alice@localhost/laptop")) == nil {
		t.Fatal("the requester's own session was ended")
	}
	// Bob's sessions are never touched.
	if n := srv.KickDevice(ctx, "bob", "", jid.JID{}); n != 0 {
		t.Fatalf("kicked %d of bob's sessions, he has none", n)
	}
}

// TestPasswordChangeRevokesTokens: XEP-0077 password change revokes every
// token of the account; account removal deletes them.
func TestPasswordChangeRevokesTokens(t *testing.T) {
	srv, svc := fastServer(t)
	ctx := context.Background()
	for _, u := range []string{"alice", "bob"} {
		if _, err := svc.Issue(ctx, u, fast.Client{AgentID: "phone"}, fast.HTSHA256None); err != nil {
			t.Fatal(err)
		}
	}
	alice := connect(t, srv, "alice@localhost/pc")
	iqResult(t, alice, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "p1").Append(
		xmlstream.New(NSRegister, "query").Append(
			xmlstream.New(NSRegister, "username").AppendText("alice"),
			xmlstream.New(NSRegister, "password").AppendText("new secret"))))
	toks, _ := srv.store.FastTokens(ctx, "alice")
	if len(toks) != 1 || toks[0].Revoked.IsZero() || toks[0].RevokeReason != fast.RevokedPassword {
		t.Fatalf("alice's tokens after the password change: %+v", toks)
	}
	if d, _ := svc.Devices(ctx, "bob"); len(d) != 1 {
		t.Fatal("bob's token was revoked by alice's password change")
	}
	bob := connect(t, srv, "bob@localhost/pc")
	iqResult(t, bob, srv, xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "r1").Append(
		xmlstream.New(NSRegister, "query").Append(xmlstream.New(NSRegister, "remove"))))
	if toks, _ := srv.store.FastTokens(ctx, "bob"); len(toks) != 0 {
		t.Fatalf("bob's tokens after account removal: %+v", toks)
	}
}
