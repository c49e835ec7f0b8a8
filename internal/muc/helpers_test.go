package muc_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/muc"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

const room = "team@groups.localhost"

// sink is a session.Writer that keeps what the session writes, standing in
// for a client connection.
type sink struct {
	mu   sync.Mutex
	els  []*xmlstream.Element
	cond chan struct{}
}

func newSink() *sink { return &sink{cond: make(chan struct{}, 1)} }

func (s *sink) Write(els []*xmlstream.Element) error {
	s.mu.Lock()
	s.els = append(s.els, els...)
	s.mu.Unlock()
	select {
	case s.cond <- struct{}{}:
	default:
	}
	return nil
}
func (s *sink) Close(*stanza.StreamError) {}

// env is one node: the IM core, the MUC service and an SQLite store in a
// directory that survives "restarts" (newEnvAt with the same dir).
type env struct {
	t   testing.TB
	dir string
	st  store.Store
	srv *server.Server
	svc *muc.Service
}

func newEnv(t *testing.T) *env { return newEnvAt(t, t.TempDir(), nil) }

func newEnvAt(t testing.TB, dir string, tune func(*config.Config)) *env {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = dir
	if tune != nil {
		tune(&cfg)
	}
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	return newEnvOn(t, cfg, st)
}

// newEnvOn builds the node over an open store (SQLite or PostgreSQL).
func newEnvOn(t testing.TB, cfg config.Config, st store.Store) *env {
	t.Helper()
	for _, u := range []string{"alice", "bob", "carol", "dave", "eve", "mallory"} {
		_ = st.CreateUser(context.Background(), u, nil)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := server.New(cfg, st, log)
	svc, err := muc.New(context.Background(), cfg.MUCDomain(), cfg.MUC, st, srv, log)
	if err != nil {
		t.Fatal(err)
	}
	srv.RegisterService(cfg.MUCDomain(), "Groups", svc)
	e := &env{t: t, dir: cfg.DataDir, st: st, srv: srv, svc: svc}
	t.Cleanup(func() { st.Close() })
	return e
}

// client is a bound session with available presence.
type client struct {
	e    *env
	sess *session.Session
	w    *sink
	seen int
	full jid.JID
}

func (e *env) login(full string) *client {
	e.t.Helper()
	j := jid.MustParse(full)
	s := session.New(server.NewID(), j, 100000, e.srv.Hooks())
	w := newSink()
	s.Attach(w)
	e.srv.Bound(context.Background(), s)
	c := &client{e: e, sess: s, w: w, full: j}
	c.send("<presence xmlns='jabber:client'/>")
	c.until(func(el *xmlstream.Element) bool { return el.Name == "presence" && el.Attr("from") == full })
	return c
}

func (c *client) logout() { c.e.srv.End(context.Background(), c.sess); c.sess.Detach() }

// send parses raw XML as if the client wrote it and hands it to the
// server, which returns when the stanza is handled.
func (c *client) send(raw string, args ...any) {
	c.e.t.Helper()
	el, err := xmlstream.Parse([]byte(fmt.Sprintf(raw, args...)), xmlstream.Limits{})
	if err != nil {
		c.e.t.Fatalf("bad test stanza %q: %v", raw, err)
	}
	c.e.srv.Handle(context.Background(), c.sess, el)
}

// next returns the next element written to the client, waiting up to 2s.
func (c *client) next() *xmlstream.Element {
	c.e.t.Helper()
	deadline := time.After(2 * time.Second)
	for {
		c.w.mu.Lock()
		if c.seen < len(c.w.els) {
			el := c.w.els[c.seen]
			c.seen++
			c.w.mu.Unlock()
			return el
		}
		c.w.mu.Unlock()
		select {
		case <-c.w.cond:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			c.e.t.Fatalf("%s: nothing more arrived", c.full)
			return nil
		}
	}
}

// until skips elements until one matches.
func (c *client) until(match func(*xmlstream.Element) bool) *xmlstream.Element {
	c.e.t.Helper()
	for {
		if el := c.next(); match(el) {
			return el
		}
	}
}

// quiet asserts that nothing matching arrives within a short while.
func (c *client) quiet(match func(*xmlstream.Element) bool) {
	c.e.t.Helper()
	time.Sleep(50 * time.Millisecond)
	c.w.mu.Lock()
	defer c.w.mu.Unlock()
	for _, el := range c.w.els[c.seen:] {
		if match(el) {
			c.e.t.Fatalf("%s got unexpected %s", c.full, el)
		}
	}
	c.seen = len(c.w.els)
}

var seq int

// iq sends an IQ and returns its answer.
func (c *client) iq(to, typ, payload string, args ...any) *xmlstream.Element {
	c.e.t.Helper()
	seq++
	id := fmt.Sprintf("iq%d", seq)
	c.send("<iq xmlns='jabber:client' to='"+to+"' type='"+typ+"' id='"+id+"'>"+payload+"</iq>", args...)
	return c.until(func(el *xmlstream.Element) bool { return el.Name == "iq" && el.Attr("id") == id })
}

// mustOK fails unless the IQ answer is a result.
func mustOK(t testing.TB, res *xmlstream.Element) *xmlstream.Element {
	t.Helper()
	if res.Attr("type") != "result" {
		t.Fatalf("expected a result, got %s", res)
	}
	return res
}

// condition returns the stanza error condition of el, or "".
func condition(el *xmlstream.Element) string {
	if el.Attr("type") != "error" {
		return ""
	}
	e := el.Child(xmlstream.NSClient, "error")
	if e == nil {
		return "?"
	}
	for _, c := range e.Elements() {
		if c.Space == stanza.NSStanzas && c.Name != "text" {
			return c.Name
		}
	}
	return "?"
}

func wantError(t *testing.T, el *xmlstream.Element, cond string) {
	t.Helper()
	if got := condition(el); got != cond {
		t.Fatalf("want error %s, got %s", cond, el)
	}
}

// statuses lists the muc#user status codes of a presence.
func statuses(el *xmlstream.Element) string {
	x := el.Child(muc.NSUser, "x")
	if x == nil {
		return ""
	}
	var out []string
	for _, s := range x.Elements() {
		if s.Name == "status" {
			out = append(out, s.Attr("code"))
		}
	}
	return strings.Join(out, ",")
}

func item(el *xmlstream.Element) *xmlstream.Element {
	if x := el.Child(muc.NSUser, "x"); x != nil {
		return x.Child(muc.NSUser, "item")
	}
	return nil
}

// join enters room with nick and waits for the self-presence (or an error).
func (c *client) join(roomJID, nick string, extra string) *xmlstream.Element {
	c.e.t.Helper()
	c.send("<presence xmlns='jabber:client' to='%s/%s'><x xmlns='http://jabber.org/protocol/muc'>%s</x></presence>", roomJID, nick, extra)
	return c.until(func(el *xmlstream.Element) bool {
		return el.Name == "presence" && strings.HasPrefix(el.Attr("from"), roomJID) &&
			(el.Attr("type") == "error" || strings.Contains(","+statuses(el)+",", ",110,"))
	})
}

func isGroupchat(el *xmlstream.Element) bool {
	return el.Name == "message" && el.Attr("type") == "groupchat" && el.Child(xmlstream.NSClient, "body") != nil
}

// newGroup has alice create and instantly configure the room and add
// members; it returns alice's client, joined.
func (e *env) newGroup(members ...string) *client {
	e.t.Helper()
	alice := e.login("alice@localhost/phone")
	p := alice.join(room, "Alice", "")
	if statuses(p) != "110,100,170,201" {
		e.t.Fatalf("creation presence: %s", p)
	}
	mustOK(e.t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#owner'><x xmlns='jabber:x:data' type='submit'/></query>"))
	for _, m := range members {
		mustOK(e.t, alice.iq(room, "set", "<query xmlns='http://jabber.org/protocol/muc#admin'><item affiliation='member' jid='%s'/></query>", m))
	}
	return alice
}
