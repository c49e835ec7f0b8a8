package c2s

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/pep"
	"bluetick/internal/xmlstream"
)

func TestMessageRoutedWithStanzaIDAndRealFrom(t *testing.T) {
	srv := startServer(t, nil)
	alice, bob := dial(t, srv.addr), dial(t, srv.addr)
	alice.login("alice", "pc")
	bob.login("bob", "phone")
	bob.presence()
	bob.expect("presence") // own presence reflected
	alice.send("<message to='bob@localhost' from='mallory@localhost/x' type='chat' id='m1'><body>hi</body><request xmlns='urn:xmpp:receipts'/></message>")
	m := bob.expect("message")
	if m.Attr("from") != alice.JID {
		t.Fatalf("from = %q, want the real sender %q", m.Attr("from"), alice.JID)
	}
	sid := m.Child("urn:xmpp:sid:0", "stanza-id")
	if sid == nil || sid.Attr("by") != "bob@localhost" || sid.Attr("id") == "" {
		t.Fatalf("stanza-id missing or wrong: %v", m)
	}
	// ✓✓: the receipt travels back.
	bob.send("<message to='" + alice.JID + "' id='r1'><received xmlns='urn:xmpp:receipts' id='m1'/></message>")
	r := alice.expect("message")
	if r.Child("urn:xmpp:receipts", "received").Attr("id") != "m1" {
		t.Fatalf("receipt: %v", r)
	}
}

func TestOfflineDeliveredInOrderWithDelay(t *testing.T) {
	srv := startServer(t, nil)
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	for i := 1; i <= 5; i++ {
		alice.send(fmt.Sprintf("<message to='bob@localhost' type='chat' id='o%d'><body>%d</body></message>", i, i))
	}
	// Round trip so all five are handled before bob logs in.
	alice.send("<iq type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>")
	alice.expect("iq")
	bob := dial(t, srv.addr)
	bob.login("bob", "phone")
	bob.presence()
	for i := 1; i <= 5; i++ {
		m := bob.expect("message")
		if m.Attr("id") != fmt.Sprintf("o%d", i) {
			t.Fatalf("message %d has id %q", i, m.Attr("id"))
		}
		if d := m.Child("urn:xmpp:delay", "delay"); d == nil || d.Attr("stamp") == "" {
			t.Fatalf("no delay stamp: %v", m)
		}
	}
}

func TestStreamResumptionLosesNothing(t *testing.T) {
	srv := startServer(t, nil)
	bob := dial(t, srv.addr)
	bob.login("bob", "phone")
	bob.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	en := bob.expect("enabled")
	id := en.Attr("id")
	bob.presence()
	bob.expect("presence")
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	alice.send("<message to='bob@localhost' type='chat' id='lost1'><body>while you were away</body></message>")
	bob.expect("message")
	// Bob's connection dies before he acks anything.
	bob.Conn.Close()
	time.Sleep(100 * time.Millisecond)
	alice.send("<message to='bob@localhost' type='chat' id='lost2'><body>second</body></message>")

	// Bob's client had processed 2 stanzas: his presence reflection and
	// lost1. The server must resend lost2 only.
	bob2 := dial(t, srv.addr)
	bob2.auth("bob")
	bob2.send("<resume xmlns='urn:xmpp:sm:3' previd='" + id + "' h='2'/>")
	if r := bob2.expect("resumed"); r.Attr("previd") != id {
		t.Fatalf("resumed = %v", r)
	}
	m := bob2.expect("message")
	if m.Attr("id") != "lost2" {
		t.Fatalf("after resume got %q, want lost2 (lost1 was acked by h=2)", m.Attr("id"))
	}
	// Nothing else is resent: a ping round trip comes back with no message before it.
	bob2.send("<iq type='get' id='pp'><ping xmlns='urn:xmpp:ping'/></iq>")
	if el := bob2.next(); el.Name != "iq" {
		t.Fatalf("unexpected %v after resume, want only the ping result", el)
	}
}

func TestMalformedXMLGetsStreamErrorOthersUnaffected(t *testing.T) {
	srv := startServer(t, nil)
	alice, bob := dial(t, srv.addr), dial(t, srv.addr)
	alice.login("alice", "pc")
	bob.login("bob", "phone")
	bob.presence()
	bob.expect("presence")
	mallory := dial(t, srv.addr)
	mallory.login("carol", "x")
	mallory.send("<message><body>unclosed</wrong></message>")
	e := mallory.expect("error")
	if e.Space != xmlstream.NSStream || e.Child("urn:ietf:params:xml:ns:xmpp-streams", "not-well-formed") == nil {
		t.Fatalf("stream error = %v", e)
	}
	alice.send("<message to='bob@localhost' type='chat' id='still'><body>ok</body></message>")
	if m := bob.expect("message"); m.Attr("id") != "still" {
		t.Fatalf("got %v", m)
	}
}

func TestOversizeStanzaPolicyViolation(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Limits.MaxStanzaBytes = 20000 })
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	alice.send("<message to='bob@localhost'><body>" + strings.Repeat("x", 30000) + "</body></message>")
	e := alice.expect("error")
	if e.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
		t.Fatalf("stream error = %v", e)
	}
}

func TestUnknownIQServiceUnavailableAndDisco(t *testing.T) {
	srv := startServer(t, nil)
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	alice.send("<iq type='get' id='u1' to='localhost'><query xmlns='urn:example:nope'/></iq>")
	r := alice.expect("iq")
	if r.Attr("type") != "error" || r.Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "service-unavailable") == nil {
		t.Fatalf("unknown iq answered %v", r)
	}
	alice.send("<iq type='get' id='d1' to='localhost'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>")
	r = alice.expect("iq")
	q := r.Child("http://jabber.org/protocol/disco#info", "query")
	feats := map[string]bool{}
	for _, f := range q.Elements() {
		if f.Name == "feature" {
			feats[f.Attr("var")] = true
		}
	}
	for _, want := range []string{"urn:xmpp:ping", "jabber:iq:version", "jabber:iq:last", "http://jabber.org/protocol/disco#info"} {
		if !feats[want] {
			t.Errorf("disco lacks %s: %v", want, feats)
		}
	}
	if feats["jabber:iq:register"] {
		t.Error("registration is closed but advertised")
	}
	// The stream features carried the same disco#info as a XEP-0115 hash.
	ver, err := pep.CapsVer(q, "sha-1")
	if err != nil {
		t.Fatal(err)
	}
	if c := srv.im.Caps(); c == nil || c.Attr("ver") != ver || c.Attr("hash") != "sha-1" {
		t.Fatalf("server caps %v, want ver %s", c, ver)
	}
	fresh := dial(t, srv.addr)
	if f := fresh.open(); f.Child("http://jabber.org/protocol/caps", "c").Attr("ver") != ver {
		t.Fatalf("stream features without the server's caps: %v", f)
	}
}

func TestSTARTTLSRequiredHidesMechanisms(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.TLS.RequireSTARTTLS = "always" })
	c := dial(t, srv.addr)
	f := c.open()
	if f.Child(nsTLS, "starttls").Child(nsTLS, "required") == nil {
		t.Fatalf("starttls not marked required: %v", f)
	}
	if f.Child(nsSASL, "mechanisms") != nil {
		t.Fatalf("mechanisms offered before TLS: %v", f)
	}
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hLHI9eA==</auth>")
	if e := c.expect("error"); e.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
		t.Fatalf("auth before TLS answered %v", e)
	}
}

func TestWrongPasswordNotAuthorized(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.addr)
	f := c.open()
	mechs := map[string]bool{}
	for _, m := range f.Child(nsSASL, "mechanisms").Elements() {
		mechs[m.Text()] = true
	}
	if mechs["PLAIN"] || !mechs["SCRAM-SHA-256"] || !mechs["SCRAM-SHA-1"] {
		t.Fatalf("mechanisms without TLS: %v (PLAIN must need TLS)", mechs)
	}
	c.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	c.next()
	tc := tls.Client(c.Conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	c.Conn = tc
	c.open()
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00alice\x00wrong")) + "</auth>")
	if f := c.next(); f.Name != "failure" || f.Child(nsSASL, "not-authorized") == nil {
		t.Fatalf("wrong password answered %v", f)
	}
}

func TestInBandRegistrationWhenOpen(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Registration = "open" })
	c := dial(t, srv.addr)
	if f := c.open(); f.Child(nsRegFeat, "register") == nil {
		t.Fatalf("register feature missing: %v", f)
	}
	c.send("<iq type='set' id='r1'><query xmlns='jabber:iq:register'><username>dave</username><password>s3cret</password></query></iq>")
	if r := c.expect("iq"); r.Attr("type") != "result" {
		t.Fatalf("registration: %v", r)
	}
	c.send("<iq type='set' id='r2'><query xmlns='jabber:iq:register'><username>dave</username><password>x</password></query></iq>")
	if r := c.expect("iq"); r.Child("", "error").Child("urn:ietf:params:xml:ns:xmpp-stanzas", "conflict") == nil {
		t.Fatalf("second registration: %v", r)
	}
	if ok, _ := srv.im.Store().UserExists(context.Background(), "dave"); !ok {
		t.Fatal("dave not created")
	}
}

func TestLoginRateLimitPerAddress(t *testing.T) {
	srv := startServer(t, func(c *config.Config) {
		c.Limits.ExemptLoopback = false
		c.Limits.LoginsPerIPPerMinute = 2
	})
	for i := 0; i < 2; i++ {
		c := dial(t, srv.addr)
		c.login("alice", fmt.Sprint("r", i))
	}
	c := dial(t, srv.addr)
	c.open()
	c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1hbGljZSxyPXh5eg==</auth>")
	if f := c.next(); f.Name != "failure" || f.Child(nsSASL, "temporary-auth-failure") == nil {
		t.Fatalf("third login in a minute answered %v", f)
	}
}

func TestHandledCountTooHigh(t *testing.T) {
	srv := startServer(t, nil)
	c := dial(t, srv.addr)
	c.login("alice", "pc")
	c.send("<enable xmlns='urn:xmpp:sm:3'/>")
	c.expect("enabled")
	c.send("<a xmlns='urn:xmpp:sm:3' h='5'/>")
	e := c.expect("error")
	hc := e.Child(nsSM, "handled-count-too-high")
	if e.Child("urn:ietf:params:xml:ns:xmpp-streams", "undefined-condition") == nil || hc == nil || hc.Attr("h") != "5" || hc.Attr("send-count") != "0" {
		t.Fatalf("stream error = %v", e)
	}
}

// TestDurableDeliveryAckedOrMoved: a message to an online recipient is
// made durable (on a single node, in the journal's log) before its
// sender's ✓. Acked by the recipient, it never reaches the store; if the
// recipient's session ends without acking it, it moves to the store.
func TestDurableDeliveryAckedOrMoved(t *testing.T) {
	for _, ack := range []bool{true, false} {
		t.Run(fmt.Sprint("acked=", ack), func(t *testing.T) {
			srv := startServer(t, nil)
			bob := dial(t, srv.addr)
			bob.online("bob", "phone", false)
			alice := dial(t, srv.addr)
			alice.login("alice", "pc")
			alice.send("<enable xmlns='urn:xmpp:sm:3'/>")
			alice.expect("enabled")
			alice.send("<message to='bob@localhost' type='chat' id='d1'><body>keep me</body></message><r xmlns='urn:xmpp:sm:3'/>")
			bob.expect("message")
			// alice's ✓ comes once the message is durable, since bob has
			// not acked it.
			if a := alice.expect("a"); a.Attr("h") != "1" {
				t.Fatalf("alice's ack h=%s, want 1", a.Attr("h"))
			}
			// In the journal's log, or in the store if bob's offline drain
			// (empty) had not finished when it arrived.
			if js := srv.im.Offline.Stats(); js.Logged.Load()+js.Inserted.Load() != 1 {
				t.Fatalf("%d messages logged and %d stored before bob's ack, want 1", js.Logged.Load(), js.Inserted.Load())
			}
			if ack {
				bob.send("<a xmlns='urn:xmpp:sm:3' h='2'/>") // presence + message
			}
			bob.send("</stream:stream>")
			want := 1
			if ack {
				want = 0
			}
			deadline := time.Now().Add(2 * time.Second)
			for {
				n, _ := srv.im.Store().CountOffline(context.Background(), "bob")
				if n == want && srv.im.Router.Count() == 1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("after bob left the store holds %d, want %d", n, want)
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}

func TestResumeTimeoutMovesUnackedToOffline(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Stream.ResumeTimeout.Duration = 200 * time.Millisecond })
	bob := dial(t, srv.addr)
	bob.online("bob", "phone", true)
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	alice.send("<message to='bob@localhost' type='chat' id='t1'><body>unacked</body></message>")
	bob.expect("message")
	bob.Conn.Close() // never acked
	time.Sleep(600 * time.Millisecond)
	if n, _ := srv.im.Store().CountOffline(context.Background(), "bob"); n != 1 {
		t.Fatalf("after the resume timeout the offline store holds %d, want the unacked message", n)
	}
	bob2 := dial(t, srv.addr)
	bob2.login("bob", "laptop")
	bob2.presence()
	if m := bob2.expect("message"); m.Attr("id") != "t1" {
		t.Fatalf("got %v", m)
	}
}

func TestIdleClientPingedThenClosed(t *testing.T) {
	srv := startServer(t, func(c *config.Config) { c.Limits.IdleTimeout.Duration = 300 * time.Millisecond })
	c := dial(t, srv.addr)
	c.login("alice", "pc")
	ping := c.expect("iq")
	if ping.Attr("type") != "get" || ping.Child("urn:xmpp:ping", "ping") == nil {
		t.Fatalf("idle client got %v, want a ping", ping)
	}
	// No answer: the server gives up.
	e := c.expect("error")
	if e.Child("urn:ietf:params:xml:ns:xmpp-streams", "connection-timeout") == nil {
		t.Fatalf("stream error = %v", e)
	}
}

// TestDrainWithStreamOrderAcks: a client that answers each <r/> with what
// it received before that <r/> (as Conversations does), a round trip
// later, and never acks unasked, gets every stored message while it stays
// online — not the first page and then nothing.
func TestDrainWithStreamOrderAcks(t *testing.T) {
	srv := startServer(t, nil)
	const n = 1000
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	alice.send("<enable xmlns='urn:xmpp:sm:3'/>")
	alice.expect("enabled")
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "<message to='bob@localhost' type='chat' id='m%d'><body>%d</body></message>", i, i)
	}
	alice.send(b.String() + "<r xmlns='urn:xmpp:sm:3'/>")
	if a := alice.expect("a"); a.Attr("h") != fmt.Sprint(n) {
		t.Fatalf("alice's ack h=%s, want %d", a.Attr("h"), n)
	}

	bob := dial(t, srv.addr)
	bob.login("bob", "phone")
	bob.send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
	bob.expect("enabled")
	// The roster first, as clients do: its result and an <r/> go out,
	// and the stored messages follow before the answer to that <r/>.
	bob.send("<iq type='get' id='ro'><query xmlns='jabber:iq:roster'/></iq><presence/>")
	h, got := 0, 0
	deadline := time.Now().Add(20 * time.Second)
	for got < n {
		if time.Now().After(deadline) {
			t.Fatalf("received %d of %d stored messages while online: the drain stalled", got, n)
		}
		el, err := bob.Read(2 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v (the drain stalled)", got, n, err)
		}
		switch el.Name {
		case "r":
			// A phone's round trip: the answer comes after whatever the
			// server sent meanwhile, and covers none of it.
			go func(h int) {
				time.Sleep(50 * time.Millisecond)
				bob.Conn.Write(fmt.Appendf(nil, "<a xmlns='urn:xmpp:sm:3' h='%d'/>", h))
			}(h)
		case "message":
			if el.Attr("id") != fmt.Sprint("m", got) {
				t.Fatalf("message %d is %s: out of order or duplicated", got, el.Attr("id"))
			}
			h++
			got++
		default:
			h++
		}
	}
}
