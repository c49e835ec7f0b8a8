package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/mam"
	"bluetick/internal/privacy"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// newArchiveServer is newServer with archive.mode = "archive".
func newArchiveServer(t testing.TB) *Server {
	t.Helper()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Archive.Mode = "archive"
	st, err := sqlite.Open(cfg.DBPath())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob", "carol"} {
		if err := st.CreateUser(context.Background(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	return New(cfg, st, slog.New(slog.NewTextHandler(io.Discard, nil)))
}

func chat(to, body string) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "message", "to", to, "type", "chat", "id", NewID()).
		Append(xmlstream.New(xmlstream.NSClient, "body").AppendText(body))
}

func iqSet(payload *xmlstream.Element) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", NewID()).Append(payload)
}

func iqGet(payload *xmlstream.Element) *xmlstream.Element {
	return xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", NewID()).Append(payload)
}

// field builds a data form field.
func field(name string, values ...string) *xmlstream.Element {
	f := xmlstream.New(mam.NSData, "field", "var", name)
	for _, v := range values {
		f.Append(xmlstream.New(mam.NSData, "value").AppendText(v))
	}
	return f
}

type mamAnswer struct {
	results []*xmlstream.Element // <result/> elements, in order
	iq      *xmlstream.Element
}

func (a mamAnswer) ids() []string {
	var out []string
	for _, r := range a.results {
		out = append(out, r.Attr("id"))
	}
	return out
}

func (a mamAnswer) bodies() []string {
	var out []string
	for _, r := range a.results {
		out = append(out, r.Child(mam.NSForward, "forwarded").Child(xmlstream.NSClient, "message").ChildText(xmlstream.NSClient, "body"))
	}
	return out
}

func (a mamAnswer) complete() bool {
	return a.iq.Child(mam.NS, "fin").Attr("complete") == "true"
}

func (a mamAnswer) errCondition() string {
	if a.iq.Attr("type") != "error" {
		return ""
	}
	for _, c := range a.iq.Child(xmlstream.NSClient, "error").Elements() {
		if c.Space == stanza.NSStanzas && c.Name != "text" {
			return c.Name
		}
	}
	return "?"
}

// mamQuery sends a query with the given form fields and RSM children and
// collects the answer.
func mamQuery(t *testing.T, srv *Server, c *conn, queryID string, fields []*xmlstream.Element, rsm ...*xmlstream.Element) mamAnswer {
	t.Helper()
	q := xmlstream.New(mam.NS, "query")
	if queryID != "" {
		q.SetAttr("queryid", queryID)
	}
	if fields != nil {
		x := xmlstream.New(mam.NSData, "x", "type", "submit").Append(field("FORM_TYPE", mam.NS))
		q.Append(x.Append(fields...))
	}
	if rsm != nil {
		q.Append(xmlstream.New(mam.NSRSM, "set").Append(rsm...))
	}
	iq := iqSet(q)
	c.send(t, srv, iq)
	var a mamAnswer
	for _, el := range c.until(t, iq.Attr("id")) {
		switch {
		case el.Name == "message" && el.Child(mam.NS, "result") != nil:
			if a.iq != nil {
				t.Fatal("a result arrived after the IQ result")
			}
			r := el.Child(mam.NS, "result")
			if r.Attr("queryid") != queryID {
				t.Fatalf("queryid %q, want %q", r.Attr("queryid"), queryID)
			}
			if el.Attr("from") != c.s.JID().Bare().String() || el.Attr("to") != c.s.JID().String() {
				t.Fatalf("result from %q to %q", el.Attr("from"), el.Attr("to"))
			}
			a.results = append(a.results, r)
		case el.Name == "iq" && el.Attr("id") == iq.Attr("id"):
			a.iq = el
		}
	}
	if a.iq == nil {
		t.Fatal("no IQ answer to the query")
	}
	return a
}

// until collects what c receives up to the IQ answer with that id.
func (c *conn) until(t *testing.T, id string) []*xmlstream.Element {
	t.Helper()
	var out []*xmlstream.Element
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out = append(out, c.sink.take()...)
		for _, el := range out {
			if el.Name == "iq" && el.Attr("id") == id {
				return out
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no answer to iq %s", id)
	return nil
}

func rsmEl(name, text string) *xmlstream.Element {
	return xmlstream.New(mam.NSRSM, name).AppendText(text)
}

func hasFeature(t *testing.T, srv *Server, c *conn, to, feature string) bool {
	t.Helper()
	iq := iqGet(xmlstream.New(NSDiscoInfo, "query"))
	iq.SetAttr("to", to)
	c.send(t, srv, iq)
	for _, el := range c.until(t, iq.Attr("id")) {
		if q := el.Child(NSDiscoInfo, "query"); q != nil {
			for _, f := range q.Elements() {
				if f.Attr("var") == feature {
					return true
				}
			}
		}
	}
	return false
}

func TestMAMOffByDefault(t *testing.T) {
	srv := newServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	if hasFeature(t, srv, alice, "alice@localhost", mam.NS) {
		t.Fatal("MAM advertised in archive mode none")
	}
	alice.send(t, srv, chat("bob@localhost", "hello"))
	a := mamQuery(t, srv, alice, "q", nil)
	if a.errCondition() != "service-unavailable" {
		t.Fatalf("query without archive: %v", a.iq)
	}
	if !hasFeature(t, srv, alice, "localhost", privacy.NSBlocking) || !hasFeature(t, srv, alice, "alice@localhost", privacy.NSLastSeen) {
		t.Fatal("blocking / last seen not advertised")
	}
}

func TestMAMArchivesBothSides(t *testing.T) {
	srv := newArchiveServer(t)
	pc := connect(t, srv, "alice@localhost/pc")
	phone := connect(t, srv, "alice@localhost/phone")
	bob := connect(t, srv, "bob@localhost/x")
	for _, c := range []*conn{pc, phone, bob} {
		c.send(t, srv, presence())
	}
	pc.wait()
	bob.wait()
	phone.wait()
	carbonsOn(t, srv, phone)
	for _, f := range []string{mam.NS, mam.NSExtended} {
		if !hasFeature(t, srv, pc, "alice@localhost", f) {
			t.Fatalf("%s not advertised on the account", f)
		}
	}

	pc.send(t, srv, chat("bob@localhost", "hi bob"))
	got := bob.wait()
	if len(got) != 1 {
		t.Fatalf("bob got %v", got)
	}
	bobSID := got[0].Child(NSSID, "stanza-id")
	if bobSID.Attr("by") != "bob@localhost" {
		t.Fatalf("bob's stanza-id %v", bobSID)
	}
	cc := phone.wait()
	if len(cc) != 1 {
		t.Fatalf("phone got %v", cc)
	}
	inner := cc[0].Child(NSCarbons, "sent").Child(nsForward, "forwarded").Child(xmlstream.NSClient, "message")
	sids := []*xmlstream.Element{}
	for _, c := range inner.Elements() {
		if c.Space == NSSID && c.Name == "stanza-id" {
			sids = append(sids, c)
		}
	}
	if len(sids) != 1 || sids[0].Attr("by") != "alice@localhost" {
		t.Fatalf("sent carbon stanza-ids %v, want one by alice", sids)
	}
	// A chat state alone and a no-store message are not archived; a
	// reply is.
	pc.send(t, srv, xmlstream.New(xmlstream.NSClient, "message", "to", "bob@localhost", "type", "chat").
		Append(xmlstream.New("http://jabber.org/protocol/chatstates", "composing")))
	pc.send(t, srv, chat("bob@localhost", "secret").Append(xmlstream.New(mam.NSHints, "no-store")))
	bob.send(t, srv, chat("alice@localhost", "hi alice"))
	bob.wait()
	phone.wait()
	pc.wait()

	a := mamQuery(t, srv, bob, "bq", []*xmlstream.Element{})
	if !slices.Equal(a.ids(), []string{bobSID.Attr("id"), a.ids()[len(a.ids())-1]}) || !slices.Equal(a.bodies(), []string{"hi bob", "hi alice"}) || !a.complete() {
		t.Fatalf("bob's archive: ids %v bodies %v complete %v (want first id %s)", a.ids(), a.bodies(), a.complete(), bobSID.Attr("id"))
	}
	fwd := a.results[0].Child(mam.NSForward, "forwarded")
	if fwd.Child(mam.NSDelay, "delay") == nil || fwd.Child(xmlstream.NSClient, "message").Attr("from") != "alice@localhost/pc" {
		t.Fatalf("forwarded = %v", fwd)
	}
	fin := a.iq.Child(mam.NS, "fin").Child(mam.NSRSM, "set")
	if fin.ChildText(mam.NSRSM, "first") != a.ids()[0] || fin.ChildText(mam.NSRSM, "last") != a.ids()[1] {
		t.Fatalf("fin = %v", fin)
	}
	a = mamQuery(t, srv, phone, "aq", nil)
	if len(a.ids()) != 2 || a.ids()[0] != sids[0].Attr("id") || !slices.Equal(a.bodies(), []string{"hi bob", "hi alice"}) {
		t.Fatalf("alice's archive: ids %v bodies %v, want first id %s", a.ids(), a.bodies(), sids[0].Attr("id"))
	}
	// Nobody else may read it.
	iq := iqSet(xmlstream.New(mam.NS, "query"))
	iq.SetAttr("to", "bob@localhost")
	pc.send(t, srv, iq)
	if r := pc.wait(); len(r) != 1 || r[0].Child(xmlstream.NSClient, "error").Child(stanza.NSStanzas, "forbidden") == nil {
		t.Fatalf("query of another's archive: %v", r)
	}
}

func TestMAMPagingAndFilters(t *testing.T) {
	srv := newArchiveServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/x")
	carol := connect(t, srv, "carol@localhost/x")
	var want []string
	start := time.Now()
	for i := range 120 {
		from, to := alice, "bob@localhost"
		switch i % 3 {
		case 1:
			from, to = bob, "alice@localhost"
		case 2:
			from, to = carol, "alice@localhost"
		}
		body := fmt.Sprintf("m%03d", i)
		from.send(t, srv, chat(to, body))
		want = append(want, body)
	}
	bob.sink.take()
	carol.sink.take()
	alice.sink.take()

	// Forward, 50 at a time.
	var got []string
	after := ""
	for page := 0; ; page++ {
		var rsm []*xmlstream.Element
		rsm = append(rsm, rsmEl("max", "50"))
		if after != "" {
			rsm = append(rsm, rsmEl("after", after))
		}
		a := mamQuery(t, srv, alice, "p", nil, rsm...)
		got = append(got, a.bodies()...)
		if a.complete() {
			break
		}
		if page > 3 || len(a.results) != 50 {
			t.Fatalf("page %d: %d results", page, len(a.results))
		}
		after = a.ids()[len(a.ids())-1]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("forward paging: %v", got)
	}
	// Backward from the end with <before/>.
	got = nil
	before := ""
	for {
		a := mamQuery(t, srv, alice, "b", nil, rsmEl("max", "50"), rsmEl("before", before))
		got = append(a.bodies(), got...)
		if a.complete() {
			break
		}
		before = a.ids()[0]
	}
	if !slices.Equal(got, want) {
		t.Fatalf("backward paging: %v", got)
	}
	// with: only carol's.
	a := mamQuery(t, srv, alice, "w", []*xmlstream.Element{field("with", "carol@localhost")}, rsmEl("max", "100"))
	if len(a.results) != 40 || a.bodies()[0] != "m002" {
		t.Fatalf("with carol: %d results, first %v", len(a.results), a.bodies()[:1])
	}
	// start after everything: nothing; end before everything: nothing.
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	if a := mamQuery(t, srv, alice, "s", []*xmlstream.Element{field("start", future)}); len(a.results) != 0 || !a.complete() {
		t.Fatalf("start in the future: %d", len(a.results))
	}
	past := start.Add(-time.Hour).UTC().Format(time.RFC3339)
	if a := mamQuery(t, srv, alice, "e", []*xmlstream.Element{field("end", past)}); len(a.results) != 0 {
		t.Fatalf("end in the past: %d", len(a.results))
	}
	// before-id / after-id / ids (#extended) and flip-page.
	all := mamQuery(t, srv, alice, "all", nil, rsmEl("max", "250"))
	ids := all.ids()
	a = mamQuery(t, srv, alice, "x", []*xmlstream.Element{field("after-id", ids[10]), field("before-id", ids[14])})
	if !slices.Equal(a.ids(), ids[11:14]) {
		t.Fatalf("after-id/before-id: %v", a.ids())
	}
	a = mamQuery(t, srv, alice, "i", []*xmlstream.Element{field("ids", ids[5], ids[3])})
	if !slices.Equal(a.ids(), []string{ids[3], ids[5]}) {
		t.Fatalf("ids: %v", a.ids())
	}
	q := xmlstream.New(mam.NS, "query", "queryid", "f").Append(
		xmlstream.New(mam.NSRSM, "set").Append(rsmEl("max", "3")), xmlstream.New(mam.NS, "flip-page"))
	fq := iqSet(q)
	alice.send(t, srv, fq)
	var flipped []string
	for _, el := range alice.until(t, fq.Attr("id")) {
		if r := el.Child(mam.NS, "result"); r != nil {
			flipped = append(flipped, r.Attr("id"))
		}
	}
	if !slices.Equal(flipped, []string{ids[2], ids[1], ids[0]}) {
		t.Fatalf("flip-page: %v", flipped)
	}

	// Errors.
	for _, c := range []struct {
		fields []*xmlstream.Element
		rsm    []*xmlstream.Element
		want   string
	}{
		{nil, []*xmlstream.Element{rsmEl("after", "no-such-id")}, "item-not-found"},
		{[]*xmlstream.Element{field("after-id", "no-such-id")}, nil, "item-not-found"},
		{[]*xmlstream.Element{field("ids", "no-such-id")}, nil, "item-not-found"},
		{[]*xmlstream.Element{field("start", "yesterday")}, nil, "bad-request"},
		{[]*xmlstream.Element{field("with", "@@bad")}, nil, "jid-malformed"},
		{[]*xmlstream.Element{field("mood", "x")}, nil, "feature-not-implemented"},
		{nil, []*xmlstream.Element{rsmEl("max", "-1")}, "bad-request"},
		{nil, []*xmlstream.Element{rsmEl("index", "3")}, "feature-not-implemented"},
	} {
		if got := mamQuery(t, srv, alice, "err", c.fields, c.rsm...).errCondition(); got != c.want {
			t.Errorf("fields %v rsm %v: %q, want %q", c.fields, c.rsm, got, c.want)
		}
	}
	// Metadata.
	alice.send(t, srv, iqGet(xmlstream.New(mam.NS, "metadata")))
	md := alice.wait()[0].Child(mam.NS, "metadata")
	if md.Child(mam.NS, "start").Attr("id") != ids[0] || md.Child(mam.NS, "end").Attr("id") != ids[len(ids)-1] {
		t.Fatalf("metadata %v", md)
	}
}

func TestMAMPrefs(t *testing.T) {
	srv := newArchiveServer(t)
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/x")
	carol := connect(t, srv, "carol@localhost/x")
	alice.send(t, srv, iqGet(xmlstream.New(mam.NS, "prefs")))
	if p := alice.wait()[0].Child(mam.NS, "prefs"); p.Attr("default") != "always" {
		t.Fatalf("default prefs %v", p)
	}
	set := xmlstream.New(mam.NS, "prefs", "default", "always").Append(
		xmlstream.New(mam.NS, "never").Append(xmlstream.New(mam.NS, "jid").AppendText("bob@localhost")))
	alice.send(t, srv, iqSet(set))
	if r := alice.wait(); r[0].Attr("type") != "result" || r[0].Child(mam.NS, "prefs").Attr("default") != "always" {
		t.Fatalf("set prefs: %v", r)
	}
	bob.send(t, srv, chat("alice@localhost", "from bob"))
	carol.send(t, srv, chat("alice@localhost", "from carol"))
	alice.sink.take()
	if a := mamQuery(t, srv, alice, "q", nil); !slices.Equal(a.bodies(), []string{"from carol"}) {
		t.Fatalf("alice's archive with bob never: %v", a.bodies())
	}
	if a := mamQuery(t, srv, bob, "q", nil); !slices.Equal(a.bodies(), []string{"from bob"}) {
		t.Fatalf("bob's archive: %v", a.bodies())
	}
	// roster default: carol is not in alice's roster.
	alice.send(t, srv, iqSet(xmlstream.New(mam.NS, "prefs", "default", "roster")))
	alice.wait()
	carol.send(t, srv, chat("alice@localhost", "carol again"))
	alice.sink.take()
	if a := mamQuery(t, srv, alice, "q", nil); len(a.results) != 1 {
		t.Fatalf("roster default archived a stranger: %v", a.bodies())
	}
	alice.send(t, srv, iqSet(xmlstream.New(mam.NS, "prefs", "default", "sometimes")))
	if r := alice.wait(); r[0].Attr("type") != "error" {
		t.Fatalf("bad default accepted: %v", r)
	}
}

func errorOf(el *xmlstream.Element) (cond string, blocked bool) {
	e := el.Child(xmlstream.NSClient, "error")
	if e == nil {
		return "", false
	}
	for _, c := range e.Elements() {
		if c.Space == stanza.NSStanzas && c.Name != "text" {
			cond = c.Name
		}
		if c.Space == privacy.NSErrors && c.Name == "blocked" {
			blocked = true
		}
	}
	return cond, blocked
}

func TestBlocking(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	srv.store.PutRosterItem(ctx, "alice", store.RosterItem{Contact: "bob@localhost", Subscription: store.SubBoth, InRoster: true})
	srv.store.PutRosterItem(ctx, "bob", store.RosterItem{Contact: "alice@localhost", Subscription: store.SubBoth, InRoster: true})
	pc := connect(t, srv, "alice@localhost/pc")
	phone := connect(t, srv, "alice@localhost/phone")
	bob := connect(t, srv, "bob@localhost/x")
	for _, c := range []*conn{pc, phone, bob} {
		c.send(t, srv, presence())
	}
	// The phone asks for the blocklist; the pc does not.
	phone.send(t, srv, iqGet(xmlstream.New(privacy.NSBlocking, "blocklist")))
	if r := phone.wait(); len(r) == 0 || r[len(r)-1].Child(privacy.NSBlocking, "blocklist") == nil {
		t.Fatalf("blocklist get: %v", r)
	}
	pc.wait()
	bob.wait()

	pc.send(t, srv, iqSet(xmlstream.New(privacy.NSBlocking, "block").Append(xmlstream.New(privacy.NSBlocking, "item", "jid", "bob@localhost"))))
	var result bool
	for _, el := range pc.wait() {
		if el.Name == "iq" && el.Attr("type") == "result" {
			result = true
		}
		if el.Name == "iq" && el.Attr("type") == "set" {
			t.Fatalf("pc got a push without asking for the blocklist: %v", el)
		}
	}
	if !result {
		t.Fatal("no result for block")
	}
	var push, gone bool
	for _, el := range phone.wait() {
		if el.Name == "iq" && el.Attr("type") == "set" && el.Child(privacy.NSBlocking, "block").Child(privacy.NSBlocking, "item").Attr("jid") == "bob@localhost" {
			push = true
		}
		if el.Name == "presence" && el.Attr("type") == "unavailable" && el.Attr("from") == "bob@localhost/x" {
			gone = true
		}
	}
	if !push || !gone {
		t.Fatalf("phone: push=%v bob-unavailable=%v", push, gone)
	}
	unavail := 0
	for _, el := range bob.wait() {
		if el.Name == "presence" && el.Attr("type") == "unavailable" {
			unavail++
		}
	}
	if unavail != 2 {
		t.Fatalf("bob saw %d of alice's resources go unavailable, want 2", unavail)
	}

	// Inbound: bob's message bounces with service-unavailable.
	bob.send(t, srv, chat("alice@localhost", "hello?"))
	r := bob.wait()
	if len(r) != 1 {
		t.Fatalf("bob got %v", r)
	}
	if cond, _ := errorOf(r[0]); cond != "service-unavailable" {
		t.Fatalf("bob's message to a blocker: %v", r[0])
	}
	if got := pc.wait(); len(got) != 0 {
		t.Fatalf("alice got %v from a blocked contact", got)
	}
	// Outbound: alice's message is refused with <blocked/>.
	pc.send(t, srv, chat("bob@localhost/x", "hi"))
	r = pc.wait()
	if cond, blocked := errorOf(r[0]); cond != "not-acceptable" || !blocked {
		t.Fatalf("alice's message to a blocked JID: %v", r[0])
	}
	if got := bob.wait(); len(got) != 0 {
		t.Fatalf("bob got %v", got)
	}
	// IQ from bob: service-unavailable; presence from bob: dropped.
	iq := iqGet(xmlstream.New(NSPing, "ping"))
	iq.SetAttr("to", "alice@localhost/pc")
	bob.send(t, srv, iq)
	if r := bob.wait(); len(r) != 1 || r[0].Attr("type") != "error" {
		t.Fatalf("bob's iq: %v", r)
	}
	bob.send(t, srv, presence("type", "unavailable"))
	bob.send(t, srv, presence())
	if got := pc.wait(); len(got) != 0 {
		t.Fatalf("alice got bob's presence: %v", got)
	}
	// Last activity of alice is not answered to bob either.
	la := iqGet(xmlstream.New(NSLast, "query"))
	la.SetAttr("to", "alice@localhost")
	bob.send(t, srv, la)
	if r := bob.until(t, la.Attr("id")); r[len(r)-1].Attr("type") != "error" {
		t.Fatalf("bob's last activity query: %v", r)
	}

	// Unblock all: messages flow, presence comes back.
	phone.send(t, srv, iqSet(xmlstream.New(privacy.NSBlocking, "unblock")))
	phone.wait()
	var avail bool
	for _, el := range bob.wait() {
		if el.Name == "presence" && el.Attr("type") == "" && el.Attr("from") == "alice@localhost/pc" {
			avail = true
		}
	}
	if !avail {
		t.Fatal("bob did not get alice's presence after the unblock")
	}
	bob.send(t, srv, chat("alice@localhost", "back"))
	got := pc.wait()
	if len(got) == 0 || got[len(got)-1].ChildText(xmlstream.NSClient, "body") != "back" {
		t.Fatalf("after unblock alice got %v", got)
	}

	// Domain and full-JID items; bad input.
	pc.send(t, srv, iqSet(xmlstream.New(privacy.NSBlocking, "block").Append(xmlstream.New(privacy.NSBlocking, "item", "jid", "carol@localhost/evil"))))
	pc.wait()
	carolEvil := connect(t, srv, "carol@localhost/evil")
	carolOK := connect(t, srv, "carol@localhost/ok")
	carolEvil.send(t, srv, chat("alice@localhost", "x"))
	if cond, _ := errorOf(carolEvil.wait()[0]); cond != "service-unavailable" {
		t.Fatal("full-JID block did not apply")
	}
	carolOK.send(t, srv, chat("alice@localhost", "y"))
	if r := carolOK.wait(); len(r) != 0 {
		t.Fatalf("other resource of a full-JID block refused: %v", r)
	}
	if r := pc.wait(); len(r) != 1 || r[0].ChildText(xmlstream.NSClient, "body") != "y" {
		t.Fatalf("alice got %v from carol's unblocked resource", r)
	}
	for _, bad := range []*xmlstream.Element{
		xmlstream.New(privacy.NSBlocking, "block"),
		xmlstream.New(privacy.NSBlocking, "block").Append(xmlstream.New(privacy.NSBlocking, "item")),
		xmlstream.New(privacy.NSBlocking, "block").Append(xmlstream.New(privacy.NSBlocking, "item", "jid", "a@b@c")),
	} {
		pc.send(t, srv, iqSet(bad))
		if r := pc.wait(); len(r) != 1 || r[0].Attr("type") != "error" {
			t.Fatalf("bad block %v: %v", bad, r)
		}
	}
	pc.send(t, srv, iqGet(xmlstream.New(privacy.NSBlocking, "blocklist")))
	items := pc.wait()[0].Child(privacy.NSBlocking, "blocklist").Elements()
	if len(items) != 1 || items[0].Attr("jid") != "carol@localhost/evil" {
		t.Fatalf("blocklist = %v", items)
	}
}

func TestLastSeenVisibility(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	srv.store.PutRosterItem(ctx, "bob", store.RosterItem{Contact: "alice@localhost", Subscription: store.SubFrom, InRoster: true})
	srv.store.SetLastActivity(ctx, "bob", time.Now().Add(-time.Minute), "")
	alice := connect(t, srv, "alice@localhost/pc")
	bob := connect(t, srv, "bob@localhost/pc")
	carol := connect(t, srv, "carol@localhost/pc")
	ask := func(c *conn) string {
		iq := iqGet(xmlstream.New(NSLast, "query"))
		iq.SetAttr("to", "bob@localhost")
		c.send(t, srv, iq)
		r := c.wait()
		if len(r) != 1 {
			t.Fatalf("got %v", r)
		}
		cond, _ := errorOf(r[0])
		return cond
	}
	set := func(v string) string {
		bob.send(t, srv, iqSet(xmlstream.New(privacy.NSLastSeen, "visibility", "value", v)))
		cond, _ := errorOf(bob.wait()[0])
		return cond
	}
	bob.send(t, srv, iqGet(xmlstream.New(privacy.NSLastSeen, "visibility")))
	if v := bob.wait()[0].Child(privacy.NSLastSeen, "visibility").Attr("value"); v != "contacts" {
		t.Fatalf("default visibility %q", v)
	}
	if ask(alice) != "" || ask(carol) != "forbidden" {
		t.Fatal("contacts: wrong answers")
	}
	set("everyone")
	if ask(alice) != "" || ask(carol) != "" {
		t.Fatal("everyone: wrong answers")
	}
	set("nobody")
	if ask(alice) != "forbidden" || ask(carol) != "forbidden" {
		t.Fatal("nobody: wrong answers")
	}
	if set("friends") != "bad-request" {
		t.Fatal("bad value accepted")
	}
	// The user itself still sees its own.
	iq := iqGet(xmlstream.New(NSLast, "query"))
	iq.SetAttr("to", "bob@localhost")
	bob.send(t, srv, iq)
	if r := bob.wait(); r[0].Attr("type") != "result" {
		t.Fatalf("own last activity: %v", r)
	}
}

// BenchmarkRouteMessageArchived is BenchmarkRouteMessage in archive mode,
// with 8 senders at once: every message is also written to two archives.
func BenchmarkRouteMessageArchived(b *testing.B) {
	srv := newArchiveServer(b)
	ctx := context.Background()
	for i := range 8 {
		srv.store.CreateUser(ctx, fmt.Sprintf("s%d", i), nil)
	}
	bob := connect(b, srv, "bob@localhost/phone")
	bob.sink.discard = true
	srv.Handle(ctx, bob.s, presence())
	var senders []*conn
	for i := range 8 {
		senders = append(senders, connect(b, srv, fmt.Sprintf("s%d@localhost/pc", i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		c := senders[next.Add(1)%8]
		for pb.Next() {
			srv.Handle(ctx, c.s, chat("bob@localhost", "hello, this is a typical short message"))
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// TestBlockDropsStoredMessages: messages a contact sent while the user
// was offline are not delivered once the user has blocked the contact.
func TestBlockDropsStoredMessages(t *testing.T) {
	srv := newServer(t)
	ctx := context.Background()
	bob := connect(t, srv, "bob@localhost/x")
	carol := connect(t, srv, "carol@localhost/x")
	for i := range 3 {
		bob.send(t, srv, chat("alice@localhost", fmt.Sprintf("bob %d", i)))
	}
	carol.send(t, srv, chat("alice@localhost", "carol"))
	if n, _ := srv.store.CountOffline(ctx, "alice"); n != 4 {
		t.Fatalf("%d offline", n)
	}
	if err := srv.priv.blocker.Block(ctx, "alice", []jid.JID{jid.MustParse("bob@localhost")}); err != nil {
		t.Fatal(err)
	}
	alice := connect(t, srv, "alice@localhost/pc")
	alice.send(t, srv, presence())
	var bodies []string
	for _, el := range alice.wait() {
		if b := el.ChildText(xmlstream.NSClient, "body"); b != "" {
			bodies = append(bodies, b)
		}
	}
	if !slices.Equal(bodies, []string{"carol"}) {
		t.Fatalf("alice got %v after blocking bob", bodies)
	}
}
