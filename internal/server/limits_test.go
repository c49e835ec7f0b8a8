package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"bluetick/internal/config"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// newServerWith is newServer with a changed configuration and extra
// accounts.
func newServerWith(t testing.TB, mod func(*config.Config), extra ...string) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if mod != nil {
		mod(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range append([]string{"alice", "bob", "carol"}, extra...) {
		if err := st.CreateUser(context.Background(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	return New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// users returns the names u0..u(n-1).
func users(n int) []string {
	var us []string
	for i := range n {
		us = append(us, fmt.Sprintf("u%d", i))
	}
	return us
}

// errCondition returns the stanza error condition of el ("" if none).
func errCondition(el *xmlstream.Element) string {
	if el.Attr("type") != "error" {
		return ""
	}
	e := el.Child(xmlstream.NSClient, "error")
	if e == nil {
		return ""
	}
	for _, c := range e.Elements() {
		if c.Space == stanza.NSStanzas && c.Name != "text" {
			return c.Name
		}
	}
	return ""
}

// subscribes counts the subscription requests from "from" among els.
func subscribes(els []*xmlstream.Element, from string) int {
	n := 0
	for _, el := range els {
		if el.Name == "presence" && el.Attr("type") == "subscribe" && el.Attr("from") == from {
			n++
		}
	}
	return n
}

func counts(t *testing.T, srv *Server, user string) (items, pending int) {
	t.Helper()
	items, pending, err := srv.store.RosterCounts(context.Background(), user)
	if err != nil {
		t.Fatal(err)
	}
	return items, pending
}

// RFC 6121 §3.1.3 and Appendix A.2.1: a subscribe while the contact has
// the request pending already is not delivered again.
func TestSubscriptionSpamCollapsedOnline(t *testing.T) {
	srv := newServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/phone")
	bob.send(t, srv, presence())
	bob.wait()
	for range 2000 {
		alice.send(t, srv, presence("to", "bob@localhost", "type", "subscribe"))
	}
	if n := subscribes(bob.wait(), "alice@localhost"); n != 1 {
		t.Fatalf("bob was shown %d subscription requests from alice, want 1", n)
	}
	for _, el := range alice.wait() {
		if errCondition(el) != "" {
			t.Fatalf("a repeated request is absorbed quietly, alice got %v", el)
		}
	}
	// Still one after bob's next login.
	bob.send(t, srv, presence("type", "unavailable"))
	bob2 := connect(t, srv, "bob@localhost/tablet")
	bob2.send(t, srv, presence())
	if n := subscribes(bob2.wait(), "alice@localhost"); n != 1 {
		t.Fatalf("at login bob was shown %d requests from alice, want 1", n)
	}
}

func TestSubscriptionSpamCollapsedOffline(t *testing.T) {
	srv := newServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	for range 2000 {
		alice.send(t, srv, presence("to", "bob@localhost", "type", "subscribe"))
	}
	if n, err := srv.store.CountOffline(context.Background(), "bob"); err != nil || n != 0 {
		t.Fatalf("bob has %d offline messages (%v), want none", n, err)
	}
	if items, _ := counts(t, srv, "bob"); items != 1 {
		t.Fatalf("bob's roster holds %d rows, want 1 pending request", items)
	}
	bob := connect(t, srv, "bob@localhost/phone")
	bob.send(t, srv, presence())
	if n := subscribes(bob.wait(), "alice@localhost"); n != 1 {
		t.Fatalf("at login bob was shown %d requests from alice, want 1", n)
	}
}

func TestSubscriptionRateLimited(t *testing.T) {
	srv := newServerWith(t, func(c *config.Config) {
		c.Roster.SubscriptionsPerMinute = 5
		c.Roster.MaxPendingOut = 0
	}, users(10)...)
	alice := connect(t, srv, "alice@localhost/pc")
	refused := 0
	for i := range 10 {
		alice.send(t, srv, presence("to", fmt.Sprintf("u%d@localhost", i), "type", "subscribe"))
		for _, el := range alice.wait() {
			if c := errCondition(el); c != "" {
				if c != "policy-violation" || el.Attr("from") != fmt.Sprintf("u%d@localhost", i) {
					t.Fatalf("refusal = %v", el)
				}
				refused++
			}
		}
	}
	if refused != 5 {
		t.Fatalf("%d of 10 requests refused, want 5 (subscriptions_per_minute = 5)", refused)
	}
	if _, pending := counts(t, srv, "alice"); pending != 5 {
		t.Fatalf("alice has %d requests pending, want 5", pending)
	}
	// A repeated request costs nothing: it is not a new one.
	alice.send(t, srv, presence("to", "u0@localhost", "type", "subscribe"))
	for _, el := range alice.wait() {
		if errCondition(el) != "" {
			t.Fatalf("a repeated request was refused: %v", el)
		}
	}
}

func TestPendingOutCapped(t *testing.T) {
	srv := newServerWith(t, func(c *config.Config) {
		c.Roster.MaxPendingOut = 3
		c.Roster.SubscriptionsPerMinute = 0
	}, users(6)...)
	alice := connect(t, srv, "alice@localhost/pc")
	var conds []string
	for i := range 6 {
		alice.send(t, srv, presence("to", fmt.Sprintf("u%d@localhost", i), "type", "subscribe"))
		for _, el := range alice.wait() {
			if c := errCondition(el); c != "" {
				conds = append(conds, c)
			}
		}
	}
	if len(conds) != 3 || conds[0] != "resource-constraint" {
		t.Fatalf("refusals %v, want 3 resource-constraint", conds)
	}
	if items, pending := counts(t, srv, "alice"); items != 3 || pending != 3 {
		t.Fatalf("alice's roster: %d items, %d pending; want 3, 3 (refused requests leave nothing)", items, pending)
	}
	// An answer frees a place.
	u0 := connect(t, srv, "u0@localhost/x")
	u0.send(t, srv, presence("to", "alice@localhost", "type", "subscribed"))
	alice.wait()
	alice.send(t, srv, presence("to", "u4@localhost", "type", "subscribe"))
	for _, el := range alice.wait() {
		if errCondition(el) != "" {
			t.Fatalf("refused after an answer freed a place: %v", el)
		}
	}
	if _, pending := counts(t, srv, "alice"); pending != 3 {
		t.Fatalf("alice has %d pending, want 3", pending)
	}
}

// RFC 6121 §3.1.3: for an account that does not exist the request is
// refused (unsubscribed) and nothing is kept.
func TestSubscriptionToAbsentAccountNotKept(t *testing.T) {
	srv := newServerWith(t, func(c *config.Config) { c.Roster.SubscriptionsPerMinute = 0 })
	alice := connect(t, srv, "alice@localhost/pc")
	for i := range 200 {
		alice.send(t, srv, presence("to", fmt.Sprintf("ghost%d@localhost", i), "type", "subscribe"))
	}
	refused := map[string]bool{}
	for _, el := range alice.wait() {
		if el.Name == "presence" && el.Attr("type") == "unsubscribed" {
			refused[el.Attr("from")] = true
		}
	}
	if len(refused) != 200 {
		t.Fatalf("%d of 200 requests to absent accounts answered unsubscribed", len(refused))
	}
	if items, pending := counts(t, srv, "alice"); items != 0 || pending != 0 {
		t.Fatalf("alice's roster holds %d items (%d pending) for absent accounts, want none", items, pending)
	}
}

func rosterSet(id, contact, name string) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", id).Append(
		xmlstream.New(NSRoster, "query").Append(xmlstream.New(NSRoster, "item", "jid", contact, "name", name)))
}

func TestRosterLimit(t *testing.T) {
	srv := newServerWith(t, func(c *config.Config) {
		c.Roster.MaxItems = 5
		c.Roster.SubscriptionsPerMinute = 0
	})
	alice := connect(t, srv, "alice@localhost/pc")
	answer := func(el *xmlstream.Element) *xmlstream.Element {
		t.Helper()
		alice.send(t, srv, el)
		for _, r := range alice.wait() {
			if r.Name == el.Name && (r.Attr("id") == el.Attr("id") || r.Attr("type") == "error") {
				return r
			}
		}
		return nil
	}
	for i := range 5 {
		if r := answer(rosterSet(fmt.Sprint("s", i), fmt.Sprintf("c%d@example.org", i), "")); r == nil || r.Attr("type") != "result" {
			t.Fatalf("roster set %d: %v", i, r)
		}
	}
	r := answer(rosterSet("s5", "c5@example.org", ""))
	if r == nil || errCondition(r) != "resource-constraint" || !strings.Contains(r.String(), "5") {
		t.Fatalf("roster set past the limit: %v, want resource-constraint naming the limit", r)
	}
	// Changing an item of a full roster is fine.
	if r := answer(rosterSet("s6", "c1@example.org", "renamed")); r == nil || r.Attr("type") != "result" {
		t.Fatalf("rename in a full roster: %v", r)
	}
	// A subscription that would add an item is refused too.
	if r := answer(presence("to", "bob@localhost", "type", "subscribe")); r == nil || errCondition(r) != "resource-constraint" {
		t.Fatalf("subscribe from a full roster: %v", r)
	}
	if items, _ := counts(t, srv, "alice"); items != 5 {
		t.Fatalf("alice's roster holds %d items, want 5", items)
	}

	// The contact's side: carol's request would add a row to a full
	// roster of bob's; it is refused, and bob sees nothing.
	for i := range 5 {
		if _, err := srv.store.PutRosterItem(context.Background(), "bob", store.RosterItem{Contact: fmt.Sprintf("b%d@example.org", i), Subscription: store.SubNone, InRoster: true}); err != nil {
			t.Fatal(err)
		}
	}
	bob := connect(t, srv, "bob@localhost/phone")
	bob.send(t, srv, presence())
	bob.wait()
	carol := connect(t, srv, "carol@localhost/x")
	carol.send(t, srv, presence("to", "bob@localhost", "type", "subscribe"))
	var refused bool
	for _, el := range carol.wait() {
		refused = refused || errCondition(el) == "resource-constraint"
	}
	if !refused {
		t.Fatal("carol's request to a full roster was not refused")
	}
	if n := subscribes(bob.wait(), "carol@localhost"); n != 0 {
		t.Fatal("bob was shown a request his roster has no room for")
	}
	if _, pending := counts(t, srv, "carol"); pending != 0 {
		t.Fatal("carol's refused request stays pending")
	}
}
