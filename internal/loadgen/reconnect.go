package loadgen

// The reconnect scenario: N clients log in once, then each drops its TCP
// connection and reconnects, over and over, and every reconnect is timed
// and its round trips counted. Two ways to come back, side by side:
//
//   - legacy: stream header → features → SASL (SCRAM, the full exchange)
//     → stream restart → XEP-0198 <resume/> (falling back to bind and a
//     new <enable/> when the session cannot be resumed);
//   - sasl2: stream header → features → one SASL2 (XEP-0388)
//     <authenticate/> with a FAST token (XEP-0484, HT-SHA-256-NONE) and
//     an inline <resume/> (XEP-0198 §"SASL2 and BIND2 interaction"), a
//     Bind 2 (XEP-0386) request with an inline <enable/> riding along for
//     when the resumption fails → <success/>.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"bluetick/internal/fast"
)

// Reconnect modes (--reconnect-mode).
const (
	ModeFull   = "full"
	ModeLegacy = "legacy"
	ModeSASL2  = "sasl2"
)

// allModes is every mode, in the order the tables show them.
var allModes = []string{ModeFull, ModeLegacy, ModeSASL2}

// Namespaces of the SASL2 path.
const (
	nsSASL2   = "urn:xmpp:sasl:2"
	nsBind2   = "urn:xmpp:bind:0"
	nsFAST    = fast.NS
	tokenMech = fast.HTSHA256None
)

// reconnectModes lists the modes a --reconnect-mode value runs, in order.
func reconnectModes(m string) ([]string, error) {
	switch m {
	case "", "both":
		return []string{ModeLegacy, ModeSASL2}, nil
	case "all":
		return allModes, nil
	case ModeFull, ModeLegacy, ModeSASL2:
		return []string{m}, nil
	}
	return nil, fmt.Errorf("--reconnect-mode %q: use full, legacy, sasl2, both (legacy and sasl2) or all", m)
}

// rtConn counts round trips: each read that follows a write is one (the
// client sent something and now waits for the server). Counting on the
// TCP connection catches the TLS handshake's waits as well as XMPP's, and
// data that was already buffered costs nothing, as it should. Only the
// goroutine doing the login uses it.
type rtConn struct {
	net.Conn
	n     *int
	wrote bool
}

func (c *rtConn) Write(b []byte) (int, error) {
	c.wrote = true
	return c.Conn.Write(b)
}

func (c *rtConn) Read(b []byte) (int, error) {
	if c.wrote {
		c.wrote = false
		*c.n++
	}
	return c.Conn.Read(b)
}

// drop loses the connection as a network failure would, from the server's
// point of view: no </stream:stream>, no TLS close_notify, and a reset
// (linger 0) so that the client's ports do not pile up in TIME_WAIT.
func (c *Conn) drop() {
	if c.done.Swap(true) {
		return
	}
	if c.stop != nil {
		c.stop()
	}
	if tc, ok := c.raw.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.raw.Close()
}

// rcState is what a client keeps between its connections, as a real one
// would: the stream management id and count, and for SASL2 its
// user-agent id and FAST token.
type rcState struct {
	user  string
	agent string // SASL2 <user-agent id=""/>: a UUID, stable for the client
	jid   string // full JID of the session
	smID  string // XEP-0198 id of the resumable session ("" = none)
	h     uint32 // stanzas handled from the server on that session
	token string // FAST token ("" = none yet)
	count int64  // logins with token (the <fast count=""/> when sendCount)
	// sendCount: the token logins carry count='' (XEP-0484's replay
	// counter, required only with TLS 0-RTT; xmpp.js sends none). The
	// server writes each count it accepts.
	sendCount bool
	conn      *Conn
	// offer is the server's SASL2 offer seen at the last connection: with
	// a token, the next <authenticate/> goes with the stream header.
	offer *sasl2Offer
}

func newRCState(user string, sendCount bool) *rcState {
	return &rcState{user: user, agent: newUUID(), sendCount: sendCount}
}

// newUUID is a random (version 4) UUID.
func newUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// rcOutcome describes one successful (re)connection.
type rcOutcome struct {
	rt            int  // round trips, from TCP connect to the session being usable
	resumed       bool // the previous session was resumed
	resumeFailed  bool // a resumption was asked for and refused (a new session was bound)
	tokenRefused  bool // the FAST token was refused (the password was used)
	tokenReceived bool // a new FAST token came with <success/>
}

// connectFunc opens a session for st: a resumed one when st has one to
// resume, a new one otherwise.
type connectFunc func(ctx context.Context, opt *Options, st *rcState, password string) (*Conn, rcOutcome, error)

// legacyConnect: SASL (RFC 6120), stream restart, then XEP-0198 <resume/>
// or, for a first login or when resumption fails, bind and
// <enable resume='true'/>.
func legacyConnect(ctx context.Context, opt *Options, st *rcState, password string) (*Conn, rcOutcome, error) {
	var out rcOutcome
	c, err := scramConnect(ctx, opt, st, password, true, &out)
	return c, out, err
}

// fullConnect is a full SCRAM login, what a client without stream
// resumption (or whose session has expired) does at every connection:
// SASL, stream restart, bind, <enable/> for acks only, the roster and the
// initial presence. The session is usable once the roster has come.
func fullConnect(ctx context.Context, opt *Options, st *rcState, password string) (*Conn, rcOutcome, error) {
	st.smID, st.h = "", 0
	var out rcOutcome // its rt counts on: the connection holds &out.rt
	c, err := scramConnect(ctx, opt, st, password, false, &out)
	if err != nil {
		return nil, out, err
	}
	if err := c.Send("<iq type='get' id='roster1'><query xmlns='jabber:iq:roster'/></iq>"); err != nil {
		c.Close()
		return nil, out, phase("roster", err)
	}
	for {
		e, err := c.next()
		if err != nil {
			c.Close()
			return nil, out, phase("roster", err)
		}
		if e.Local() == "iq" && e.Attr("id") == "roster1" {
			if e.Attr("type") != "result" {
				c.Close()
				return nil, out, phase("roster", fmt.Errorf("roster get answered type=%q", e.Attr("type")))
			}
			break
		}
	}
	if err := c.Send("<presence/>"); err != nil {
		c.Close()
		return nil, out, phase("presence", err)
	}
	return c, out, nil
}

// scramConnect logs in with SASL and restarts the stream, then resumes
// st's session when resumable and st has one, else binds and enables
// stream management (resumable or not).
func scramConnect(ctx context.Context, opt *Options, st *rcState, password string, resumable bool, out *rcOutcome) (*Conn, error) {
	c, f, err := dialWith(ctx, opt, dialExtra{rt: &out.rt})
	if err != nil {
		return nil, err
	}
	c.User = st.user
	if err := c.auth(f, st.user, password); err != nil {
		c.Close()
		return nil, phase("auth", err)
	}
	if f, err = c.openStream(); err != nil {
		c.Close()
		return nil, phase("stream", err)
	}
	if f.Child("sm", nsSM) == nil {
		c.Close()
		return nil, phase("sm", errors.New("server does not offer XEP-0198 stream management"))
	}
	if st.smID != "" {
		if err := c.Send("<resume xmlns='" + nsSM + "' previd='" + escape(st.smID) + "' h='" + strconv.FormatUint(uint64(st.h), 10) + "'/>"); err != nil {
			c.Close()
			return nil, phase("resume", err)
		}
		e, err := c.next()
		if err != nil {
			c.Close()
			return nil, phase("resume", err)
		}
		switch e.Local() {
		case "resumed":
			c.SM, c.smIn, c.JID = true, st.h, st.jid
			out.resumed = true
			return c, nil
		case "failed":
			out.resumeFailed = true
			st.smID, st.h = "", 0
		default:
			c.Close()
			return nil, phase("resume", fmt.Errorf("got <%s> instead of <resumed/> or <failed/>", e.Name))
		}
	}
	if err := c.bind(f); err != nil {
		c.Close()
		return nil, phase("bind", err)
	}
	enable := "<enable xmlns='" + nsSM + "' resume='true'/>"
	if !resumable {
		enable = "<enable xmlns='" + nsSM + "'/>"
	}
	if err := c.Send(enable); err != nil {
		c.Close()
		return nil, phase("sm", err)
	}
	e, err := c.next()
	// A new session may hear of the account's other sessions first (their
	// presence) before <enabled/>.
	for err == nil && (e.Local() == "presence" || e.Local() == "message") {
		e, err = c.next()
	}
	if err != nil {
		c.Close()
		return nil, phase("sm", err)
	}
	if !resumable {
		if e.Local() != "enabled" {
			c.Close()
			return nil, phase("sm", fmt.Errorf("got <%s> instead of <enabled/>", e.Name))
		}
		c.SM, c.smIn = true, 0
		st.jid = c.JID
		return c, nil
	}
	if err := st.enabled(e); err != nil {
		c.Close()
		return nil, phase("sm", err)
	}
	c.SM, c.smIn = true, 0
	st.jid = c.JID
	return c, nil
}

// enabled takes the server's answer to <enable resume='true'/>.
func (st *rcState) enabled(e *Elem) error {
	switch {
	case e.Local() == "failed":
		return fmt.Errorf("stream management refused: %s", smCondition(e))
	case e.Local() != "enabled":
		return fmt.Errorf("got <%s> instead of <enabled/>", e.Name)
	case e.Attr("id") == "" || (e.Attr("resume") != "true" && e.Attr("resume") != "1"):
		return errors.New("server does not allow this session to be resumed (<enabled/> without resume='true' and an id)")
	}
	st.smID, st.h = e.Attr("id"), 0
	return nil
}

func smCondition(e *Elem) string {
	for _, ch := range e.Children {
		if ch.Local() != "text" {
			return ch.Local()
		}
	}
	return "no condition"
}

// sasl2Offer is what a server's features offer for the SASL2 path.
type sasl2Offer struct {
	mechs    map[string]bool // SASL2 mechanisms
	fast     map[string]bool // FAST mechanisms (inline <fast/>)
	inlineSM bool            // inline XEP-0198 resumption (<sm/> in <inline/>)
	bindNS   string          // Bind 2 namespace offered inline ("" = none)
	bindSM   bool            // Bind 2 can enable stream management inline
}

// ErrNoSASL2 is the error of a sasl2 run against a server without SASL2.
var ErrNoSASL2 = errors.New("server does not offer SASL2 (XEP-0388: no `<authentication xmlns='urn:xmpp:sasl:2'/>` in the stream features)")

// parseSASL2 reads the SASL2 offer of the stream features.
func parseSASL2(f *Elem) (*sasl2Offer, error) {
	a := f.Child("authentication", nsSASL2)
	if a == nil || a.Attr("xmlns") != nsSASL2 {
		return nil, ErrNoSASL2
	}
	o := &sasl2Offer{mechs: map[string]bool{}, fast: map[string]bool{}}
	for _, ch := range a.Children {
		if ch.Local() == "mechanism" {
			o.mechs[strings.TrimSpace(ch.Text)] = true
		}
	}
	in := a.Child("inline", "")
	if in == nil {
		return o, nil
	}
	for _, ch := range in.Children {
		switch {
		case ch.Local() == "sm" && ch.Attr("xmlns") == nsSM:
			o.inlineSM = true
		case ch.Local() == "fast" && ch.Attr("xmlns") == nsFAST:
			for _, m := range ch.Children {
				if m.Local() == "mechanism" {
					o.fast[strings.TrimSpace(m.Text)] = true
				}
			}
		case ch.Local() == "bind" && (ch.Attr("xmlns") == nsBind2 || ch.Attr("xmlns") == "urn:xmpp:bind2:1"):
			o.bindNS = ch.Attr("xmlns")
			// <feature var='urn:xmpp:sm:3'/> in Bind 2's <inline/> (XEP-0198 §"Enable Stream Management Inline")
			if bi := ch.Child("inline", ""); bi != nil {
				for _, ft := range bi.Children {
					if ft.Local() == "feature" && ft.Attr("var") == nsSM {
						o.bindSM = true
					}
				}
			}
		}
	}
	return o, nil
}

// check says what the sasl2 mode needs and the offer lacks.
func (o *sasl2Offer) check(passwordMech string) error {
	var miss []string
	if !o.mechs[passwordMech] {
		miss = append(miss, "the password mechanism "+passwordMech)
	}
	if !o.fast[tokenMech] {
		miss = append(miss, "FAST (XEP-0484) with "+tokenMech+" (`<fast xmlns='urn:xmpp:fast:0'><mechanism>"+tokenMech+"</mechanism></fast>` in `<inline/>`)")
	}
	if !o.inlineSM {
		miss = append(miss, "inline stream resumption (`<sm xmlns='urn:xmpp:sm:3'/>` in `<inline/>`)")
	}
	if o.bindNS == "" {
		miss = append(miss, "Bind 2 (XEP-0386: `<bind xmlns='urn:xmpp:bind:0'/>` in `<inline/>`)")
	} else if !o.bindSM {
		miss = append(miss, "stream management inline in Bind 2 (`<feature var='urn:xmpp:sm:3'/>` in Bind 2's `<inline/>`)")
	}
	if len(miss) > 0 {
		return errors.New("server offers SASL2 but not " + strings.Join(miss, ", nor "))
	}
	return nil
}

func passwordMech(opt *Options) string {
	if opt.Mech == "" {
		return "SCRAM-SHA-1"
	}
	return opt.Mech
}

// probeSASL2 opens one stream and checks that the server offers all the
// sasl2 mode uses.
func probeSASL2(ctx context.Context, opt *Options) error {
	c, f, err := dial(ctx, opt)
	if err != nil {
		return err
	}
	defer c.Close()
	o, err := parseSASL2(f)
	if err != nil {
		return err
	}
	return o.check(passwordMech(opt))
}

// sasl2Connect: one SASL2 <authenticate/>. Without a token (first login,
// or after the token was refused) it uses the password and asks for a
// FAST token; with one, HT-SHA-256-NONE. It always carries a Bind 2
// request enabling stream management, and when there is a session to
// resume, an inline <resume/>, which the server tries first.
func sasl2Connect(ctx context.Context, opt *Options, st *rcState, password string) (*Conn, rcOutcome, error) {
	var out rcOutcome
	// With a token and the server known, <authenticate/> goes with the
	// stream header inside TLS (see dialExtra.early): one round trip
	// after TLS.
	var early *sasl2Req
	x := dialExtra{from: bareJID(st.user, opt.Domain), rt: &out.rt}
	if st.token != "" && st.offer != nil && (opt.TLS == "direct" || opt.TLS == "starttls") {
		early = st.tokenRequest(st.offer)
		x.early = early.xml
	}
	c, f, err := dialWith(ctx, opt, x)
	if err != nil {
		return nil, out, err
	}
	c.User = st.user
	o, err := parseSASL2(f)
	if err == nil {
		err = o.check(passwordMech(opt))
	}
	if err != nil {
		c.Close()
		return nil, out, phase("sasl2", err)
	}
	st.offer = o
	for {
		useToken := st.token != ""
		var err error
		if early != nil {
			err = c.sasl2Read(st, early, &out)
			early = nil
		} else {
			err = c.sasl2Auth(o, st, password, &out)
		}
		if err == nil {
			return c, out, nil
		}
		var tf *tokenFailure
		if useToken && errors.As(err, &tf) {
			// XEP-0484: discard the token and fall back to the password,
			// on the same stream (a failed SASL2 exchange changes nothing).
			st.token, st.count = "", 0
			out.tokenRefused = true
			continue
		}
		c.Close()
		return nil, out, phase("sasl2", err)
	}
}

// tokenFailure is a SASL2 <failure/> to a token login.
type tokenFailure struct{ cond, text string }

func (e *tokenFailure) Error() string {
	if e.text != "" {
		return "token refused: " + e.cond + " (" + e.text + ")"
	}
	return "token refused: " + e.cond
}

// sasl2Auth runs one <authenticate/> exchange to its <success/>.
func (c *Conn) sasl2Auth(o *sasl2Offer, st *rcState, password string, out *rcOutcome) error {
	if st.token != "" {
		req := st.tokenRequest(o)
		if err := c.Send(req.xml); err != nil {
			return err
		}
		return c.sasl2Read(st, req, out)
	}
	var (
		mech    = passwordMech(c.opt)
		initial []byte
		sc      *scramClient
		token   string
	)
	switch mech {
	case "PLAIN":
		initial = []byte("\x00" + st.user + "\x00" + password)
	default:
		var err error
		if sc, err = newSCRAM(mech, st.user, password, ""); err != nil {
			return err
		}
		initial = []byte(sc.First())
	}
	req := &sasl2Req{xml: st.authenticateXML(o, mech, initial, token), mech: mech, token: token, sc: sc}
	if err := c.Send(req.xml); err != nil {
		return err
	}
	return c.sasl2Read(st, req, out)
}

// sasl2Req is an <authenticate/> sent, and what its answers are checked
// against.
type sasl2Req struct {
	xml, mech, token string
	sc               *scramClient // the password mechanism's client, nil for a token
}

// tokenRequest is the <authenticate/> of a token login (the count is
// taken).
func (st *rcState) tokenRequest(o *sasl2Offer) *sasl2Req {
	st.count++
	return &sasl2Req{xml: st.authenticateXML(o, tokenMech, fast.InitialResponse(st.user, st.token, nil), st.token), mech: tokenMech, token: st.token}
}

// authenticateXML is the <authenticate/> of st: user agent, <fast/> with
// the count (token) or <request-token/> (password), <resume/> if there is
// a session, and Bind 2 enabling stream management.
func (st *rcState) authenticateXML(o *sasl2Offer, mech string, initial []byte, token string) string {
	var b strings.Builder
	b.WriteString("<authenticate xmlns='" + nsSASL2 + "' mechanism='" + mech + "'><initial-response>")
	b.WriteString(base64.StdEncoding.EncodeToString(initial))
	b.WriteString("</initial-response><user-agent id='" + st.agent + "'><software>bluetick bench</software></user-agent>")
	switch {
	case token != "" && st.sendCount:
		b.WriteString("<fast xmlns='" + nsFAST + "' count='" + strconv.FormatInt(st.count, 10) + "'/>")
	case token != "":
		b.WriteString("<fast xmlns='" + nsFAST + "'/>")
	default:
		b.WriteString("<request-token xmlns='" + nsFAST + "' mechanism='" + tokenMech + "'/>")
	}
	if st.smID != "" {
		b.WriteString("<resume xmlns='" + nsSM + "' previd='" + escape(st.smID) + "' h='" + strconv.FormatUint(uint64(st.h), 10) + "'/>")
	}
	b.WriteString("<bind xmlns='" + o.bindNS + "'><tag>bench</tag><enable xmlns='" + nsSM + "' resume='true'/></bind></authenticate>")
	return b.String()
}

// sasl2Read reads the server's answers to req up to <success/>.
func (c *Conn) sasl2Read(st *rcState, req *sasl2Req, out *rcOutcome) error {
	mech, token, sc := req.mech, req.token, req.sc
	for {
		e, err := c.next()
		if err != nil {
			return err
		}
		if e.Attr("xmlns") != nsSASL2 {
			return fmt.Errorf("unexpected <%s xmlns='%s'> during SASL2", e.Name, e.Attr("xmlns"))
		}
		switch e.Local() {
		case "challenge":
			if sc == nil {
				return fmt.Errorf("unexpected <challenge/> to %s", mech)
			}
			if err := c.scramResponse(sc, e, nsSASL2); err != nil {
				return err
			}
		case "failure":
			cond, text := "no condition", ""
			for _, ch := range e.Children {
				switch {
				case ch.Local() == "text":
					text = strings.TrimSpace(ch.Text)
				case ch.Attr("xmlns") == nsSASL || ch.Attr("xmlns") == "":
					cond = ch.Local()
				}
			}
			if token != "" {
				return &tokenFailure{cond, text}
			}
			if text != "" {
				return fmt.Errorf("SASL2 failure: %s (%s)", cond, text)
			}
			return fmt.Errorf("SASL2 failure: %s", cond)
		case "continue":
			return errors.New("server asks for further SASL2 tasks (<continue/>): not supported here")
		case "success":
			return c.sasl2Success(e, st, mech, token, sc, out)
		default:
			return fmt.Errorf("unexpected <%s/> during SASL2", e.Name)
		}
	}
}

// sasl2Success checks the server's proof and takes the session state from
// a SASL2 <success/>.
func (c *Conn) sasl2Success(e *Elem, st *rcState, mech, token string, sc *scramClient, out *rcOutcome) error {
	var add []byte
	hasAdd := false
	if ad := e.Child("additional-data", nsSASL2); ad != nil {
		v, err := base64.StdEncoding.DecodeString(strings.TrimSpace(ad.Text))
		if err != nil {
			return errors.New("bad base64 in <additional-data/>")
		}
		add, hasAdd = v, true
	}
	switch {
	case token != "":
		// HT: the server proves it knows the token too.
		if !hasAdd {
			return errors.New("no <additional-data/> (the HT server proof) in <success/>")
		}
		if !hmac.Equal(add, fast.ServerFinal(token, nil)) {
			return errors.New("HT server proof mismatch: the server does not know the token")
		}
	case sc != nil:
		if !hasAdd {
			return errors.New("no <additional-data/> (the SCRAM server signature) in <success/>")
		}
		if err := sc.Verify(string(add)); err != nil {
			return err
		}
	}
	if ai := e.Child("authorization-identifier", nsSASL2); ai != nil {
		c.JID = strings.TrimSpace(ai.Text)
	}
	if t := e.Child("token", nsFAST); t != nil {
		if t.Attr("token") == "" {
			return errors.New("<token/> without a token")
		}
		st.token, st.count = t.Attr("token"), 0
		out.tokenReceived = true
	}
	if st.token == "" {
		return errors.New("no FAST <token/> in <success/> although one was requested")
	}
	if r := e.Child("resumed", nsSM); r != nil && r.Attr("xmlns") == nsSM {
		if st.smID == "" || r.Attr("previd") != st.smID {
			return fmt.Errorf("<resumed previd='%s'/> for a session not asked for", r.Attr("previd"))
		}
		c.SM, c.smIn = true, st.h
		if c.JID == "" || !strings.Contains(c.JID, "/") {
			c.JID = st.jid
		}
		out.resumed = true
		return nil
	}
	if f := e.Child("failed", nsSM); f != nil && f.Attr("xmlns") == nsSM {
		if st.smID == "" {
			return errors.New("<failed xmlns='urn:xmpp:sm:3'/> without a resumption asked for")
		}
		out.resumeFailed = true
		st.smID, st.h = "", 0
	}
	bound := e.Child("bound", "")
	if bound == nil || (bound.Attr("xmlns") != nsBind2 && bound.Attr("xmlns") != "urn:xmpp:bind2:1") {
		return errors.New("<success/> has neither <resumed/> nor Bind 2 <bound/>")
	}
	if c.JID == "" || !strings.Contains(c.JID, "/") {
		return fmt.Errorf("<authorization-identifier/> %q is not a full JID after Bind 2", c.JID)
	}
	en := bound.Child("enabled", nsSM)
	if en == nil {
		en = bound.Child("failed", nsSM)
	}
	if en == nil || en.Attr("xmlns") != nsSM {
		return errors.New("<bound/> without the inline XEP-0198 <enabled/>")
	}
	if err := st.enabled(en); err != nil {
		return err
	}
	c.SM, c.smIn = true, 0
	st.jid = c.JID
	// <stream:features> follow (XEP-0388 §"Success"), without a restart:
	// the session is usable now, and Serve ignores them.
	return nil
}

// ReconnectPart is one mode's share of a process's measurements.
type ReconnectPart struct {
	Unsupported   string         `json:"unsupported,omitempty"`
	Clients       int            `json:"clients"`
	Logins        int            `json:"logins"`       // first logins that succeeded
	LoginFailed   int            `json:"login_failed"` // first logins that failed
	Attempts      int            `json:"attempts"`     // reconnects tried
	OK            int            `json:"ok"`
	Failed        int            `json:"failed"`
	Resumed       int            `json:"resumed"`
	ResumeFailed  int            `json:"resume_failed"` // resumption refused, new session bound
	TokenRefused  int            `json:"token_refused"` // FAST token refused, password used
	TokenReceived int            `json:"token_received"`
	Lat           []int64        `json:"lat,omitempty"`
	RT            map[int]int    `json:"round_trips,omitempty"` // round trips → reconnects
	Errors        map[string]int `json:"errors,omitempty"`
}

func newReconnectPart() *ReconnectPart {
	return &ReconnectPart{RT: map[int]int{}, Errors: map[string]int{}}
}

func (p *ReconnectPart) merge(o *ReconnectPart) {
	if p.Unsupported == "" {
		p.Unsupported = o.Unsupported
	}
	p.Clients += o.Clients
	p.Logins += o.Logins
	p.LoginFailed += o.LoginFailed
	p.Attempts += o.Attempts
	p.OK += o.OK
	p.Failed += o.Failed
	p.Resumed += o.Resumed
	p.ResumeFailed += o.ResumeFailed
	p.TokenRefused += o.TokenRefused
	p.TokenReceived += o.TokenReceived
	p.Lat = append(p.Lat, o.Lat...)
	for k, v := range o.RT {
		p.RT[k] += v
	}
	for k, v := range o.Errors {
		p.Errors[k] += v
	}
}

// rcPart returns the mode's part (p.mu held by the caller).
func (p *Partial) rcPart(mode string) *ReconnectPart {
	if p.Reconnect == nil {
		p.Reconnect = map[string]*ReconnectPart{}
	}
	r := p.Reconnect[mode]
	if r == nil {
		r = newReconnectPart()
		p.Reconnect[mode] = r
	}
	return r
}

// reconnect runs the modes one after the other on the same users.
func (w *worker) reconnect() error {
	modes, err := reconnectModes(w.cfg.ReconnectMode)
	if err != nil {
		return err
	}
	var idx []int
	for i := 0; i < w.cfg.ReconnectClients; i++ {
		if w.mine(i) {
			idx = append(idx, i)
		}
	}
	w.measureStart()
	for _, m := range modes {
		if err := w.reconnectMode(m, idx); err != nil {
			return err
		}
	}
	w.measureEnd()
	return nil
}

func (w *worker) reconnectMode(mode string, idx []int) error {
	cfg := w.cfg
	connect := map[string]connectFunc{ModeFull: fullConnect, ModeLegacy: legacyConnect, ModeSASL2: sasl2Connect}[mode]
	w.p.mu.Lock()
	part := w.p.rcPart(mode)
	part.Clients += len(idx)
	w.p.mu.Unlock()
	if mode == ModeSASL2 {
		if err := probeSASL2(w.ctx, cfg.Opt); err != nil {
			w.p.mu.Lock()
			part.Unsupported = err.Error()
			w.p.mu.Unlock()
		}
	}
	// First logins, at most Concurrency in flight: not measured.
	states := make([]*rcState, len(idx))
	if part.Unsupported == "" {
		sem := make(chan struct{}, cfg.Concurrency)
		var wg sync.WaitGroup
		for k, i := range idx {
			select {
			case sem <- struct{}{}:
			case <-w.ctx.Done():
			}
			if w.ctx.Err() != nil {
				break
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				st := newRCState(cfg.User(i), cfg.FastCount)
				start := time.Now()
				c, _, err := connect(w.ctx, cfg.Opt, st, cfg.Password)
				w.p.mu.Lock()
				defer w.p.mu.Unlock()
				w.p.Attempts++
				if err != nil {
					w.p.Failed++
					part.LoginFailed++
					w.p.Errors[mode+" login: "+Class(err)]++
					return
				}
				w.p.OK++
				part.Logins++
				w.p.Login = append(w.p.Login, int64(time.Since(start)))
				name := tlsName(c.TLSVersion)
				if c.TLSVersion != 0 {
					name += "/" + c.TLSCurve.String()
				}
				w.p.TLS[name]++
				st.conn = c
				states[k] = st
			}()
		}
		wg.Wait()
	}
	t0, err := w.barrier(mode + "-start")
	if err != nil {
		closeRC(states)
		return err
	}
	if part.Unsupported == "" {
		series := w.p.series("reconnects", cfg)
		var last atomic.Int64
		var wg sync.WaitGroup
		n := max(len(states), 1)
		spread := max(cfg.ReconnectPause, 250*time.Millisecond)
		for k, st := range states {
			if st == nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if !sleepUntil(w.ctx, t0.Add(spread*time.Duration(k)/time.Duration(n))) {
					return
				}
				for r := 0; r < cfg.Reconnects && w.ctx.Err() == nil; r++ {
					if st.conn != nil {
						st.h = st.conn.smIn
						st.conn.drop()
						st.conn = nil
					}
					if cfg.ReconnectPause > 0 && !sleepUntil(w.ctx, time.Now().Add(cfg.ReconnectPause)) {
						return
					}
					start := time.Now()
					c, out, err := connect(w.ctx, cfg.Opt, st, cfg.Password)
					end := time.Now()
					w.p.mu.Lock()
					part.Attempts++
					if out.tokenRefused {
						part.TokenRefused++
					}
					if err != nil {
						if w.ctx.Err() != nil {
							part.Attempts-- // cut by --duration: not a failure of the server
							w.p.mu.Unlock()
							return
						}
						part.Failed++
						part.Errors[Class(err)]++
						w.p.Errors[mode+" reconnect: "+Class(err)]++
						w.p.mu.Unlock()
						sleepUntil(w.ctx, time.Now().Add(100*time.Millisecond))
						continue
					}
					part.OK++
					part.Lat = append(part.Lat, int64(end.Sub(start)))
					part.RT[out.rt]++
					if out.resumed {
						part.Resumed++
					}
					if out.resumeFailed {
						part.ResumeFailed++
					}
					if out.tokenReceived {
						part.TokenReceived++
					}
					w.p.mu.Unlock()
					series.add(end)
					maxTime(&last, end.UnixNano())
					st.conn = c
				}
			}()
		}
		wg.Wait()
		w.p.span(mode, t0, time.Unix(0, max(last.Load(), t0.UnixNano())))
	}
	_, err = w.barrier(mode + "-end")
	closeRC(states)
	return err
}

// closeRC ends the clients' sessions cleanly (</stream:stream>).
func closeRC(states []*rcState) {
	conns := make([]*Conn, 0, len(states))
	for _, st := range states {
		if st != nil && st.conn != nil {
			conns = append(conns, st.conn)
		}
	}
	closeAll(conns)
}

// ReconnectSummary is one mode's outcome in a Result.
type ReconnectSummary struct {
	Unsupported   string      `json:"unsupported,omitempty"` // why the mode did not run
	Clients       int         `json:"clients"`
	Logins        int         `json:"logins"`
	LoginFailed   int         `json:"login_failed"`
	Attempts      int         `json:"attempts"`
	OK            int         `json:"ok"`
	Failed        int         `json:"failed"` // failed reconnects plus failed first logins
	Resumed       int         `json:"resumed"`
	ResumeFailed  int         `json:"resume_failed"`
	TokenRefused  int         `json:"token_refused"`
	TokenReceived int         `json:"token_received"`
	PerSecond     float64     `json:"reconnects_per_s"`
	Time          Summary     `json:"reconnect_time"`
	RoundTrips    float64     `json:"round_trips_median"`
	RoundTripsBy  map[int]int `json:"round_trips"` // round trips → reconnects
	ServerCPUus   float64     `json:"server_cpu_per_reconnect_us"`
}

// medianHist is the median of a histogram value → count.
func medianHist(h map[int]int) float64 {
	var v []float64
	for k, n := range h {
		for range n {
			v = append(v, float64(k))
		}
	}
	return median(v)
}

// fillReconnect computes the reconnect metrics, prefixed by the mode.
func (r *Result) fillReconnect(p *Partial, cpu func(a, b string) (float64, bool), add func(name string, v float64, unit, better string)) {
	r.Reconnect = map[string]*ReconnectSummary{}
	for _, m := range allModes {
		part := p.Reconnect[m]
		if part == nil {
			continue
		}
		s := &ReconnectSummary{Unsupported: part.Unsupported, Clients: part.Clients, Logins: part.Logins, LoginFailed: part.LoginFailed,
			Attempts: part.Attempts, OK: part.OK, Failed: part.Failed + part.LoginFailed, Resumed: part.Resumed, ResumeFailed: part.ResumeFailed,
			TokenRefused: part.TokenRefused, TokenReceived: part.TokenReceived, RoundTripsBy: part.RT}
		r.Reconnect[m] = s
		if s.Unsupported != "" {
			r.Notes = append(r.Notes, m+": "+s.Unsupported)
			continue
		}
		s.Time = Summarize(part.Lat)
		s.RoundTrips = medianHist(part.RT)
		if secs := r.Spans[m]; secs > 0 {
			s.PerSecond = round(float64(s.OK)/secs, 1)
		}
		add(m+"_reconnects_per_s", s.PerSecond, "reconnects/s", "higher")
		add(m+"_reconnect_p50", s.Time.P50, "ms", "lower")
		add(m+"_reconnect_p99", s.Time.P99, "ms", "lower")
		add(m+"_round_trips", s.RoundTrips, "", "lower")
		if c, ok := cpu(m+"-start", m+"-end"); ok && s.OK > 0 {
			r.ServerCPU = round(r.ServerCPU+c, 2)
			s.ServerCPUus = round(c*1e6/float64(s.OK), 1)
			add(m+"_server_cpu_per_reconnect", s.ServerCPUus, "µs", "lower")
		}
		add(m+"_failed", float64(s.Failed), "", "lower")
		if s.ResumeFailed > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: %d of %d reconnects could not resume and bound a new session", m, s.ResumeFailed, s.OK))
		}
		if s.TokenRefused > 0 {
			r.Notes = append(r.Notes, fmt.Sprintf("%s: the FAST token was refused %d times (the password was used instead)", m, s.TokenRefused))
		}
	}
}

// reconnectTable writes the modes side by side.
func (r *Result) reconnectTable(b *strings.Builder) {
	var modes []string
	for _, m := range allModes {
		if r.Reconnect[m] != nil {
			modes = append(modes, m)
		}
	}
	b.WriteString("| metric | unit |")
	for _, m := range modes {
		b.WriteString(" " + m + " |")
	}
	b.WriteString("\n|---|---|")
	for range modes {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	row := func(name, unit string, v func(s *ReconnectSummary) string) {
		fmt.Fprintf(b, "| %s | %s |", name, unit)
		for _, m := range modes {
			s := r.Reconnect[m]
			if s.Unsupported != "" {
				if name == "status" {
					fmt.Fprintf(b, " %s |", s.Unsupported)
				} else {
					b.WriteString(" – |")
				}
				continue
			}
			b.WriteString(" " + v(s) + " |")
		}
		b.WriteString("\n")
	}
	num := func(f func(s *ReconnectSummary) float64) func(s *ReconnectSummary) string {
		return func(s *ReconnectSummary) string { return fmtNum(f(s)) }
	}
	row("status", "", func(s *ReconnectSummary) string { return "ran" })
	row("reconnects_per_s", "reconnects/s", num(func(s *ReconnectSummary) float64 { return s.PerSecond }))
	row("reconnect_p50", "ms", num(func(s *ReconnectSummary) float64 { return s.Time.P50 }))
	row("reconnect_p99", "ms", num(func(s *ReconnectSummary) float64 { return s.Time.P99 }))
	row("round_trips", "median", num(func(s *ReconnectSummary) float64 { return s.RoundTrips }))
	row("server_cpu_per_reconnect", "µs", func(s *ReconnectSummary) string {
		if s.ServerCPUus == 0 {
			return "– (no --pid)"
		}
		return fmtNum(s.ServerCPUus)
	})
	row("failed", "", func(s *ReconnectSummary) string { return strconv.Itoa(s.Failed) })
	row("reconnects ok/tried", "", func(s *ReconnectSummary) string { return fmt.Sprintf("%d/%d", s.OK, s.Attempts) })
	row("resumed / new session", "", func(s *ReconnectSummary) string { return fmt.Sprintf("%d / %d", s.Resumed, s.ResumeFailed) })
	row("first logins ok/clients", "", func(s *ReconnectSummary) string { return fmt.Sprintf("%d/%d", s.Logins, s.Clients) })
}
