package loadgen

import (
	"bufio"
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/fast"
)

// fakeSASL2 is a tiny XMPP server speaking only what the sasl2 mode uses,
// written after the examples of XEP-0388, XEP-0386, XEP-0484 and XEP-0198
// §"SASL2 and BIND2 interaction": plain TCP (the client is told --tls
// none), SCRAM-SHA-1 for the password, HT-SHA-256-NONE for tokens.
type fakeSASL2 struct {
	t        *testing.T
	ln       net.Listener
	user     string
	password string

	mu         sync.Mutex
	agent      string           // user-agent id of the client's first login
	tokens     map[string]int64 // valid tokens → highest count used
	sessions   map[string]bool  // resumable SM ids
	nTok, nSM  int
	tokenLogin int // token logins so far

	// Knobs for the next token login.
	rotateNext    bool // issue a new token with <success/> (rotation)
	failResume    bool // refuse the resumption (<failed/>, then Bind 2)
	refuseToken   bool // fail the token login (not-authorized)
	badProof      bool // send a wrong HT server proof
	noFeatures    bool // offer legacy SASL only (as Bluetick's main today)
	sawClose      int  // clean </stream:stream> seen
	lastFastCount int64
}

func newFakeSASL2(t *testing.T) *fakeSASL2 {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeSASL2{t: t, ln: ln, user: "alice", password: "pencil", tokens: map[string]int64{}, sessions: map[string]bool{}}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return f
}

func (f *fakeSASL2) opt() *Options {
	return &Options{Server: f.ln.Addr().String(), Domain: "example.org", TLS: "none", Mech: "SCRAM-SHA-1", Timeout: 5 * time.Second}
}

func (f *fakeSASL2) errorf(format string, a ...any) { f.t.Errorf("fake server: "+format, a...) }

func (f *fakeSASL2) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := newReader(bufio.NewReader(c))
	w := func(s string) { c.Write([]byte(s)) }
	hdr, err := r.StreamHeader()
	if err != nil {
		f.errorf("stream header: %v", err)
		return
	}
	f.mu.Lock()
	legacyOnly := f.noFeatures
	f.mu.Unlock()
	w(`<?xml version='1.0'?><stream:stream from='example.org' id='++TR84Sm6A3hnt3Q065SnAbbk3Y=' to='` + hdr.Attr("from") +
		`' version='1.0' xml:lang='en' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>`)
	if legacyOnly {
		w(`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>`)
		r.Next()
		return
	}
	if hdr.Attr("from") != f.user+"@example.org" {
		f.errorf("stream header from=%q, XEP-0484 wants the user's JID", hdr.Attr("from"))
	}
	// XEP-0388 §"Discovering Support", XEP-0386 §"Discovering support",
	// XEP-0484 §"Discovering support", XEP-0198 inline examples.
	w(`<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-1-PLUS</mechanism>` +
		`<inline><sm xmlns='urn:xmpp:sm:3'/><bind xmlns='urn:xmpp:bind:0'><inline><feature var="urn:xmpp:carbons:2" /><feature var="urn:xmpp:sm:3" /></inline></bind>` +
		`<fast xmlns='urn:xmpp:fast:0' tls-0rtt='true'><mechanism>HT-SHA-256-ENDP</mechanism><mechanism>HT-SHA-256-EXPR</mechanism><mechanism>HT-SHA-256-NONE</mechanism></fast>` +
		`</inline></authentication><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/></sasl-channel-binding></stream:features>`)
	for {
		a, err := r.Next()
		if err != nil {
			return
		}
		if a.Local() != "authenticate" || a.Attr("xmlns") != nsSASL2 {
			f.errorf("got <%s> instead of <authenticate/>", a.Name)
			return
		}
		done, ok := f.authenticate(r, w, a)
		if !ok {
			return
		}
		if done {
			break
		}
	}
	// The session: until the client drops the connection or closes.
	for {
		_, err := r.Next()
		if errors.Is(err, errStreamEnd) {
			f.mu.Lock()
			f.sawClose++
			f.mu.Unlock()
			w("</stream:stream>")
			return
		}
		if err != nil {
			return
		}
	}
}

// authenticate answers one <authenticate/>: done when it succeeded, ok
// false when the connection is to end.
func (f *fakeSASL2) authenticate(r *reader, w func(string), a *Elem) (done, ok bool) {
	b64 := base64.StdEncoding
	ua := a.Child("user-agent", "")
	if ua == nil || ua.Attr("id") == "" {
		f.errorf("<authenticate/> without <user-agent id=''/>")
		return false, false
	}
	f.mu.Lock()
	if f.agent == "" {
		f.agent = ua.Attr("id")
	} else if f.agent != ua.Attr("id") {
		f.errorf("user-agent id changed: %q then %q", f.agent, ua.Attr("id"))
	}
	f.mu.Unlock()
	ir := a.Child("initial-response", "")
	if ir == nil {
		f.errorf("no <initial-response/>")
		return false, false
	}
	in, err := b64.DecodeString(strings.TrimSpace(ir.Text))
	if err != nil {
		f.errorf("initial response: %v", err)
		return false, false
	}
	var additional, token string
	switch mech := a.Attr("mechanism"); mech {
	case "SCRAM-SHA-1":
		rt := a.Child("request-token", nsFAST)
		if rt == nil || rt.Attr("mechanism") != "HT-SHA-256-NONE" {
			f.errorf("password login without <request-token mechanism='HT-SHA-256-NONE'/>")
		}
		if a.Child("fast", nsFAST) != nil {
			f.errorf("<fast/> in a password login")
		}
		v, ok := f.scram(r, w, string(in))
		if !ok {
			return false, false
		}
		additional = v
		token = f.issue()
	case "HT-SHA-256-NONE":
		fe := a.Child("fast", nsFAST)
		if fe == nil {
			f.errorf("token login without <fast/>")
			return false, false
		}
		count, _ := strconv.ParseInt(fe.Attr("count"), 10, 64)
		f.mu.Lock()
		f.tokenLogin++
		f.lastFastCount = count
		var used string
		for tok := range f.tokens {
			if hmac.Equal(in, fast.InitialResponse(f.user, tok, nil)) {
				used = tok
			}
		}
		refuse, bad, rotate := f.refuseToken, f.badProof, f.rotateNext
		f.refuseToken, f.badProof, f.rotateNext = false, false, false
		if used != "" && count <= f.tokens[used] {
			f.mu.Unlock()
			f.errorf("count %d not above %d: a replay", count, f.tokens[used])
			w(`<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>count already used</text></failure>`)
			return false, true
		}
		if used != "" {
			f.tokens[used] = count
		}
		f.mu.Unlock()
		if used == "" || refuse {
			if used == "" {
				f.errorf("unknown token in %q", in)
			}
			w(`<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/><text>invalid token</text></failure>`)
			return false, true
		}
		proof := fast.ServerFinal(used, nil)
		if bad {
			proof[0] ^= 1
		}
		additional = string(proof)
		if rotate {
			token = f.issue()
		}
	default:
		f.errorf("mechanism %q", mech)
		return false, false
	}
	// Success: resumption first (XEP-0198 §"Inline Stream Resumption"),
	// else Bind 2 with the inline <enable/>.
	var b strings.Builder
	b.WriteString(`<success xmlns='urn:xmpp:sasl:2'><additional-data>` + b64.EncodeToString([]byte(additional)) + `</additional-data>`)
	resumed := false
	if res := a.Child("resume", nsSM); res != nil {
		f.mu.Lock()
		ok := f.sessions[res.Attr("previd")] && !f.failResume
		f.failResume = false
		f.mu.Unlock()
		if ok {
			b.WriteString(`<authorization-identifier>alice@example.org</authorization-identifier><resumed xmlns='urn:xmpp:sm:3' h='0' previd='` + res.Attr("previd") + `'/>`)
			resumed = true
		} else {
			b.WriteString(`<authorization-identifier>alice@example.org/bench.4232f4d4</authorization-identifier>` +
				`<failed xmlns='urn:xmpp:sm:3' h='0'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>`)
		}
	} else {
		b.WriteString(`<authorization-identifier>alice@example.org/bench.4232f4d4</authorization-identifier>`)
	}
	if !resumed {
		bind := a.Child("bind", nsBind2)
		if bind == nil || bind.Attr("xmlns") != nsBind2 {
			f.errorf("no Bind 2 request")
			return false, false
		}
		en := bind.Child("enable", nsSM)
		if en == nil || en.Attr("resume") != "true" {
			f.errorf("Bind 2 without <enable xmlns='urn:xmpp:sm:3' resume='true'/>")
			return false, false
		}
		f.mu.Lock()
		f.nSM++
		id := fmt.Sprintf("sm%d", f.nSM)
		f.sessions[id] = true
		f.mu.Unlock()
		b.WriteString(`<bound xmlns='urn:xmpp:bind:0'><metadata xmlns='urn:xmpp:mam:2'><start id='YWxwaGEg' timestamp='2008-08-22T21:09:04Z' /></metadata>` +
			`<enabled xmlns='urn:xmpp:sm:3' id='` + id + `' resume='true' max='300'/></bound>`)
	}
	if token != "" {
		b.WriteString(`<token xmlns='urn:xmpp:fast:0' expiry='2030-03-12T14:36:15Z' token='` + token + `' />`)
	}
	b.WriteString(`</success>`)
	if !resumed { // XEP-0388: features follow, without a restart
		b.WriteString(`<stream:features><ver xmlns='urn:xmpp:features:rosterver'/></stream:features>`)
	}
	w(b.String())
	return true, true
}

func (f *fakeSASL2) issue() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nTok++
	tok := fmt.Sprintf("WXZzciBwYmFmdmZnZiBqdmd1IGp2eXFhcmZm%d", f.nTok)
	f.tokens[tok] = 0
	return tok
}

// scram runs the server side of SCRAM-SHA-1 (RFC 5802) inside SASL2 and
// returns the server-final message.
func (f *fakeSASL2) scram(r *reader, w func(string), clientFirst string) (string, bool) {
	b64 := base64.StdEncoding
	bare, ok := strings.CutPrefix(clientFirst, "n,,")
	if !ok || !strings.HasPrefix(bare, "n="+f.user+",r=") {
		f.errorf("client-first %q", clientFirst)
		return "", false
	}
	nonce := bare[len("n="+f.user+",r="):] + "3rfcNHYJY1ZVvWVs7j"
	salt := []byte("0123456789abcdef")
	serverFirst := "r=" + nonce + ",s=" + b64.EncodeToString(salt) + ",i=4096"
	w(`<challenge xmlns='urn:xmpp:sasl:2'>` + b64.EncodeToString([]byte(serverFirst)) + `</challenge>`)
	e, err := r.Next()
	if err != nil || e.Local() != "response" || e.Attr("xmlns") != nsSASL2 {
		f.errorf("expected <response/>: %v", err)
		return "", false
	}
	cf, _ := b64.DecodeString(strings.TrimSpace(e.Text))
	final := string(cf)
	i := strings.LastIndex(final, ",p=")
	if i < 0 || !strings.HasPrefix(final, "c=biws,r="+nonce) {
		f.errorf("client-final %q", final)
		return "", false
	}
	proof, _ := b64.DecodeString(final[i+3:])
	sp, _ := pbkdf2.Key(sha1.New, f.password, salt, 4096, sha1.Size)
	mac := func(k []byte, m string) []byte { h := hmac.New(sha1.New, k); h.Write([]byte(m)); return h.Sum(nil) }
	authMsg := bare + "," + serverFirst + "," + final[:i]
	clientKey := mac(sp, "Client Key")
	stored := sha1.Sum(clientKey)
	sig := mac(stored[:], authMsg)
	for k := range proof {
		proof[k] ^= sig[k]
	}
	if got := sha1.Sum(proof); !hmac.Equal(got[:], stored[:]) {
		w(`<failure xmlns='urn:xmpp:sasl:2'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>`)
		return "", false
	}
	return "v=" + b64.EncodeToString(mac(mac(sp, "Server Key"), authMsg)), true
}

// The sasl2 client against the fake server: first login with the password
// (token and session received), then reconnects with the token and an
// inline resumption; token rotation, a refused resumption, a refused token
// and a wrong server proof.
func TestSASL2ReconnectAgainstFakeServer(t *testing.T) {
	f := newFakeSASL2(t)
	opt := f.opt()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st := newRCState("alice", true)

	c, out, err := sasl2Connect(ctx, opt, st, "pencil")
	if err != nil {
		t.Fatal(err)
	}
	// TCP connect, header → features, authenticate → challenge, response → success.
	if out.rt != 4 || out.resumed || !out.tokenReceived || st.token == "" || st.smID != "sm1" || c.JID != "alice@example.org/bench.4232f4d4" {
		t.Fatalf("first login: %+v, state %+v, jid %q", out, st, c.JID)
	}
	first := st.token

	reconnect := func(name string) rcOutcome {
		t.Helper()
		st.h = c.smIn
		c.drop()
		var err error
		c, out, err = sasl2Connect(ctx, opt, st, "pencil")
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out
	}
	// TCP connect, header → features, authenticate → success.
	if out := reconnect("resume"); out.rt != 3 || !out.resumed || out.tokenReceived || st.count != 1 || st.smID != "sm1" {
		t.Fatalf("resume: %+v, state %+v", out, st)
	}
	if out := reconnect("resume again"); !out.resumed || st.count != 2 || f.lastFastCount != 2 {
		t.Fatalf("second resume: %+v, count %d, server saw %d", out, st.count, f.lastFastCount)
	}

	// Rotation: the new token replaces the old, its count starts again.
	f.mu.Lock()
	f.rotateNext = true
	f.mu.Unlock()
	if out := reconnect("rotation"); !out.resumed || !out.tokenReceived || st.token == first || st.count != 0 {
		t.Fatalf("rotation: %+v, state %+v", out, st)
	}
	if out := reconnect("after rotation"); !out.resumed || st.count != 1 || f.lastFastCount != 1 {
		t.Fatalf("after rotation: %+v, count %d, server saw %d", out, st.count, f.lastFastCount)
	}

	// The resumption refused: Bind 2 gives a new session in the same round trip.
	f.mu.Lock()
	f.failResume = true
	f.mu.Unlock()
	if out := reconnect("failed resume"); out.rt != 3 || out.resumed || !out.resumeFailed || st.smID != "sm2" || c.JID != "alice@example.org/bench.4232f4d4" {
		t.Fatalf("failed resume: %+v, state %+v", out, st)
	}

	// The token refused: the password on the same stream, a new token.
	f.mu.Lock()
	f.refuseToken = true
	f.mu.Unlock()
	old := st.token
	if out := reconnect("refused token"); out.rt != 5 || !out.tokenRefused || !out.resumed || !out.tokenReceived || st.token == old {
		t.Fatalf("refused token: %+v, state %+v", out, st)
	}

	// A server that does not know the token's proof is not trusted.
	f.mu.Lock()
	f.badProof = true
	f.mu.Unlock()
	st.h = c.smIn
	c.drop()
	if _, _, err := sasl2Connect(ctx, opt, st, "pencil"); err == nil || !strings.Contains(err.Error(), "server proof mismatch") {
		t.Fatalf("wrong HT proof accepted: %v", err)
	}
	c, _, err = sasl2Connect(ctx, opt, st, "pencil")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		f.mu.Lock()
		n := f.sawClose
		f.mu.Unlock()
		if n == 2 { // the client closed the stream after the wrong proof, and at the end
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Error("the clean close was not seen")
}

// Against a server without SASL2 the mode says so, before any client logs in.
func TestSASL2NotOffered(t *testing.T) {
	f := newFakeSASL2(t)
	f.noFeatures = true
	err := probeSASL2(context.Background(), f.opt())
	if !errors.Is(err, ErrNoSASL2) || !strings.Contains(err.Error(), "server does not offer SASL2") {
		t.Fatalf("probe: %v", err)
	}
}

func TestSASL2OfferCheck(t *testing.T) {
	parse := func(s string) *Elem {
		e, err := newReader(bufio.NewReader(strings.NewReader(s))).Next()
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// SASL2 without FAST, inline SM or Bind 2 (XEP-0388's first example).
	o, err := parseSASL2(parse(`<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>SCRAM-SHA-1</mechanism></authentication></stream:features>`))
	if err != nil {
		t.Fatal(err)
	}
	err = o.check("SCRAM-SHA-1")
	for _, want := range []string{"FAST", "inline stream resumption", "Bind 2"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check: %v, want it to name %s", err, want)
		}
	}
	// XEP-0198's inline example uses the bind2:1 namespace: accepted.
	o, err = parseSASL2(parse(`<stream:features><authentication xmlns="urn:xmpp:sasl:2"><mechanism>SCRAM-SHA-256</mechanism><inline>` +
		`<sm xmlns="urn:xmpp:sm:3"/><bind xmlns="urn:xmpp:bind2:1"><inline><feature var='urn:xmpp:sm:3'/></inline></bind>` +
		`<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast></inline></authentication></stream:features>`))
	if err != nil || o.check("SCRAM-SHA-256") != nil || o.bindNS != "urn:xmpp:bind2:1" {
		t.Errorf("full offer: %+v, %v, %v", o, err, o.check("SCRAM-SHA-256"))
	}
	if err := o.check("SCRAM-SHA-1"); err == nil || !strings.Contains(err.Error(), "SCRAM-SHA-1") {
		t.Errorf("missing password mechanism: %v", err)
	}
	if _, err := parseSASL2(parse(`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>`)); !errors.Is(err, ErrNoSASL2) {
		t.Errorf("legacy features: %v", err)
	}
}

func TestReconnectModes(t *testing.T) {
	for in, want := range map[string]string{"": "legacy sasl2", "both": "legacy sasl2", "legacy": "legacy", "sasl2": "sasl2"} {
		m, err := reconnectModes(in)
		if err != nil || strings.Join(m, " ") != want {
			t.Errorf("%q: %v %v", in, m, err)
		}
	}
	if _, err := reconnectModes("fast"); err == nil {
		t.Error("unknown mode accepted")
	}
	if got := medianHist(map[int]int{7: 3, 9: 1}); got != 7 {
		t.Errorf("median %v", got)
	}
}
