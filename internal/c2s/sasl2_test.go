package c2s

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

const (
	uaPhone  = "d4565fa7-4d72-4749-b3d3-740edbf87770"
	uaLaptop = "0f8fad5b-d9cb-469f-a165-70867728950e"
)

// xmlConn is a raw client over TCP (client) or WebSocket (wsClient).
type xmlConn interface {
	send(s string)
	next() *xmlstream.Element
}

// authenticateXML is an <authenticate/> with the initial response ir (nil:
// none) and extra children.
func authenticateXML(mech string, ir []byte, extra string) string {
	s := "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='" + mech + "'>"
	if ir != nil {
		s += "<initial-response>" + base64.StdEncoding.EncodeToString(ir) + "</initial-response>"
	}
	return s + extra + "</authenticate>"
}

// scram2 runs SCRAM-SHA-256 over SASL2 with the extra children of
// <authenticate/>; it returns the element ending the exchange
// (<success/>, whose server signature it checked, or <failure/>).
func scram2(t *testing.T, c xmlConn, user, pass, extra string) *xmlstream.Element {
	t.Helper()
	sc := xmpptest.NewSCRAM(user, pass)
	c.send(authenticateXML("SCRAM-SHA-256", sc.First(), extra))
	ch := c.next()
	if ch.Space != nsSASL2 || ch.Name != "challenge" {
		return ch
	}
	sf, err := base64.StdEncoding.DecodeString(ch.Text())
	if err != nil {
		t.Fatalf("challenge %v: %v", ch, err)
	}
	final, err := sc.Final(sf)
	if err != nil {
		t.Fatal(err)
	}
	c.send("<response xmlns='urn:xmpp:sasl:2'>" + base64.StdEncoding.EncodeToString(final) + "</response>")
	end := c.next()
	if end.Name == "success" {
		ad, err := base64.StdEncoding.DecodeString(end.ChildText(nsSASL2, "additional-data"))
		if err != nil {
			t.Fatalf("additional-data of %v: %v", end, err)
		}
		if err := sc.Verify(ad); err != nil {
			t.Fatalf("%v: %v", end, err)
		}
	}
	return end
}

// plainIR is PLAIN's initial response.
func plainIR(user, pass string) []byte { return []byte("\x00" + user + "\x00" + pass) }

// userAgentXML is a <user-agent/> with id.
func userAgentXML(id string) string {
	return "<user-agent id='" + id + "'><software>AwesomeXMPP</software><device>Kiva's Phone</device></user-agent>"
}

// sasl2Client connects and does STARTTLS; it fails unless SASL2 is offered.
func sasl2Client(t *testing.T, addr string) (*client, *xmlstream.Element) {
	t.Helper()
	c := dial(t, addr)
	f := c.StartTLS(insecureTLS(0))
	if f.Child(nsSASL2, "authentication") == nil {
		t.Fatalf("no SASL2 <authentication/> in %v", f)
	}
	return c, f
}

// wantSuccess fails unless el is a SASL2 <success/>; it returns the
// authorization identifier.
func wantSuccess(t *testing.T, el *xmlstream.Element) string {
	t.Helper()
	if el.Space != nsSASL2 || el.Name != "success" {
		t.Fatalf("want SASL2 <success/>, got %v", el)
	}
	return el.ChildText(nsSASL2, "authorization-identifier")
}

// wantFailure fails unless el is a SASL2 <failure/> with condition cond;
// it returns the text.
func wantFailure(t *testing.T, el *xmlstream.Element, cond string) string {
	t.Helper()
	if el.Space != nsSASL2 || el.Name != "failure" || el.Child(nsSASL, cond) == nil {
		t.Fatalf("want SASL2 <failure/> with <%s/>, got %v", cond, el)
	}
	return el.ChildText(nsSASL2, "text")
}

func TestSASL2Features(t *testing.T) {
	srv := startServer(t, nil)
	_, f := sasl2Client(t, srv.addr)
	a := f.Child(nsSASL2, "authentication")
	var mechs []string
	for _, m := range a.Elements() {
		if m.Name == "mechanism" {
			mechs = append(mechs, m.Text())
		}
	}
	if strings.Join(mechs, ",") != "SCRAM-SHA-256-PLUS,SCRAM-SHA-1-PLUS,SCRAM-SHA-256,SCRAM-SHA-1,PLAIN" {
		t.Errorf("SASL2 mechanisms inside TLS = %v", mechs)
	}
	inline := a.Child(nsSASL2, "inline")
	if inline == nil || inline.Child(nsSM, "sm") == nil {
		t.Fatalf("inline resumption not advertised: %v", a)
	}
	b := inline.Child(nsBind2, "bind")
	if b == nil {
		t.Fatalf("Bind2 not advertised: %v", a)
	}
	var vars []string
	for _, fe := range b.Child(nsBind2, "inline").Elements() {
		vars = append(vars, fe.Attr("var"))
	}
	if strings.Join(vars, ",") != "urn:xmpp:carbons:2,urn:xmpp:csi:0,urn:xmpp:sm:3" {
		t.Errorf("Bind2 inline features = %v", vars)
	}
	// The legacy profile is still offered alongside.
	if f.Child(nsSASL, "mechanisms") == nil {
		t.Errorf("RFC 6120 <mechanisms/> gone: %v", f)
	}

	// Before TLS (loopback: allowed), no PLAIN in either profile; where
	// STARTTLS is required, neither profile is offered.
	c := dial(t, srv.addr)
	f = c.open()
	for _, m := range f.Child(nsSASL2, "authentication").Elements() {
		if m.Text() == "PLAIN" {
			t.Errorf("PLAIN offered by SASL2 without TLS: %v", f)
		}
	}
	req := startServer(t, func(c *config.Config) { c.TLS.RequireSTARTTLS = "always" })
	if f := dial(t, req.addr).open(); f.Child(nsSASL2, "authentication") != nil || f.Child(nsSASL, "mechanisms") != nil {
		t.Errorf("authentication offered before the required STARTTLS: %v", f)
	}
}

// SCRAM-SHA-256 with Bind2, carbons, SM (resumable) and CSI inline: the
// one <success/> after the SCRAM exchange says everything, and the session
// works at once.
func TestSASL2BindInline(t *testing.T) {
	srv := startServer(t, nil)
	alice, _ := sasl2Client(t, srv.addr)
	succ := scram2(t, alice, "alice", "pw", userAgentXML(uaPhone)+
		"<bind xmlns='urn:xmpp:bind:0'><tag>AwesomeXMPP</tag>"+
		"<enable xmlns='urn:xmpp:carbons:2'/><enable xmlns='urn:xmpp:sm:3' resume='true'/><inactive xmlns='urn:xmpp:csi:0'/></bind>")
	aid := wantSuccess(t, succ)
	if !strings.HasPrefix(aid, "alice@localhost/AwesomeXMPP.") || len(aid) != len("alice@localhost/AwesomeXMPP.")+8 {
		t.Fatalf("authorization-identifier %q, want alice@localhost/AwesomeXMPP.<8 hex>", aid)
	}
	if strings.Contains(aid, uaPhone[:8]) {
		t.Errorf("the resource %q shows the user-agent id", aid)
	}
	bound := succ.Child(nsBind2, "bound")
	if bound == nil {
		t.Fatalf("no <bound/>: %v", succ)
	}
	en := bound.Child(nsSM, "enabled")
	if en == nil || en.Attr("id") == "" || en.Attr("resume") != "true" {
		t.Fatalf("<bound/> lacks a resumable <enabled/>: %v", bound)
	}
	// XEP-0388: features follow <success/>, now without binding or SM.
	f := alice.next()
	if f.Name != "features" || f.Child(nsBind, "bind") != nil || f.Child(nsSM, "sm") != nil {
		t.Fatalf("features after a Bind2 success: %v", f)
	}

	s := srv.svc.sessionOf(t, aid)
	if !s.Carbons() {
		t.Error("carbons not enabled inline")
	}
	if sm, resumable := s.SM(); !sm || !resumable {
		t.Errorf("SM = %v, resumable = %v; want both", sm, resumable)
	}
	if !s.Asleep() {
		t.Error("the session did not start inactive (CSI inline)")
	}

	// Carbons: another device of alice writes to bob; this one gets a copy.
	pc := dial(t, srv.addr)
	pc.login("alice", "pc")
	pc.send("<message to='bob@localhost' type='chat' id='c1'><body>hi</body></message>")
	m := alice.expect("message")
	if m.Child(nsCarbons2, "sent") == nil {
		t.Fatalf("want a sent carbon, got %v", m)
	}
	// SM counts from the bind: the carbon is stanza 1.
	alice.send("<r xmlns='urn:xmpp:sm:3'/>")
	if a := alice.expect("a"); a.Attr("h") != "0" {
		t.Errorf("<a/> = %v, want h=0 (alice sent nothing)", a)
	}
	alice.send("<a xmlns='urn:xmpp:sm:3' h='1'/>")
	alice.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	if r := alice.expect("iq"); r.Attr("type") != "result" || r.Attr("to") != aid {
		t.Errorf("ping answered %v", r)
	}
}

// sessionOf finds the local session bound to the full JID j.
func (s *Service) sessionOf(t *testing.T, j string) interface {
	Carbons() bool
	SM() (bool, bool)
	Asleep() bool
} {
	t.Helper()
	s.rmu.Lock()
	defer s.rmu.Unlock()
	for _, o := range s.sessions {
		if o.sess.JID().String() == j {
			return o.sess
		}
	}
	t.Fatalf("no session %s", j)
	return nil
}

// The same installation gets the same resource at every login, and its
// new session replaces the old one; another installation gets another.
func TestSASL2ResourceStable(t *testing.T) {
	srv := startServer(t, nil)
	login := func(ua string) (*client, string) {
		t.Helper()
		c, _ := sasl2Client(t, srv.addr)
		extra := "<bind xmlns='urn:xmpp:bind:0'><tag>Phone</tag></bind>"
		if ua != "" {
			extra = userAgentXML(ua) + extra
		}
		aid := wantSuccess(t, scram2(t, c, "alice", "pw", extra))
		c.expect("features")
		return c, aid
	}
	first, r1 := login(uaPhone)
	_, r2 := login(uaPhone)
	if r1 != r2 {
		t.Fatalf("same user agent, resources %q then %q", r1, r2)
	}
	if e := first.expect("error"); e.Child("urn:ietf:params:xml:ns:xmpp-streams", "conflict") == nil {
		t.Fatalf("the replaced session got %v, want <conflict/>", e)
	}
	_, r3 := login(uaLaptop)
	if r3 == r1 || !strings.HasPrefix(r3, "alice@localhost/Phone.") {
		t.Fatalf("another user agent got %q (the phone has %q)", r3, r1)
	}
	// In upper case it is the same id.
	_, r4 := login(strings.ToUpper(uaPhone))
	if r4 != r1 {
		t.Fatalf("the id in upper case got %q, want %q", r4, r1)
	}
	// Without an id: a new resource each time.
	_, r5 := login("")
	_, r6 := login("")
	if r5 == r6 || r5 == r1 {
		t.Fatalf("logins without a user-agent id got %q and %q", r5, r6)
	}
	// Another account with the same device id: unrelated suffix.
	bob, _ := sasl2Client(t, srv.addr)
	rb := wantSuccess(t, scram2(t, bob, "bob", "pw", userAgentXML(uaPhone)+"<bind xmlns='urn:xmpp:bind:0'><tag>Phone</tag></bind>"))
	if strings.TrimPrefix(rb, "bob@") == strings.TrimPrefix(r1, "alice@") {
		t.Fatalf("alice's and bob's resources for one device id are the same: %q", rb)
	}
}

func TestSASL2UserAgentRecorded(t *testing.T) {
	srv := startServer(t, nil)
	before := time.Now()
	c, _ := sasl2Client(t, srv.addr)
	wantSuccess(t, scram2(t, c, "alice", "pw", userAgentXML(strings.ToUpper(uaPhone))))
	c.expect("features")
	uas, err := srv.im.Store().UserAgents(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(uas) != 1 {
		t.Fatalf("user agents %+v, want one", uas)
	}
	ua := uas[0]
	if ua.ID != uaPhone || ua.Software != "AwesomeXMPP" || ua.Device != "Kiva's Phone" || ua.LastAddr != "127.0.0.1" ||
		ua.LastSeen.Before(before.Add(-time.Second)) || ua.LastSeen.After(time.Now()) {
		t.Fatalf("recorded %+v", ua)
	}
	// A failed login records nothing.
	c2, _ := sasl2Client(t, srv.addr)
	wantFailure(t, scram2(t, c2, "alice", "wrong", userAgentXML(uaLaptop)), "not-authorized")
	if uas, _ := srv.im.Store().UserAgents(context.Background(), "alice"); len(uas) != 1 {
		t.Fatalf("after a failed login: %+v", uas)
	}
}

// Inline resumption: <authenticate/> with <resume/> is answered by one
// <success/> holding <resumed/>, followed at once by what the client had
// not acknowledged: no features, no other round trip.
func TestSASL2InlineResume(t *testing.T) {
	srv := startServer(t, nil)
	bob, _ := sasl2Client(t, srv.addr)
	succ := scram2(t, bob, "bob", "pw", userAgentXML(uaPhone)+
		"<bind xmlns='urn:xmpp:bind:0'><tag>Phone</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>")
	full := wantSuccess(t, succ)
	id := succ.Child(nsBind2, "bound").Child(nsSM, "enabled").Attr("id")
	bob.expect("features")
	bob.presence()
	bob.expect("presence") // stanza 1
	// Once the ping is answered the presence is fully handled (its
	// offline drain is over): alice's messages are routed live.
	bob.send("<iq type='get' id='p0'><ping xmlns='urn:xmpp:ping'/></iq>")
	bob.expect("iq") // stanza 2
	alice := dial(t, srv.addr)
	alice.login("alice", "pc")
	for i := 1; i <= 2; i++ {
		alice.send(fmt.Sprintf("<message to='bob@localhost' type='chat' id='m%d'><body>%d</body></message>", i, i))
		if m := bob.expect("message"); m.Attr("id") != fmt.Sprintf("m%d", i) {
			t.Fatalf("got %v", m)
		}
	}
	bob.Conn.Close() // dropped: bob processed the presence, the ping result and m1 only
	time.Sleep(100 * time.Millisecond)
	alice.send("<message to='bob@localhost' type='chat' id='m3'><body>3</body></message>")
	alice.send("<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	alice.expect("iq")

	bob2, _ := sasl2Client(t, srv.addr)
	bob2.send(authenticateXML("PLAIN", plainIR("bob", "pw"), userAgentXML(uaPhone)+
		"<resume xmlns='urn:xmpp:sm:3' previd='"+id+"' h='3'/>"+
		"<bind xmlns='urn:xmpp:bind:0'><tag>Phone</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"))
	// The very next element.
	succ = bob2.next()
	if aid := wantSuccess(t, succ); aid != full {
		t.Errorf("authorization-identifier %q, want the resumed session's %q", aid, full)
	}
	r := succ.Child(nsSM, "resumed")
	// h: the server handled bob's presence and ping.
	if r == nil || r.Attr("previd") != id || r.Attr("h") != "2" {
		t.Fatalf("<success/> without the right <resumed/>: %v", succ)
	}
	if succ.Child(nsBind2, "bound") != nil {
		t.Errorf("a resumed session was bound again: %v", succ)
	}
	for _, want := range []string{"m2", "m3"} {
		m := bob2.next()
		if m.Name != "message" || m.Attr("id") != want {
			t.Fatalf("after <success/>: %v, want message %s (no features, nothing else first)", m, want)
		}
	}
	bob2.send("<iq type='get' id='pp'><ping xmlns='urn:xmpp:ping'/></iq>")
	if el := bob2.next(); el.Name != "iq" {
		t.Fatalf("unexpected %v after the resent messages", el)
	}
}

// A resumption that fails is reported inside <success/> and the Bind2
// request is served: a new session, in the same round trip.
func TestSASL2ResumeFailsThenBinds(t *testing.T) {
	srv := startServer(t, nil)
	c, _ := sasl2Client(t, srv.addr)
	c.send(authenticateXML("PLAIN", plainIR("alice", "pw"),
		"<resume xmlns='urn:xmpp:sm:3' previd='no-such-session' h='3'/>"+
			"<bind xmlns='urn:xmpp:bind:0'><tag>T</tag><enable xmlns='urn:xmpp:sm:3'/></bind>"))
	succ := c.next()
	aid := wantSuccess(t, succ)
	failed := succ.Child(nsSM, "failed")
	if failed == nil || failed.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "item-not-found") == nil {
		t.Fatalf("no <failed><item-not-found/></failed> in %v", succ)
	}
	b := succ.Child(nsBind2, "bound")
	if b == nil || b.Child(nsSM, "enabled") == nil || !strings.HasPrefix(aid, "alice@localhost/T.") {
		t.Fatalf("not bound after the failed resumption: %v", succ)
	}
	// <failed/> before <bound/> (XEP-0198 §6.2.1), as clients process them.
	if i, j := childIndex(succ, "failed"), childIndex(succ, "bound"); i > j {
		t.Errorf("<failed/> after <bound/>: %v", succ)
	}
	c.expect("features")

	// Without Bind2: the client binds the RFC 6120 way after the features.
	c2, _ := sasl2Client(t, srv.addr)
	c2.send(authenticateXML("PLAIN", plainIR("alice", "pw"), "<resume xmlns='urn:xmpp:sm:3' previd='nope' h='x'/>"))
	succ = c2.next()
	if aid := wantSuccess(t, succ); aid != "alice@localhost" {
		t.Errorf("authorization-identifier %q without binding, want the bare JID", aid)
	}
	if f := succ.Child(nsSM, "failed"); f == nil || f.Child("urn:ietf:params:xml:ns:xmpp-stanzas", "bad-request") == nil {
		t.Fatalf("a malformed <resume/> got %v", succ)
	}
	f := c2.next()
	if f.Name != "features" || f.Child(nsBind, "bind") == nil || f.Child(nsSM, "sm") == nil {
		t.Fatalf("features after a SASL2 success without Bind2: %v", f)
	}
	c2.send("<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>legacy</resource></bind></iq>")
	if r := c2.expect("iq"); r.Child(nsBind, "bind").ChildText(nsBind, "jid") != "alice@localhost/legacy" {
		t.Fatalf("bind after SASL2: %v", r)
	}
}

func childIndex(el *xmlstream.Element, name string) int {
	for i, c := range el.Elements() {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Every failure is a SASL2 <failure/> with the right condition, applies
// nothing the request asked for, and the client may try again on the same
// stream.
func TestSASL2Failures(t *testing.T) {
	srv := startServer(t, nil)
	bind := "<bind xmlns='urn:xmpp:bind:0'><tag>X</tag></bind>"
	cases := []struct {
		name, send, cond, text string
	}{
		{"unknown mechanism", authenticateXML("X-NOPE", []byte("x"), bind), "invalid-mechanism", ""},
		{"no mechanism", authenticateXML("", []byte("x"), bind), "invalid-mechanism", ""},
		{"wrong password", authenticateXML("PLAIN", plainIR("alice", "wrong"), bind), "not-authorized", "invalid username or password"},
		{"unknown user", authenticateXML("PLAIN", plainIR("nobody", "pw"), bind), "not-authorized", "invalid username or password"},
		{"user-agent id not a UUID", authenticateXML("PLAIN", plainIR("alice", "pw"), userAgentXML("my-phone")+bind), "malformed-request", "UUID"},
		{"user-agent id empty", authenticateXML("PLAIN", plainIR("alice", "pw"), userAgentXML("")+bind), "malformed-request", "UUID"},
		{"software too long", authenticateXML("PLAIN", plainIR("alice", "pw"),
			"<user-agent id='"+uaPhone+"'><software>"+strings.Repeat("x", 300)+"</software></user-agent>"), "malformed-request", "256 bytes"},
		{"two user agents", authenticateXML("PLAIN", plainIR("alice", "pw"), userAgentXML(uaPhone)+userAgentXML(uaPhone)), "malformed-request", "more than one"},
		{"tag too long", authenticateXML("PLAIN", plainIR("alice", "pw"), "<bind xmlns='urn:xmpp:bind:0'><tag>"+strings.Repeat("t", 65)+"</tag></bind>"), "malformed-request", "tag"},
		{"bad base64", "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'><initial-response>!!!</initial-response></authenticate>", "incorrect-encoding", ""},
		{"unknown SASL2 element", authenticateXML("PLAIN", plainIR("alice", "pw"), "<next xmlns='urn:xmpp:sasl:2'/>"), "malformed-request", "<next/>"},
	}
	c, _ := sasl2Client(t, srv.addr)
	for i, tc := range cases {
		if i > 0 && i%4 == 0 {
			c, _ = sasl2Client(t, srv.addr) // five failures close a stream
		}
		c.send(tc.send)
		text := wantFailure(t, c.next(), tc.cond)
		if !strings.Contains(text, tc.text) {
			t.Errorf("%s: text %q, want it to mention %q", tc.name, text, tc.text)
		}
	}
	// Nothing was bound by any of them.
	for _, r := range srv.im.Router.Resources(jid.MustParse("alice@localhost")) {
		t.Errorf("a failed authentication bound %s", r.JID())
	}
	// The stream that failed goes on: the right password works.
	if aid := wantSuccess(t, scram2(t, c, "alice", "pw", bind)); !strings.HasPrefix(aid, "alice@localhost/X.") {
		t.Fatalf("after failures, success %q", aid)
	}
	c.expect("features")
	// A second authentication is a stream error (XEP-0388 §6.10).
	c.send(authenticateXML("PLAIN", plainIR("alice", "pw"), ""))
	if e := c.expect("error"); e.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
		t.Fatalf("second <authenticate/> got %v", e)
	}

	// PLAIN without TLS: encryption-required.
	plain := dial(t, srv.addr)
	plain.open()
	plain.send(authenticateXML("PLAIN", plainIR("alice", "pw"), ""))
	wantFailure(t, plain.next(), "encryption-required")

	// <abort/> in the middle of SCRAM.
	ab, _ := sasl2Client(t, srv.addr)
	ab.send(authenticateXML("SCRAM-SHA-256", xmpptest.NewSCRAM("alice", "pw").First(), ""))
	if ch := ab.next(); ch.Name != "challenge" {
		t.Fatalf("want a challenge, got %v", ch)
	}
	ab.send("<abort xmlns='urn:xmpp:sasl:2'/>")
	wantFailure(t, ab.next(), "aborted")

	// Anything else in the middle of an exchange closes the stream.
	st, _ := sasl2Client(t, srv.addr)
	st.send(authenticateXML("SCRAM-SHA-256", xmpptest.NewSCRAM("alice", "pw").First(), ""))
	st.next()
	st.send("<presence/>")
	if e := st.next(); e.Name != "error" || e.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
		t.Fatalf("a stanza during SASL2 got %v", e)
	}

	// The fifth failure on a stream closes it, as with RFC 6120 SASL.
	five, _ := sasl2Client(t, srv.addr)
	for i := 0; i < maxAuthFailures; i++ {
		five.send(authenticateXML("PLAIN", plainIR("carol", "wrong"), ""))
		wantFailure(t, five.next(), "not-authorized")
	}
	if e := five.next(); e.Name != "error" || e.Child("urn:ietf:params:xml:ns:xmpp-streams", "policy-violation") == nil {
		t.Fatalf("after %d failures: %v", maxAuthFailures, e)
	}
}

// SASL2 failures pay like RFC 6120 ones: the per-address limit, the
// per-account throttle (a temporary-auth-failure at once, no password
// check) and the failure delay.
func TestSASL2Throttled(t *testing.T) {
	t.Run("delay", func(t *testing.T) {
		srv := startServer(t, func(c *config.Config) { c.Limits.FailedAuthDelay.Duration = 100 * time.Millisecond })
		c, _ := sasl2Client(t, srv.addr)
		for i, want := range []time.Duration{100 * time.Millisecond, 200 * time.Millisecond} {
			start := time.Now()
			c.send(authenticateXML("PLAIN", plainIR("alice", "wrong"), ""))
			wantFailure(t, c.next(), "not-authorized")
			if d := time.Since(start); d < want {
				t.Errorf("failure %d answered after %v, want at least %v", i+1, d, want)
			}
		}
		start := time.Now()
		c.send(authenticateXML("PLAIN", plainIR("alice", "pw"), "<user-agent id='bad'/>"))
		wantFailure(t, c.next(), "malformed-request")
		if d := time.Since(start); d < 400*time.Millisecond {
			t.Errorf("a malformed request answered after %v, want the doubled delay (400ms)", d)
		}
		if n := srv.svc.guard.Metrics.Failures.Load(); n != 2 {
			t.Errorf("bluetick_auth_failures = %d, want 2 (the wrong passwords)", n)
		}
	})
	t.Run("address", func(t *testing.T) {
		srv := startServer(t, func(c *config.Config) {
			c.Limits.ExemptLoopback = false
			c.Limits.LoginsPerIPPerMinute = 2
			c.Limits.FailedAuthDelay.Duration = 200 * time.Millisecond // the third failure would wait 800ms
		})
		c, _ := sasl2Client(t, srv.addr)
		for i := 0; i < 2; i++ {
			c.send(authenticateXML("PLAIN", plainIR("alice", "wrong"), ""))
			wantFailure(t, c.next(), "not-authorized")
		}
		start := time.Now()
		c.send(authenticateXML("PLAIN", plainIR("alice", "pw"), ""))
		if text := wantFailure(t, c.next(), "temporary-auth-failure"); !strings.Contains(text, "this address") {
			t.Errorf("text %q", text)
		}
		if d := time.Since(start); d > 400*time.Millisecond {
			t.Errorf("the throttled attempt waited %v: it must be answered at once", d)
		}
	})
	t.Run("account", func(t *testing.T) {
		cs := &countingStore{user: "alice"}
		srv := startServerWith(t, func(c *config.Config) {
			c.Limits.ExemptLoopback = true
			c.Limits.AccountLoginFailures = 2
			c.Limits.AccountLoginBackoff.Duration = time.Minute
			c.Limits.AccountLoginBackoffMax.Duration = time.Minute
			c.Limits.AccountLoginWindow.Duration = time.Hour
		}, func(s store.Store) store.Store { cs.Store = s; return cs })
		c := dialFrom(t, srv.addr, "127.0.0.9")
		c.StartTLS(insecureTLS(0))
		for i := 0; i < 2; i++ {
			wantFailure(t, scram2(t, c, "alice", "wrong", ""), "not-authorized")
		}
		checks := cs.checks.Load()
		c.send(authenticateXML("SCRAM-SHA-256", xmpptest.NewSCRAM("alice", "pw").First(), ""))
		if text := wantFailure(t, c.next(), "temporary-auth-failure"); !strings.Contains(text, "retry in") {
			t.Errorf("text %q", text)
		}
		if cs.checks.Load() != checks {
			t.Errorf("the throttled attempt checked the password")
		}
	})
}

// SASL2 and Bind2 over WebSocket (RFC 7395), where there is no stream
// restart to skip anyway but the round trips of binding and enabling are
// saved all the same.
func TestSASL2WebSocket(t *testing.T) {
	srv := startServer(t, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.svc.WebSocketHandler()}
	go hs.Serve(ln)
	t.Cleanup(func() { hs.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+ln.Addr().String()+"/xmpp-websocket", &websocket.DialOptions{Subprotocols: []string{"xmpp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ws := &wsClient{t: t, c: c}
	f := ws.open()
	if f.Child(nsSASL2, "authentication") == nil {
		t.Fatalf("no SASL2 over WebSocket: %v", f)
	}
	ws.send(authenticateXML("PLAIN", plainIR("alice", "pw"), ""))
	wantFailure(t, ws.next(), "encryption-required") // ws:// on loopback is not TLS
	succ := scram2(t, ws, "alice", "pw", userAgentXML(uaLaptop)+
		"<bind xmlns='urn:xmpp:bind:0'><tag>Web</tag><enable xmlns='urn:xmpp:sm:3'/></bind>")
	aid := wantSuccess(t, succ)
	if !strings.HasPrefix(aid, "alice@localhost/Web.") || succ.Child(nsBind2, "bound").Child(nsSM, "enabled") == nil {
		t.Fatalf("success over WebSocket: %v", succ)
	}
	if f := ws.next(); f.Name != "features" {
		t.Fatalf("want features after success, got %v", f)
	}
	bob := dial(t, srv.addr)
	bob.login("bob", "phone")
	bob.presence()
	bob.expect("presence")
	ws.send("<message xmlns='jabber:client' to='bob@localhost' type='chat' id='w1'><body>hi</body></message>")
	if m := bob.expect("message"); m.Attr("from") != aid {
		t.Fatalf("bob got %v", m)
	}
	bob.send("<message to='" + aid + "' type='chat' id='w2'><body>back</body></message>")
	if m := ws.next(); m.Name != "message" || m.Attr("id") != "w2" {
		t.Fatalf("ws got %v", m)
	}
}
