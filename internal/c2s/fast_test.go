package c2s

import (
	"context"
	"encoding/base64"
	"testing"

	"bluetick/internal/fast"
)

const agent = "d4565fa7-4d72-4749-b3d3-740edbf87770"

// The XEP-0484 journey over SASL2: a password login asks for a token; the
// device comes back with the token instead of the password (HT-SHA-256-NONE
// and the channel-bound HT-SHA-256-EXPR), its stream resumed inline, in
// one round trip after TLS; a wrong token, another device's id, a replayed
// count and a revoked token are refused.
func TestFASTTokenLoginAndResume(t *testing.T) {
	srv := startServer(t, nil)
	c, f := sasl2Client(t, srv.addr)
	fastF := f.Child(nsSASL2, "authentication").Child(nsSASL2, "inline").Child(fast.NS, "fast")
	var mechs []string
	for _, m := range fastF.Elements() {
		mechs = append(mechs, m.Text())
	}
	if len(mechs) == 0 || mechs[len(mechs)-1] != "HT-SHA-256-NONE" {
		t.Fatalf("FAST inline feature = %v", fastF)
	}
	succ := scram2(t, c, "alice", "pw", userAgentXML(agent)+
		"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-NONE'/>"+
		"<bind xmlns='urn:xmpp:bind:0'><tag>phone</tag><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>")
	wantSuccess(t, succ)
	tok := succ.Child(fast.NS, "token")
	if tok == nil || tok.Attr("token") == "" || tok.Attr("expiry") == "" {
		t.Fatalf("no <token/> in %v", succ)
	}
	token := tok.Attr("token")
	enabled := succ.Child(nsBind2, "bound").Child(nsSM, "enabled")
	if enabled == nil || enabled.Attr("id") == "" {
		t.Fatalf("SM not enabled inline: %v", succ)
	}
	c.send("<presence/>")
	c.expect("presence")
	// bob writes while alice's phone is away.
	bob := dial(t, srv.addr)
	bob.login("bob", "pc")
	c.Conn.Close()
	bob.send("<message to='alice@localhost' type='chat' id='m1'><body>while you were away</body></message>")

	// Back with the token: one <authenticate/>, answered by <success/>
	// with <resumed/>, then the message.
	c2, _ := sasl2Client(t, srv.addr)
	c2.send(authenticateXML("HT-SHA-256-NONE", fast.InitialResponse("alice", token, nil),
		userAgentXML(agent)+"<fast xmlns='urn:xmpp:fast:0' count='1'/>"+
			"<resume xmlns='urn:xmpp:sm:3' previd='"+enabled.Attr("id")+"' h='1'/>"))
	s2 := c2.next()
	wantSuccess(t, s2)
	ad, _ := base64.StdEncoding.DecodeString(s2.ChildText(nsSASL2, "additional-data"))
	if string(ad) != string(fast.ServerFinal(token, nil)) {
		t.Fatalf("server's HT proof %q, want %q", ad, fast.ServerFinal(token, nil))
	}
	if s2.Child(nsSM, "resumed") == nil {
		t.Fatalf("not resumed inline: %v", s2)
	}
	if m := c2.expect("message"); m.Attr("id") != "m1" {
		t.Fatalf("after the resumption: %v", m)
	}

	refused := func(mech string, ir []byte, extra, cond string) {
		t.Helper()
		c, _ := sasl2Client(t, srv.addr)
		c.send(authenticateXML(mech, ir, extra))
		t.Logf("%s: %s", cond, wantFailure(t, c.next(), cond))
	}
	fastEl := func(count string) string { return "<fast xmlns='urn:xmpp:fast:0' count='" + count + "'/>" }
	refused("HT-SHA-256-NONE", fast.InitialResponse("alice", "not-the-token", nil), userAgentXML(agent)+fastEl("2"), "not-authorized")
	refused("HT-SHA-256-NONE", fast.InitialResponse("alice", token, nil), userAgentXML("0e9f5b1c-3a2d-4c5e-8f7a-6b5c4d3e2f10")+fastEl("3"), "not-authorized")
	refused("HT-SHA-256-NONE", fast.InitialResponse("alice", token, nil), userAgentXML(agent)+fastEl("1"), "not-authorized") // replayed count
	refused("HT-SHA-256-NONE", fast.InitialResponse("alice", token, nil), fastEl("4"), "malformed-request")                  // no user agent
	refused("HT-SHA-256-NONE", fast.InitialResponse("alice", token, nil), userAgentXML(agent)+fastEl("-1"), "malformed-request")

	// The channel-bound variant: a token for it (the device's only token
	// once used: the one before it is dropped), used on another
	// connection with that connection's exporter value; another
	// connection's value is refused.
	c3, _ := sasl2Client(t, srv.addr)
	s3 := scram2(t, c3, "alice", "pw", userAgentXML(agent)+"<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-EXPR'/>")
	wantSuccess(t, s3)
	exprToken := s3.Child(fast.NS, "token").Attr("token")
	exporter := func(c *client) []byte {
		st := c.TLSState()
		ekm, err := st.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
		if err != nil {
			t.Fatal(err)
		}
		return ekm
	}
	refused("HT-SHA-256-EXPR", fast.InitialResponse("alice", exprToken, exporter(c3)), userAgentXML(agent)+fastEl("5"), "not-authorized")
	c5, _ := sasl2Client(t, srv.addr)
	c5.send(authenticateXML("HT-SHA-256-EXPR", fast.InitialResponse("alice", exprToken, exporter(c5)), userAgentXML(agent)+fastEl("6")))
	s5 := c5.next()
	wantSuccess(t, s5)
	ad5, _ := base64.StdEncoding.DecodeString(s5.ChildText(nsSASL2, "additional-data"))
	if string(ad5) != string(fast.ServerFinal(exprToken, exporter(c5))) {
		t.Fatal("the server's HT-SHA-256-EXPR proof does not cover this channel")
	}

	// Revoked (as from the devices command or the CLI): refused, and said so.
	if _, err := fast.Revoke(context.Background(), srv.im.Store(), "alice", agent, "revoked by the test"); err != nil {
		t.Fatal(err)
	}
	c4, _ := sasl2Client(t, srv.addr)
	c4.send(authenticateXML("HT-SHA-256-EXPR", fast.InitialResponse("alice", exprToken, exporter(c4)), userAgentXML(agent)+fastEl("7")))
	if f := c4.next(); f.Name != "failure" || f.Child(nsSASL, "credentials-expired") == nil {
		t.Fatalf("revoked token: %v", f)
	}
}
