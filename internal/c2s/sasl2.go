package c2s

import (
	"context"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"bluetick/internal/auth"
	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// XEP-0388 Extensible SASL Profile (SASL2): authentication, resource
// binding (Bind2, bind2.go) and XEP-0198 resumption in one exchange, with
// no stream restart. Offered next to the RFC 6120 profile (sasl.go) on TCP,
// direct TLS and WebSocket wherever that one is; not on BOSH.
//
//	C: <authenticate mechanism='SCRAM-SHA-256'>
//	     <initial-response/> <user-agent id=UUID/> <bind/> <resume/>
//	S: <challenge/>  C: <response/>          (as the mechanism needs)
//	S: <success> <additional-data/> <authorization-identifier/>
//	     <resumed/> | [<failed/>] <bound><enabled/></bound>  [extensions]
//	   </success>
//	   <stream:features/>                     (not after a resumption)
//
// The server never sends <continue/>: it defines no task (second factor,
// password change), so <next/> and <task-data/> never occur.
//
// Failures are accounted for like the RFC 6120 profile's (sasl.go): the
// same per-address limit, the same per-account throttle around the
// password check, the same count of failures per stream (the fifth closes
// it). Every SASL2 failure is delayed like a wrong password (doubling
// limits.failed_auth_delay), except the throttles' own
// <temporary-auth-failure/>, answered at once, and the client's <abort/>.

// Namespaces of SASL2 and Bind2.
const (
	nsSASL2 = "urn:xmpp:sasl:2"
	nsBind2 = "urn:xmpp:bind:0"
)

// Bounds on what a client may put in <authenticate/>.
const (
	maxMechanismName = 20  // RFC 4422 §3.1: 1 to 20 characters
	maxUAText        = 256 // bytes of <software/> and of <device/>
	maxBindTag       = 64  // bytes of the Bind2 <tag/>
	// maxUserAgents is how many user agents (the most recently seen) are
	// kept per account: a client cannot fill the store with ids.
	maxUserAgents = 50
)

// sasl2Extension is an inline extension of SASL2 besides the built-in
// Bind2 and XEP-0198 resumption: FAST (XEP-0484) plugs in here. Extensions
// are registered on the Service (addSASL2Extension) before it serves.
//
// FAST's adapter would: advertise <fast xmlns='urn:xmpp:fast:0'> with its
// HT-* mechanisms in inline; answer negotiator for an HT-* mechanism (with
// req.el's <fast/> child checked: count, invalidate; a token is keyed by
// req.ua.id); and in success answer <request-token/> (and rotation) with a
// <token/>.
type sasl2Extension interface {
	// inline returns the element to list in <inline/> of the
	// <authentication/> feature on st (st.t.Secure(), st.from, ...), or
	// nil to offer nothing on this stream.
	inline(st *stream) *xmlstream.Element
	// negotiator starts the exchange of req.mechanism if it is one of the
	// extension's own mechanisms, which <authentication/> does not list
	// among the password mechanisms (FAST's HT-*); otherwise it returns
	// nil, nil. cfg is the stream's (authConfig): a negotiator checking a
	// secret that can be guessed (a password) must call cfg.Admit with the
	// canonical user before checking it, so the per-account throttle
	// applies; one checking a secret that cannot (FAST's 256-bit tokens,
	// see docs/devices.md) need not. A wrong secret fails with
	// not-authorized. An error (an *auth.Failure) refuses the request.
	negotiator(st *stream, req *sasl2Request, cfg auth.Config) (auth.Negotiator, error)
	// success is called once the client is authenticated as st.user,
	// before resumption and binding; what it returns goes at the end of
	// <success/> (FAST's <token/>). It is not called after a failure.
	success(ctx context.Context, st *stream, req *sasl2Request) []*xmlstream.Element
}

// addSASL2Extension registers an extension; call it before serving.
func (s *Service) addSASL2Extension(x sasl2Extension) { s.sasl2x = append(s.sasl2x, x) }

// sasl2Request is a parsed <authenticate/>.
type sasl2Request struct {
	mechanism  string
	initial    []byte // the initial response, if hasInitial
	hasInitial bool
	ua         *userAgent         // nil: no <user-agent/>
	resume     *xmlstream.Element // XEP-0198 <resume/>, nil: none
	bind       *bind2Request      // nil: no Bind2
	// el is the whole element, for extensions to read their own children
	// (in their namespaces, which the parser leaves alone).
	el *xmlstream.Element
	// neg runs the exchange (set when it starts): an extension's success
	// learns from it how the client authenticated.
	neg auth.Negotiator
}

// userAgent is a parsed <user-agent/> (XEP-0388 §2.3).
type userAgent struct {
	id       string // a UUID in lower case; "" if the client gave none
	software string
	device   string
}

// parseAuthenticate checks an <authenticate/> before anything is done
// with it: a malformed request fails as a whole (malformed-request,
// incorrect-encoding, invalid-mechanism), so no inline feature is ever
// half-applied. domain is the server's, to validate the Bind2 tag.
func parseAuthenticate(el *xmlstream.Element, domain string) (*sasl2Request, *auth.Failure) {
	req := &sasl2Request{mechanism: el.Attr("mechanism"), el: el}
	if req.mechanism == "" || len(req.mechanism) > maxMechanismName {
		return nil, &auth.Failure{Condition: "invalid-mechanism", Text: "the mechanism attribute names no mechanism"}
	}
	for _, c := range el.Elements() {
		switch {
		case c.Space == nsSASL2 && c.Name == "initial-response":
			if req.hasInitial {
				return nil, malformed("more than one <initial-response/>")
			}
			b, err := decodeSASL2(c.Text())
			if err != nil {
				return nil, &auth.Failure{Condition: "incorrect-encoding", Text: "<initial-response/> is not base64"}
			}
			req.initial, req.hasInitial = b, true
		case c.Space == nsSASL2 && c.Name == "user-agent":
			if req.ua != nil {
				return nil, malformed("more than one <user-agent/>")
			}
			ua, f := parseUserAgent(c)
			if f != nil {
				return nil, f
			}
			req.ua = ua
		case c.Space == nsSASL2:
			return nil, malformed("unknown element <" + c.Name + "/> in <authenticate/>")
		case c.Space == nsSM && c.Name == "resume":
			if req.resume != nil {
				return nil, malformed("more than one <resume/>")
			}
			req.resume = c
		case c.Space == nsBind2 && c.Name == "bind":
			if req.bind != nil {
				return nil, malformed("more than one <bind/>")
			}
			b, f := parseBind2(c, domain)
			if f != nil {
				return nil, f
			}
			req.bind = b
		}
		// Other namespaces: an extension's (req.el), or unknown and
		// ignored like any inline request the server did not offer.
	}
	return req, nil
}

// parseUserAgent checks <user-agent id=...><software/><device/>.
func parseUserAgent(el *xmlstream.Element) (*userAgent, *auth.Failure) {
	ua := &userAgent{}
	if hasAttr(el, "id") {
		id := el.Attr("id")
		if !isUUID(id) {
			return nil, malformed("the user-agent id must be a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e (XEP-0388 §2.3)")
		}
		ua.id = strings.ToLower(id)
	}
	for _, c := range el.Elements() {
		if c.Space != nsSASL2 {
			continue
		}
		var dst *string
		switch c.Name {
		case "software":
			dst = &ua.software
		case "device":
			dst = &ua.device
		default:
			continue
		}
		if *dst != "" {
			return nil, malformed("more than one <" + c.Name + "/> in <user-agent/>")
		}
		v := strings.TrimSpace(c.Text())
		if len(v) > maxUAText {
			return nil, malformed("<" + c.Name + "/> is longer than " + strconv.Itoa(maxUAText) + " bytes")
		}
		if strings.ContainsFunc(v, isControl) {
			return nil, malformed("<" + c.Name + "/> holds control characters")
		}
		*dst = strings.Clone(v) // kept in the store, not the decoder's buffer
	}
	return ua, nil
}

func hasAttr(el *xmlstream.Element, name string) bool {
	for _, a := range el.Attrs {
		if a.Name == name {
			return true
		}
	}
	return false
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// isUUID reports whether s is a UUID in its canonical text form
// (8-4-4-4-12 hex digits, RFC 9562 §4), of any version and either case.
// XEP-0388 asks for version 4; a client with another version still gets a
// stable id, so it is not refused.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

func malformed(text string) *auth.Failure {
	return &auth.Failure{Condition: "malformed-request", Text: text}
}

// decodeSASL2 decodes SASL2 data: base64, where an empty element is empty
// data (no "=" special case, XEP-0388 §2.2); whitespace is ignored.
func decodeSASL2(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\n' || r == '\r' {
			return -1
		}
		return r
	}, s)
	if s == "" {
		return []byte{}, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// sasl2Offered reports whether this stream offers SASL2: wherever the RFC
// 6120 mechanisms are offered, except on BOSH, whose clients negotiate
// with restarts (XEP-0206) and keep the RFC 6120 profile.
func (st *stream) sasl2Offered() bool {
	return st.t.Kind() != "bosh" && !st.tlsRequired()
}

// sasl2Feature is the <authentication/> stream feature, nil when SASL2 is
// not offered on this stream.
func (st *stream) sasl2Feature() *xmlstream.Element {
	if !st.sasl2Offered() {
		return nil
	}
	a := xmlstream.New(nsSASL2, "authentication")
	for _, m := range st.mechanisms() {
		a.Append(xmlstream.New(nsSASL2, "mechanism").AppendText(m))
	}
	inline := xmlstream.New(nsSASL2, "inline")
	inline.Append(bind2Feature())
	inline.Append(xmlstream.New(nsSM, "sm")) // resumption inline (XEP-0198 §6.2)
	for _, x := range st.svc.sasl2x {
		if el := x.inline(st); el != nil {
			inline.Append(el)
		}
	}
	return a.Append(inline)
}

// sasl2Failure is SASL2's <failure/> with an RFC 6120 §6.5 condition.
func sasl2Failure(f *auth.Failure) *xmlstream.Element {
	el := xmlstream.New(nsSASL2, "failure").Append(xmlstream.New(nsSASL, f.Condition))
	if f.Text != "" {
		el.Append(xmlstream.New(nsSASL2, "text", "xml:lang", "en").AppendText(f.Text))
	}
	return el
}

// sasl2Delayed tells which SASL2 failures wait for the failure delay:
// all but a throttle's, which must be answered at once (its text says when
// to retry), and the client's own abort.
func sasl2Delayed(cond string) bool {
	return cond != "temporary-auth-failure" && cond != "aborted"
}

// sasl2 runs one SASL2 exchange starting with <authenticate/>. It returns
// true once the stream has a session (bound by Bind2, or resumed): the
// negotiation is over. It returns false after a <failure/> the client may
// retry, and after a success without binding, once the stream features
// have followed it (the client then binds or resumes as after RFC 6120
// SASL, without a restart).
func (st *stream) sasl2(el *xmlstream.Element) (bool, error) {
	ctx := context.Background()
	var attempt *auth.Attempt // admitted by the per-account throttle
	fail := func(f *auth.Failure) (bool, error) {
		st.authFailed(f.Condition, attempt, sasl2Delayed(f.Condition))
		if err := st.t.Write([]*xmlstream.Element{sasl2Failure(f)}); err != nil {
			return false, err
		}
		return false, st.tooManyFailures()
	}
	if f := st.admitAddress(); f != nil {
		return fail(f)
	}
	st.mech = el.Attr("mechanism")
	req, f := parseAuthenticate(el, st.svc.cfg.Domain)
	if f != nil {
		return fail(f)
	}
	neg, err := st.sasl2Negotiator(req, &attempt)
	if err != nil {
		return fail(asFailure(err))
	}
	in := req.initial // nil without <initial-response/>: the mechanism asks
	for {
		out, done, err := neg.Step(ctx, in)
		if err != nil {
			var f *auth.Failure
			if !errors.As(err, &f) {
				st.log.Error("sasl2", "err", err)
			} else {
				st.triedPlus = st.triedPlus || f.UnsupportedBinding
			}
			return fail(asFailure(err))
		}
		if done {
			return st.sasl2Success(ctx, req, neg, attempt, out)
		}
		ch := xmlstream.New(nsSASL2, "challenge")
		if len(out) > 0 {
			ch.AppendText(base64.StdEncoding.EncodeToString(out))
		}
		if err := st.t.Write([]*xmlstream.Element{ch}); err != nil {
			return false, err
		}
		el, err := st.next()
		if err != nil {
			return false, err
		}
		// XEP-0388 §2.4: nothing but <response/> or <abort/> now.
		if el.Space != nsSASL2 {
			return false, &stanza.StreamError{Condition: "policy-violation", Text: "SASL2 exchange in progress"}
		}
		switch el.Name {
		case "abort":
			return fail(&auth.Failure{Condition: "aborted"})
		case "response":
			if in, err = decodeSASL2(el.Text()); err != nil {
				return fail(&auth.Failure{Condition: "incorrect-encoding", Text: "<response/> is not base64"})
			}
		default:
			return false, &stanza.StreamError{Condition: "policy-violation", Text: "SASL2 exchange in progress"}
		}
	}
}

// asFailure is err as a SASL failure; anything else is the server's
// trouble: temporary-auth-failure.
func asFailure(err error) *auth.Failure {
	var f *auth.Failure
	if errors.As(err, &f) {
		return f
	}
	return &auth.Failure{Condition: "temporary-auth-failure"}
}

// sasl2Negotiator starts the exchange for req.mechanism: an extension's
// own mechanism, or one of the password mechanisms offered on this stream.
func (st *stream) sasl2Negotiator(req *sasl2Request, attempt **auth.Attempt) (auth.Negotiator, error) {
	cfg := st.authConfig(attempt)
	for _, x := range st.svc.sasl2x {
		neg, err := x.negotiator(st, req, cfg)
		if err != nil || neg != nil {
			req.neg = neg
			return neg, err
		}
	}
	if !st.offers(req.mechanism) {
		if req.mechanism == auth.Plain {
			return nil, &auth.Failure{Condition: "encryption-required", Text: "PLAIN needs TLS"}
		}
		return nil, &auth.Failure{Condition: "invalid-mechanism", Text: "mechanism " + req.mechanism + " is not offered"}
	}
	neg, err := auth.NewNegotiator(req.mechanism, cfg)
	req.neg = neg
	return neg, err
}

// sasl2Success completes an authenticated exchange (XEP-0388 §2.6.1):
// extensions, then resumption (XEP-0198 §6.2), then, unless resumed,
// binding (XEP-0386), all answered in the one <success/>.
func (st *stream) sasl2Success(ctx context.Context, req *sasl2Request, neg auth.Negotiator, attempt *auth.Attempt, final []byte) (bool, error) {
	prev := st.authSucceeded(ctx, neg, attempt)
	succ := xmlstream.New(nsSASL2, "success")
	if len(final) > 0 {
		succ.Append(xmlstream.New(nsSASL2, "additional-data").AppendText(base64.StdEncoding.EncodeToString(final)))
	}
	aid := xmlstream.New(nsSASL2, "authorization-identifier")
	succ.Append(aid)
	var extra []*xmlstream.Element
	for _, x := range st.svc.sasl2x {
		extra = append(extra, x.success(ctx, st, req)...)
	}

	var r *resumption
	if req.resume != nil {
		var failed *xmlstream.Element
		var err error
		r, failed, err = st.takeOver(req.resume.Attr("previd"), req.resume.Attr("h"))
		var se *stanza.StreamError
		if errors.As(err, &se) {
			// The client acknowledged stanzas never sent: the old
			// session is ended (its queue went offline) and this one
			// goes on as a new one.
			failed = smFailed("undefined-condition", se.Text)
		} else if err != nil {
			return false, err
		}
		if failed != nil {
			succ.Append(failed)
		} else {
			succ.Append(r.answer)
		}
	}
	var s *session.Session
	if r != nil {
		s = r.sess
	} else if req.bind != nil {
		var bound *xmlstream.Element
		var err error
		if s, bound, err = st.bind2(ctx, req.bind, req.ua); err != nil {
			return false, err
		}
		succ.Append(bound)
	}
	if s != nil {
		aid.AppendText(s.JID().String())
	} else {
		aid.AppendText(st.user + "@" + st.svc.cfg.Domain)
	}
	succ.Append(extra...)

	// Recorded before the client hears of its success, so the record is
	// there whatever it does next.
	st.recordUserAgent(ctx, req.ua)

	if r == nil && s != nil {
		// Routed to from now on (its stanzas wait for Attach below), so a
		// login that replaces it, however soon, finds it and kicks it.
		st.svc.im.Bound(ctx, s)
	}
	out := []*xmlstream.Element{succ}
	if r == nil {
		// XEP-0388 §2.6.1: features follow <success/>; XEP-0198 §6.2:
		// not after a resumption, the stream simply goes on.
		out = append(out, st.features())
	}
	if err := st.t.Write(out); err != nil {
		return false, err
	}
	switch {
	case r != nil:
		st.resumed(r)
	case s != nil:
		s.Attach(st.t) // after <success/>: a kick meanwhile is applied here
	}
	if prev.Failed > 0 {
		st.svc.loginNotice(ctx, st.user, prev, st.t.Remote().String())
	}
	return s != nil, nil
}

// recordUserAgent remembers the client installation that just logged in
// (store.UserAgents); one without an id is not recorded.
func (st *stream) recordUserAgent(ctx context.Context, ua *userAgent) {
	if ua == nil || ua.id == "" {
		return
	}
	rec := store.UserAgent{ID: ua.id, Software: ua.software, Device: ua.device, LastSeen: time.Now(), LastAddr: st.t.Remote().String()}
	// Not the address: a phone that moves between networks (or a load
	// generator that spreads its clients over source addresses) would make
	// every reconnect a write; last_addr is as fresh as last_seen.
	key := st.user + "\x00" + ua.id + "\x00" + ua.software + "\x00" + ua.device
	if !st.svc.uaSeen.due(key, rec.LastSeen) {
		return // recorded as it is within the hour: a reconnect writes nothing
	}
	if err := st.svc.im.Store().PutUserAgent(ctx, st.user, rec, maxUserAgents); err != nil {
		st.svc.uaSeen.forget(key)
		st.log.Warn("sasl2: recording the user agent", "err", err)
	}
}

// uaRecentlyRecorded: a device that reconnects many times an hour (a
// phone on a bad network) has its user-agent record written once an hour,
// not at every login: the write was a quarter of a token login's CPU.
// last_seen and last_addr are then at most an hour old.
const uaRecentlyRecorded = time.Hour

// seenAgents remembers when this node last wrote each user-agent record
// (account, id, software, device, address), bounded: past maxSeenAgents
// it starts over.
type seenAgents struct {
	mu sync.Mutex
	at map[string]time.Time
}

const maxSeenAgents = 100000

// due reports whether key should be written now, and notes it written.
func (s *seenAgents) due(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.at[key]; ok && now.Sub(t) < uaRecentlyRecorded {
		return false
	}
	if s.at == nil || len(s.at) >= maxSeenAgents {
		s.at = map[string]time.Time{}
	}
	s.at[key] = now
	return true
}

func (s *seenAgents) forget(key string) {
	s.mu.Lock()
	delete(s.at, key)
	s.mu.Unlock()
}

// validTag reports whether tag can start a resource (RFC 7622 §3.4).
func validTag(tag, domain string) bool {
	if tag == "" {
		return true
	}
	if len(tag) > maxBindTag || !utf8.ValidString(tag) {
		return false
	}
	_, err := jid.New("", domain, tag)
	return err == nil
}
