package pep

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/offline"
	"bluetick/internal/router"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// env is a PEP service over a real SQLite store and router, with users
// alice, bob and carol and clients whose disco#info the fake query
// answers.
type env struct {
	t      *testing.T
	st     *sqlite.Store
	r      *router.Router
	svc    *Service
	mu     sync.Mutex
	discos map[string]*xmlstream.Element // ver -> disco#info
	asked  int
}

var domain = jid.MustParse("localhost")

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "pep.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob", "carol"} {
		if err := st.CreateUser(t.Context(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := &env{t: t, st: st, discos: map[string]*xmlstream.Element{}}
	e.r = router.New(offline.New(st, "localhost", 0, log), st.UserExists)
	e.svc = New(domain, st, e.r, xmlstream.Limits{}, e.query, log)
	return e
}

// query plays the client's side of a caps disco#info query.
func (e *env) query(ctx context.Context, to jid.JID, payload *xmlstream.Element) (*xmlstream.Element, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.asked++
	node := payload.Attr("node")
	ver := node[strings.LastIndex(node, "#")+1:]
	if q := e.discos[ver]; q != nil {
		return q.Copy(), nil
	}
	return nil, stanza.ErrServiceUnavailable
}

type client struct {
	e    *env
	jid  jid.JID
	s    *session.Session
	sink *xmpptest.Sink
}

// discoInfo builds a client's disco#info with the given features.
func discoInfo(features ...string) *xmlstream.Element {
	q := xmlstream.New(NSDiscoInfo, "query")
	q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "client", "type", "pc", "name", "test"))
	for _, f := range append([]string{NSDiscoInfo, NSCaps}, features...) {
		q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", f))
	}
	return q
}

// connect binds a session; with notify nodes it announces caps listing
// "<node>+notify" for each.
func (e *env) connect(full string, notify ...string) *client {
	e.t.Helper()
	c := &client{e: e, jid: jid.MustParse(full), sink: &xmpptest.Sink{}}
	c.s = session.New(full, c.jid, 1000, session.Hooks{})
	c.s.Attach(c.sink)
	e.t.Cleanup(c.s.Detach)
	e.r.Bind(c.s)
	c.available(notify...)
	return c
}

// available sends available presence with caps for notify (and waits for
// the service's presence work to finish).
func (c *client) available(notify ...string) {
	var feats []string
	for _, n := range notify {
		feats = append(feats, n+"+notify")
	}
	q := discoInfo(feats...)
	ver, err := capsVer(q, "sha-1")
	if err != nil {
		c.e.t.Fatal(err)
	}
	c.e.mu.Lock()
	c.e.discos[ver] = q
	c.e.mu.Unlock()
	p := xmlstream.New(xmlstream.NSClient, "presence")
	p.Append(xmlstream.New(NSCaps, "c", "hash", "sha-1", "node", "https://example.org/test", "ver", ver))
	initial := c.s.SetPresence(p, true, 0)
	c.e.svc.presence(context.Background(), c.s, c.e.svc.state(c.jid), initial)
}

// got returns what the client received so far.
func (c *client) got() []*xmlstream.Element {
	time.Sleep(20 * time.Millisecond)
	return c.sink.Take()
}

// events returns the pubsub#event payloads received.
func (c *client) events() []*xmlstream.Element {
	var out []*xmlstream.Element
	for _, el := range c.got() {
		if ev := el.Child(NSPubSubEvent, "event"); el.Name == "message" && ev != nil {
			if el.Attr("type") != "headline" {
				c.e.t.Errorf("notification of type %q, want headline", el.Attr("type"))
			}
			out = append(out, ev.FirstChild())
		}
	}
	return out
}

func parse(t *testing.T, s string) *xmlstream.Element {
	t.Helper()
	el, err := xmlstream.Parse([]byte(s), xmlstream.Limits{})
	if err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return el
}

// iq runs one request from c to the bare JID to ("" = own account) and
// returns the result payload or error.
func (c *client) iq(typ, to, payload string) (*xmlstream.Element, error) {
	c.e.t.Helper()
	p := parse(c.e.t, payload)
	dest := c.jid.Bare()
	if to != "" {
		dest = jid.MustParse(to)
	}
	r := &Request{From: c.jid, To: dest, Type: typ, Payload: p}
	ctx := context.Background()
	switch p.Space {
	case NSPubSub:
		return c.e.svc.PubSub(ctx, r)
	case NSPubSubOwner:
		return c.e.svc.PubSubOwner(ctx, r)
	case NSPrivate:
		return c.e.svc.Private(ctx, r)
	case NSVCard:
		return c.e.svc.VCard(ctx, r)
	}
	c.e.t.Fatalf("no handler for %s", p.Space)
	return nil, nil
}

func (c *client) must(typ, to, payload string) *xmlstream.Element {
	c.e.t.Helper()
	res, err := c.iq(typ, to, payload)
	if err != nil {
		c.e.t.Fatalf("%s %s: %v", typ, payload, err)
	}
	return res
}

// wantErr checks the stanza error condition and, if app is set, the
// pubsub#errors condition.
func wantErr(t *testing.T, err error, cond, app string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %s/%s", cond, app)
	}
	se := stanza.AsError(err)
	if se.Condition != cond {
		t.Fatalf("error %v, want condition %s", err, cond)
	}
	if app != "" && (se.App == nil || se.App.Name != app || se.App.Space != NSPubSubErrs) {
		t.Fatalf("error %v has app condition %v, want %s", err, se.App, app)
	}
}

// subscribe sets a mutual or one-way presence subscription in the store:
// owner's item for contact gets sub, contact's item for owner the mirror.
func (e *env) subscribe(owner, contact, sub string, groups ...string) {
	e.t.Helper()
	mirror := map[string]string{store.SubFrom: store.SubTo, store.SubTo: store.SubFrom, store.SubBoth: store.SubBoth, store.SubNone: store.SubNone}[sub]
	ctx := context.Background()
	if _, err := e.st.PutRosterItem(ctx, owner, store.RosterItem{Contact: contact + "@localhost", Subscription: sub, Groups: groups, InRoster: true}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := e.st.PutRosterItem(ctx, contact, store.RosterItem{Contact: owner + "@localhost", Subscription: mirror, InRoster: true}); err != nil {
		e.t.Fatal(err)
	}
}

const (
	nodeNick    = "http://jabber.org/protocol/nick"
	nodeDevices = "eu.siacs.conversations.axolotl.devicelist"
)

func publishXML(node, id, payload, opts string) string {
	item := "<item>" + payload + "</item>"
	if id != "" {
		item = "<item id='" + id + "'>" + payload + "</item>"
	}
	s := "<pubsub xmlns='" + NSPubSub + "'><publish node='" + node + "'>" + item + "</publish>"
	if opts != "" {
		s += "<publish-options><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE' type='hidden'><value>" + NSPublishOpts + "</value></field>" + opts + "</x></publish-options>"
	}
	return s + "</pubsub>"
}

func opt(name, value string) string {
	return "<field var='" + name + "'><value>" + value + "</value></field>"
}

func itemsXML(node string, extra string) string {
	return "<pubsub xmlns='" + NSPubSub + "'><items node='" + node + "'" + extra + "</pubsub>"
}

// ids returns the item ids in a retrieval result.
func ids(t *testing.T, res *xmlstream.Element) []string {
	t.Helper()
	items := res.Child(NSPubSub, "items")
	if items == nil {
		t.Fatalf("no <items/> in %s", res)
	}
	var out []string
	for _, it := range items.Elements() {
		out = append(out, it.Attr("id"))
	}
	return out
}

// state returns the service's state of a session, as Presence keeps it.
func (s *Service) state(full jid.JID) *sessState {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.sessions[full]
	if st == nil {
		st = &sessState{}
		s.sessions[full] = st
	}
	return st
}
