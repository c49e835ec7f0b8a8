package push

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"bluetick/internal/config"
	"bluetick/internal/dataform"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// fakeApp records publishes and answers with err.
type fakeApp struct {
	mu   sync.Mutex
	iqs  []*xmlstream.Element
	err  error
	seen chan struct{}
}

func (a *fakeApp) Publish(ctx context.Context, iq *xmlstream.Element) error {
	a.mu.Lock()
	a.iqs = append(a.iqs, iq)
	err := a.err
	a.mu.Unlock()
	a.seen <- struct{}{}
	return err
}

func (a *fakeApp) published() []*xmlstream.Element {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]*xmlstream.Element(nil), a.iqs...)
}

// wait waits for n publishes, or fails after d.
func (a *fakeApp) wait(t *testing.T, n int, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for i := 0; i < n; i++ {
		select {
		case <-a.seen:
		case <-deadline:
			t.Fatalf("%d of %d publishes after %v", i, n, d)
		}
	}
}

// none asserts no publish happens within d.
func (a *fakeApp) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case <-a.seen:
		t.Fatalf("unexpected publish: %s", a.published()[len(a.published())-1])
	case <-time.After(d):
	}
}

func newService(t *testing.T, mod func(*config.Push)) (*Service, *fakeApp, store.Store) {
	st, err := sqlite.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, u := range []string{"alice", "bob"} {
		if err := st.CreateUser(t.Context(), u, nil); err != nil {
			t.Fatal(err)
		}
	}
	cfg := config.Default().Push
	cfg.Enabled = true
	cfg.MinInterval = config.Duration{Duration: 0}
	if mod != nil {
		mod(&cfg)
	}
	app := &fakeApp{seen: make(chan struct{}, 100)}
	s := New(cfg, "example.org", st, map[string]AppServer{"push.example.org": app}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	s.Start()
	t.Cleanup(s.Stop)
	return s, app, st
}

func el(t testing.TB, s string) *xmlstream.Element {
	e, err := xmlstream.Parse([]byte(s), xmlstream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func iq(t *testing.T, from, payload string) *server.IQ {
	f := jid.MustParse(from)
	return &server.IQ{From: f, To: f.Bare(), Type: "set", Payload: el(t, payload)}
}

func cond(err error) string {
	var se *stanza.Error
	if errors.As(err, &se) {
		return se.Condition
	}
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

const enableXML = `<enable xmlns='urn:xmpp:push:0' jid='push.example.org' node='node-1'><x xmlns='jabber:x:data' type='submit'>
<field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
<field var='secret'><value>s3cret</value></field></x></enable>`

func enable(t *testing.T, s *Service) {
	t.Helper()
	if _, err := s.enable(t.Context(), iq(t, "alice@example.org/phone", enableXML)); err != nil {
		t.Fatal(err)
	}
}

func message(from, body string, extra ...string) *xmlstream.Element {
	m := xmlstream.New(xmlstream.NSClient, "message", "type", "chat", "from", from, "to", "alice@example.org")
	if body != "" {
		m.Append(xmlstream.New(xmlstream.NSClient, "body").AppendText(body))
	}
	for _, ns := range extra {
		m.Append(xmlstream.New(ns, map[string]string{"eu.siacs.conversations.axolotl": "encrypted", "urn:xmpp:omemo:2": "encrypted", nsReceipts: "received", "http://jabber.org/protocol/chatstates": "active"}[ns]))
	}
	return m
}

var alice = jid.MustParse("alice@example.org")

func summary(t *testing.T, iq *xmlstream.Element) (*dataform.Form, map[string]string) {
	t.Helper()
	ps := iq.Child(NSPubSub, "pubsub")
	pub := ps.Child(NSPubSub, "publish")
	if pub.Attr("node") != "node-1" || iq.Attr("to") != "push.example.org" || iq.Attr("from") != "alice@example.org" {
		t.Fatalf("publish IQ %s", iq)
	}
	f, err := dataform.Parse(pub.Child(NSPubSub, "item").Child(NS, "notification").Child(dataform.NS, "x"))
	if err != nil || f.FormType() != FormSummary {
		t.Fatalf("notification form %v in %s", err, iq)
	}
	po, err := dataform.Parse(ps.Child(NSPubSub, "publish-options").Child(dataform.NS, "x"))
	if err != nil || po.FormType() != FormPublishOpts {
		t.Fatalf("publish-options %v in %s", err, iq)
	}
	return f, po.Values()
}

func TestEnableErrors(t *testing.T) {
	s, _, st := newService(t, nil)
	cases := []struct{ xml, cond string }{
		{`<enable xmlns='urn:xmpp:push:0' node='n'/>`, "bad-request"},
		{`<enable xmlns='urn:xmpp:push:0' jid='push.example.org'/>`, "bad-request"},
		{`<enable xmlns='urn:xmpp:push:0' jid='@@' node='n'/>`, "jid-malformed"},
		{`<enable xmlns='urn:xmpp:push:0' jid='push.conversations.im' node='n'/>`, "remote-server-not-found"},
		{`<enable xmlns='urn:xmpp:push:0' jid='bob@example.org' node='n'/>`, "not-acceptable"},
		{`<enable xmlns='urn:xmpp:push:0' jid='other.example.org' node='n'/>`, "not-acceptable"},
		{`<enable xmlns='urn:xmpp:push:0' jid='push.example.org' node='n'><x xmlns='jabber:x:data' type='form'/></enable>`, "bad-request"},
		{`<enable xmlns='urn:xmpp:push:0' jid='push.example.org' node='n'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:other</value></field></x></enable>`, "bad-request"},
		{`<disable xmlns='urn:xmpp:push:0'/>`, "bad-request"},
	}
	for _, c := range cases {
		h := s.enable
		if el(t, c.xml).Name == "disable" {
			h = s.disable
		}
		if _, err := h(t.Context(), iq(t, "alice@example.org/phone", c.xml)); cond(err) != c.cond {
			t.Errorf("%s: %s, want %s", c.xml, cond(err), c.cond)
		}
	}
	if regs, _ := st.PushRegistrations(t.Context(), "alice"); len(regs) != 0 {
		t.Fatalf("refused enables stored %v", regs)
	}
	enable(t, s)
	regs, _ := st.PushRegistrations(t.Context(), "alice")
	if len(regs) != 1 || regs[0].Resource != "phone" || regs[0].Options["secret"] != "s3cret" || regs[0].Options["FORM_TYPE"] != "" {
		t.Fatalf("stored %+v", regs)
	}
}

// TestPrivateByDefault: the default notification has the count only: no
// sender, no body.
func TestPrivateByDefault(t *testing.T) {
	s, app, _ := newService(t, nil)
	enable(t, s)
	s.Notify(t.Context(), alice, message("bob@example.org/laptop", "the secret plan"))
	app.wait(t, 1, 5*time.Second)
	f, opts := summary(t, app.published()[0])
	if f.Get("message-count") != "1" || f.Has("last-message-body") || f.Has("last-message-sender") {
		t.Fatalf("default notification leaks: %s", app.published()[0])
	}
	if opts["secret"] != "s3cret" {
		t.Fatalf("publish-options %v", opts)
	}
}

func TestIncludeSenderAndBody(t *testing.T) {
	s, app, _ := newService(t, func(c *config.Push) { c.IncludeBody, c.IncludeSender = true, true })
	enable(t, s)
	s.Notify(t.Context(), alice, message("bob@example.org/laptop", "hello"))
	app.wait(t, 1, 5*time.Second)
	f, _ := summary(t, app.published()[0])
	if f.Get("last-message-body") != "hello" || f.Get("last-message-sender") != "bob@example.org" {
		t.Fatalf("notification %s", app.published()[0])
	}
	// OMEMO: the fallback body is not the message; it is never sent.
	s.Notify(t.Context(), alice, message("bob@example.org/laptop", "I sent you an OMEMO encrypted message", "eu.siacs.conversations.axolotl"))
	app.wait(t, 1, 5*time.Second)
	f, _ = summary(t, app.published()[1])
	if f.Has("last-message-body") {
		t.Fatalf("OMEMO fallback body pushed: %s", app.published()[1])
	}
}

func TestWhatIsPushed(t *testing.T) {
	s, app, _ := newService(t, nil)
	enable(t, s)
	s.Notify(t.Context(), alice, message("bob@example.org/x", "", nsReceipts))
	s.Notify(t.Context(), alice, message("bob@example.org/x", "", "http://jabber.org/protocol/chatstates"))
	hl := message("bob@example.org/x", "news")
	hl.SetAttr("type", "headline")
	s.Notify(t.Context(), alice, hl)
	app.none(t, 300*time.Millisecond)
	s.Notify(t.Context(), alice, message("bob@example.org/x", "", "urn:xmpp:omemo:2"))
	app.wait(t, 1, 5*time.Second)

	s2, app2, _ := newService(t, func(c *config.Push) { c.NotifyReceipts = true })
	enable(t, s2)
	s2.Notify(t.Context(), alice, message("bob@example.org/x", "", nsReceipts))
	app2.wait(t, 1, 5*time.Second)
}

// TestRateLimitCoalesces: a burst gives one push at once and one more
// when the interval ends, counting the rest.
func TestRateLimitCoalesces(t *testing.T) {
	s, app, _ := newService(t, func(c *config.Push) { c.MinInterval = config.Duration{Duration: 400 * time.Millisecond} })
	enable(t, s)
	for range 5 {
		s.Notify(t.Context(), alice, message("bob@example.org/x", "hi"))
	}
	app.wait(t, 1, 5*time.Second)
	app.wait(t, 1, 5*time.Second)
	app.none(t, 600*time.Millisecond)
	pubs := app.published()
	f1, _ := summary(t, pubs[0])
	f2, _ := summary(t, pubs[1])
	if f1.Get("message-count") != "1" || f2.Get("message-count") != "4" {
		t.Fatalf("counts %q then %q, want 1 then 4", f1.Get("message-count"), f2.Get("message-count"))
	}
	if s.Metrics.Coalesced.Load() != 4 {
		t.Fatalf("coalesced %d, want 4", s.Metrics.Coalesced.Load())
	}
}

// TestDisabledSendsNothing: after disable, nothing is published — also
// not a push that was waiting for the rate limit.
func TestDisabledSendsNothing(t *testing.T) {
	s, app, st := newService(t, func(c *config.Push) { c.MinInterval = config.Duration{Duration: 300 * time.Millisecond} })
	enable(t, s)
	s.Notify(t.Context(), alice, message("bob@example.org/x", "1"))
	app.wait(t, 1, 5*time.Second)
	s.Notify(t.Context(), alice, message("bob@example.org/x", "2")) // coalesced, waits
	time.Sleep(50 * time.Millisecond)
	if _, err := s.disable(t.Context(), iq(t, "alice@example.org/phone", `<disable xmlns='urn:xmpp:push:0' jid='push.example.org'/>`)); err != nil {
		t.Fatal(err)
	}
	if regs, _ := st.PushRegistrations(t.Context(), "alice"); len(regs) != 0 {
		t.Fatalf("disable left %v", regs)
	}
	s.Notify(t.Context(), alice, message("bob@example.org/x", "3"))
	app.none(t, 600*time.Millisecond)
}

// TestPermanentErrorDisables: an app server answer other than a wait
// error (XEP-0357 §8) disables the registration; a wait error keeps it.
func TestPermanentErrorDisables(t *testing.T) {
	s, app, st := newService(t, nil)
	enable(t, s)
	app.err = &stanza.Error{Type: "wait", Condition: "resource-constraint"}
	s.Notify(t.Context(), alice, message("bob@example.org/x", "1"))
	app.wait(t, 1, 5*time.Second)
	time.Sleep(50 * time.Millisecond)
	if regs, _ := st.PushRegistrations(t.Context(), "alice"); len(regs) != 1 {
		t.Fatalf("wait error disabled the registration")
	}
	app.mu.Lock()
	app.err = stanza.NewError("item-not-found", "")
	app.mu.Unlock()
	s.Notify(t.Context(), alice, message("bob@example.org/x", "2"))
	app.wait(t, 1, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		regs, _ := st.PushRegistrations(t.Context(), "alice")
		if len(regs) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("item-not-found did not disable the registration")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s.Metrics.Disabled.Load() != 1 {
		t.Fatalf("disabled counter %d", s.Metrics.Disabled.Load())
	}
}

func TestRegistrationsBounded(t *testing.T) {
	s, _, _ := newService(t, nil)
	for i := range maxRegistrations {
		x := `<enable xmlns='urn:xmpp:push:0' jid='push.example.org' node='n` + string(rune('A'+i)) + `'/>`
		if _, err := s.enable(t.Context(), iq(t, "alice@example.org/phone", x)); err != nil {
			t.Fatalf("enable %d: %v", i, err)
		}
	}
	if _, err := s.enable(t.Context(), iq(t, "alice@example.org/phone", `<enable xmlns='urn:xmpp:push:0' jid='push.example.org' node='one-more'/>`)); cond(err) != "resource-constraint" {
		t.Fatalf("registration beyond the bound: %v", err)
	}
	// Re-enabling an existing node is still fine.
	if _, err := s.enable(t.Context(), iq(t, "alice@example.org/phone", `<enable xmlns='urn:xmpp:push:0' jid='push.example.org' node='nA'/>`)); err != nil {
		t.Fatal(err)
	}
}

// TestIncludeBodyBound: a long body is cut to at most 256 bytes including
// the ellipsis, on a UTF-8 boundary.
func TestIncludeBodyBound(t *testing.T) {
	s, app, _ := newService(t, func(c *config.Push) { c.IncludeBody = true })
	enable(t, s)
	for i, body := range []string{strings.Repeat("a", 300), strings.Repeat("é", 200), strings.Repeat("€", 100), strings.Repeat("a", 256)} {
		s.Notify(t.Context(), alice, message("bob@example.org/x", body))
		app.wait(t, 1, 5*time.Second)
		f, _ := summary(t, app.published()[i])
		got := f.Get("last-message-body")
		if len(got) > 256 || !utf8.ValidString(got) || got == "" {
			t.Errorf("body of %d bytes pushed as %d bytes (valid UTF-8 %v): %q", len(body), len(got), utf8.ValidString(got), got)
		}
		if len(body) <= 256 && got != body {
			t.Errorf("a body of %d bytes was cut: %q", len(body), got)
		}
		if len(body) > 256 && !strings.HasSuffix(got, "…") {
			t.Errorf("a cut body does not end with an ellipsis: %q", got)
		}
	}
}
