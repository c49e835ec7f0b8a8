package gateway

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"testing"
	"time"

	"bluetick/internal/dataform"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/xmlstream"
)

// fakeProvider records sends and answers with the queued errors.
type fakeProvider struct {
	mu   sync.Mutex
	sent []Message
	errs []error
}

func (f *fakeProvider) Send(ctx context.Context, d store.PushDevice, m Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, m)
	if len(f.errs) > 0 {
		err := f.errs[0]
		f.errs = f.errs[1:]
		return err
	}
	return nil
}

func (f *fakeProvider) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sent)
}

func newGateway(t *testing.T) (*Gateway, *fakeProvider, store.Store) {
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
	fp := &fakeProvider{}
	wh := &Webhook{Secret: []byte("s"), Allowed: []string{"https://relay.example/"}, Client: http.DefaultClient}
	g := New("example.org", st, map[string]Provider{"fcm": fp, "webhook": wh}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	g.Backoff = time.Millisecond
	return g, fp, st
}

func iqFrom(t *testing.T, from, typ string, payload string) *server.IQ {
	p, err := xmlstream.Parse([]byte(payload), xmlstream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return &server.IQ{From: jid.MustParse(from), To: jid.MustParse("push.example.org"), Type: typ, Payload: p}
}

func condition(err error) string {
	var se *stanza.Error
	if errors.As(err, &se) {
		return se.Condition
	}
	return "not a stanza error: " + errStr(err)
}

func errStr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// register runs register-push-fcm for alice and returns node and secret.
func register(t *testing.T, g *Gateway, from, deviceID string) (string, string) {
	t.Helper()
	res, err := g.HandleIQ(t.Context(), iqFrom(t, from, "set", `<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'>
<x xmlns='jabber:x:data' type='submit'><field var='token'><value>fcm-token-1</value></field><field var='device-id'><value>`+deviceID+`</value></field></x></command>`))
	if err != nil {
		t.Fatal(err)
	}
	if res.Attr("status") != "completed" {
		t.Fatalf("status %q: %s", res.Attr("status"), res)
	}
	f, err := dataform.Parse(res.Child(dataform.NS, "x"))
	if err != nil {
		t.Fatal(err)
	}
	if f.Get("jid") != "push.example.org" || f.Get("node") == "" || f.Get("secret") == "" {
		t.Fatalf("result form %s", res)
	}
	return f.Get("node"), f.Get("secret")
}

func publishIQ(node, secret string, count int) *xmlstream.Element {
	iq := xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "from", "alice@example.org", "to", "push.example.org")
	ps := xmlstream.New(NSPubSub, "pubsub")
	n := dataform.New("submit", FormSummary)
	if count > 0 {
		n.Add("message-count", "", "", itoa(count))
	}
	ps.Append(xmlstream.New(NSPubSub, "publish", "node", node).Append(xmlstream.New(NSPubSub, "item").Append(xmlstream.New(NSPush, "notification").Append(n.Element()))))
	if secret != "" {
		ps.Append(xmlstream.New(NSPubSub, "publish-options").Append(dataform.New("submit", FormPublishOpts).Add("secret", "", "", secret).Element()))
	}
	return iq.Append(ps)
}

func itoa(n int) string { return string(rune('0' + n)) }

func TestRegisterPublishUnregister(t *testing.T) {
	g, fp, st := newGateway(t)
	ctx := t.Context()
	node, secret := register(t, g, "alice@example.org/phone", "dev1")
	if err := g.Publish(ctx, publishIQ(node, secret, 2)); err != nil {
		t.Fatal(err)
	}
	if fp.count() != 1 || fp.sent[0].Count != 2 || fp.sent[0].Node != node {
		t.Fatalf("sent %+v", fp.sent)
	}
	if c := condition(g.Publish(ctx, publishIQ(node, "wrong", 1))); c != "forbidden" {
		t.Errorf("wrong secret: %s, want forbidden", c)
	}
	if c := condition(g.Publish(ctx, publishIQ(node, "", 1))); c != "forbidden" {
		t.Errorf("no secret: %s, want forbidden", c)
	}
	if c := condition(g.Publish(ctx, publishIQ("nope", secret, 1))); c != "item-not-found" {
		t.Errorf("unknown node: %s, want item-not-found", c)
	}
	bobs := publishIQ(node, secret, 1)
	bobs.SetAttr("from", "bob@example.org")
	if c := condition(g.Publish(ctx, bobs)); c != "forbidden" {
		t.Errorf("another account publishing to alice's node: %s, want forbidden", c)
	}
	other := publishIQ(node, secret, 1)
	other.SetAttr("from", "mallory@evil.example")
	if c := condition(g.Publish(ctx, other)); c != "forbidden" {
		t.Errorf("publish from another domain: %s, want forbidden", c)
	}
	if fp.count() != 1 {
		t.Fatalf("refused publishes reached the provider: %d sends", fp.count())
	}
	// Re-registering the same device id replaces the node.
	node2, _ := register(t, g, "alice@example.org/phone", "dev1")
	if _, err := st.PushDevice(ctx, node); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("old node of a re-registered device still exists: %v", err)
	}
	// bob cannot unregister alice's device.
	unreg := `<command xmlns='http://jabber.org/protocol/commands' node='unregister-push'><x xmlns='jabber:x:data' type='submit'><field var='node'><value>` + node2 + `</value></field></x></command>`
	if _, err := g.HandleIQ(ctx, iqFrom(t, "bob@example.org/x", "set", unreg)); condition(err) != "item-not-found" {
		t.Errorf("bob unregistering alice's node: %v", err)
	}
	res, err := g.HandleIQ(ctx, iqFrom(t, "alice@example.org/x", "set", unreg))
	if err != nil || res.Attr("status") != "completed" {
		t.Fatalf("unregister: %v %s", err, res)
	}
	if _, err := st.PushDevice(ctx, node2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unregistered device still exists: %v", err)
	}
}

func TestUnregisteredTokenRemoved(t *testing.T) {
	g, fp, st := newGateway(t)
	node, secret := register(t, g, "alice@example.org/phone", "")
	fp.errs = []error{ErrUnregistered}
	if c := condition(g.Publish(t.Context(), publishIQ(node, secret, 1))); c != "item-not-found" {
		t.Fatalf("publish to a dead token: %s, want item-not-found", c)
	}
	if _, err := st.PushDevice(t.Context(), node); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("dead token kept: %v", err)
	}
	if g.Metrics().Get("bluetick_push_unregistered_total", "fcm") != 1 {
		t.Fatal("unregistered not counted")
	}
}

func TestRetryBackoff(t *testing.T) {
	g, fp, _ := newGateway(t)
	node, secret := register(t, g, "alice@example.org/phone", "")
	fp.errs = []error{&HTTPError{Status: 503}, &HTTPError{Status: 429}, errors.New("connection reset")}
	if err := g.Publish(t.Context(), publishIQ(node, secret, 1)); err != nil {
		t.Fatalf("publish after 3 temporary failures: %v", err)
	}
	if fp.count() != 4 {
		t.Fatalf("%d attempts, want 4", fp.count())
	}
	// Bounded: more failures than retries give up with a wait error.
	g.MaxRetries = 2
	fp.errs = []error{&HTTPError{Status: 500}, &HTTPError{Status: 500}, &HTTPError{Status: 500}, &HTTPError{Status: 500}}
	err := g.Publish(t.Context(), publishIQ(node, secret, 1))
	var se *stanza.Error
	if !errors.As(err, &se) || se.Type != "wait" {
		t.Fatalf("after exhausted retries: %v, want a wait error", err)
	}
	if fp.count() != 4+3 {
		t.Fatalf("%d attempts, want 3 more", fp.count()-4)
	}
	// Permanent errors are not retried.
	fp.errs = []error{&HTTPError{Status: 400}}
	g.Publish(t.Context(), publishIQ(node, secret, 1))
	if fp.count() != 8 {
		t.Fatalf("400 retried: %d attempts", fp.count()-7)
	}
	if g.Metrics().Get("bluetick_push_retries_total", "fcm") != 3+2 {
		t.Fatalf("retries counted %d", g.Metrics().Get("bluetick_push_retries_total", "fcm"))
	}
}

func TestCommandsAndDisco(t *testing.T) {
	g, _, _ := newGateway(t)
	ctx := t.Context()
	items, err := g.HandleIQ(ctx, iqFrom(t, "alice@example.org/x", "get", `<query xmlns='http://jabber.org/protocol/disco#items' node='http://jabber.org/protocol/commands'/>`))
	if err != nil {
		t.Fatal(err)
	}
	var nodes []string
	for _, it := range items.Elements() {
		nodes = append(nodes, it.Attr("node"))
	}
	// Only configured providers (fcm, webhook) and unregister.
	if len(nodes) != 3 || nodes[0] != "register-push-fcm" || nodes[1] != "register-push-webhook" || nodes[2] != "unregister-push" {
		t.Fatalf("commands %v", nodes)
	}
	info, err := g.HandleIQ(ctx, iqFrom(t, "alice@example.org/x", "get", `<query xmlns='http://jabber.org/protocol/disco#info'/>`))
	if err != nil || info.Child(NSDiscoInfo, "identity").Attr("type") != "push" {
		t.Fatalf("disco#info %v %s", err, info)
	}
	// Executing without a form returns the form.
	res, err := g.HandleIQ(ctx, iqFrom(t, "alice@example.org/x", "set", `<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='execute'/>`))
	if err != nil || res.Attr("status") != "executing" || res.Attr("sessionid") == "" || res.Child(dataform.NS, "x") == nil {
		t.Fatalf("first stage: %v %s", err, res)
	}
	bad := []struct{ payload, cond string }{
		{`<command xmlns='http://jabber.org/protocol/commands' node='register-push-apns'/>`, "item-not-found"}, // not configured
		{`<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'><x xmlns='jabber:x:data' type='submit'/></command>`, "bad-request"},
		{`<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm' action='prev'/>`, "bad-request"},
		{`<command xmlns='http://jabber.org/protocol/commands' node='register-push-webhook'><x xmlns='jabber:x:data' type='submit'><field var='url'><value>http://169.254.169.254/</value></field></x></command>`, "not-acceptable"},
		{`<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'><x xmlns='jabber:x:data' type='submit'><field var='token'><value>a</value><value>b</value></field></x></command>`, "bad-request"},
		{`<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='x'/></pubsub>`, "forbidden"},
		{`<query xmlns='jabber:iq:version'/>`, "service-unavailable"},
		{`<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'><x xmlns='jabber:x:data' type='submit'><field var='token'><value>../../etc</value></field></x></command>`, "not-acceptable"},
	}
	for _, b := range bad {
		if _, err := g.HandleIQ(ctx, iqFrom(t, "alice@example.org/x", "set", b.payload)); condition(err) != b.cond {
			t.Errorf("%s: %v, want %s", b.payload, err, b.cond)
		}
	}
	if _, err := g.HandleIQ(ctx, iqFrom(t, "alice@elsewhere.example/x", "set", `<command xmlns='http://jabber.org/protocol/commands' node='register-push-fcm'/>`)); condition(err) != "forbidden" {
		t.Errorf("foreign account: %v", err)
	}
}

// FuzzParsePublish: ParsePublish never panics and accepts only a publish
// with a node.
func FuzzParsePublish(f *testing.F) {
	f.Add(publishIQ("node", "secret", 3).String())
	f.Add(`<iq xmlns='jabber:client'><pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='n'><item><notification xmlns='urn:xmpp:push:0'><x xmlns='jabber:x:data' type='submit'><field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field><field var='message-count'><value>-1</value></field></x></notification></item></publish></pubsub></iq>`)
	f.Fuzz(func(t *testing.T, s string) {
		el, err := xmlstream.Parse([]byte(s), xmlstream.Limits{MaxElementBytes: 1 << 16})
		if err != nil {
			return
		}
		m, _, err := ParsePublish(el)
		if err == nil && (m.Node == "" || m.Count < 0) {
			t.Fatalf("accepted %+v", m)
		}
		if err != nil {
			var se *stanza.Error
			if !errors.As(err, &se) {
				t.Fatalf("non-stanza error %v", err)
			}
		}
	})
}

// TestPublishAsInTheSpec: the publish of XEP-0357 §7's example (forms
// without a type attribute, an extra element in the notification) is
// accepted.
func TestPublishAsInTheSpec(t *testing.T) {
	g, fp, _ := newGateway(t)
	node, secret := register(t, g, "alice@example.org/phone", "")
	iq, err := xmlstream.Parse([]byte(`<iq xmlns='jabber:client' type='set' from='alice@example.org' to='push.example.org' id='n12'>
  <pubsub xmlns='http://jabber.org/protocol/pubsub'>
    <publish node='`+node+`'>
      <item>
        <notification xmlns='urn:xmpp:push:0'>
          <x xmlns='jabber:x:data'>
            <field var='FORM_TYPE'><value>urn:xmpp:push:summary</value></field>
            <field var='message-count'><value>1</value></field>
            <field var='last-message-sender'><value>juliet@capulet.example/balcony</value></field>
            <field var='last-message-body'><value>Wherefore art thou, Romeo?</value></field>
          </x>
          <additional xmlns='http://example.com/custom'>Additional custom elements</additional>
        </notification>
      </item>
    </publish>
    <publish-options>
      <x xmlns='jabber:x:data'>
        <field var='FORM_TYPE'><value>http://jabber.org/protocol/pubsub#publish-options</value></field>
        <field var='secret'><value>`+secret+`</value></field>
      </x>
    </publish-options>
  </pubsub>
</iq>`), xmlstream.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Publish(t.Context(), iq); err != nil {
		t.Fatal(err)
	}
	if fp.count() != 1 || fp.sent[0].Count != 1 || fp.sent[0].Body != "Wherefore art thou, Romeo?" {
		t.Fatalf("sent %+v", fp.sent)
	}
}
