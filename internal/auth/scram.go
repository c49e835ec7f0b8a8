package auth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"strconv"
	"strings"
	"unicode/utf8"

	"bluetick/internal/store"
)

type scramState int

const (
	scramStart     scramState = iota // nothing received yet
	scramWantFirst                   // empty initial response answered with an empty challenge
	scramWantFinal                   // server-first-message sent
	scramEnded                       // succeeded or failed: every further Step fails
)

// scram is the server side of SCRAM-SHA-1 / SCRAM-SHA-256 and their -PLUS
// variants (RFC 5802 §5, RFC 7677). The exchange is
//
//	C: n,,n=user,r=cnonce                          (client-first-message)
//	S: r=cnonce+snonce,s=salt,i=iterations,h=ssdp  (server-first-message)
//	C: c=biws,r=cnonce+snonce,p=proof              (client-final-message)
//	S: v=signature                                 (sent with <success/>)
//
// With channel binding the client starts with "p=tls-exporter,," and c=
// carries base64 of that header followed by the binding data. h= (XEP-0474)
// is sent only when Config.Offered is set.
type scram struct {
	h     *scramHash
	mech  string // as requested: with or without -PLUS
	cfg   Config
	state scramState

	// fixedNonce, when set by a test, replaces the random server nonce so
	// the RFC example exchanges can be replayed byte for byte.
	fixedNonce string

	gs2Header       string // "n,,", "y,," or "p=<type>,,", with authzid if any
	cbData          []byte // channel binding data c= must carry after gs2Header
	clientFirstBare string
	serverFirst     string
	nonce           string // client nonce + server nonce
	user            string // canonical localpart claimed by the client
	cred            store.Credential
	known           bool // cred is real, not a stand-in for an unknown user
	username        string
}

func newSCRAM(h *scramHash, mech string, cfg Config) *scram {
	return &scram{h: h, mech: mech, cfg: cfg}
}

// Username implements Negotiator.
func (s *scram) Username() string { return s.username }

// Step implements Negotiator.
func (s *scram) Step(ctx context.Context, in []byte) ([]byte, bool, error) {
	var (
		out  []byte
		done bool
		f    *Failure
	)
	switch s.state {
	case scramStart:
		if len(in) == 0 {
			// The client sent <auth/> without initial response:
			// ask for the client-first-message with an empty
			// challenge (RFC 6120 §6.4.2).
			s.state = scramWantFirst
			return []byte{}, false, nil
		}
		out, f = s.first(ctx, in)
	case scramWantFirst:
		out, f = s.first(ctx, in)
	case scramWantFinal:
		out, f = s.final(in)
		done = f == nil
	default:
		return nil, false, errFinished()
	}
	if f != nil {
		s.end()
		return nil, false, f
	}
	if done {
		s.end()
		return out, true, nil
	}
	s.state = scramWantFinal
	return out, false, nil
}

// end makes the exchange single-use and drops the keys it no longer needs.
func (s *scram) end() {
	s.state = scramEnded
	s.cred = store.Credential{}
}

// checkMessage applies the checks every client message gets before parsing:
// bounded size, valid UTF-8 (RFC 5802 attribute values are UTF-8) and no
// NUL, which no SCRAM attribute may contain.
func checkMessage(in []byte) *Failure {
	switch {
	case len(in) == 0:
		return malformed("empty message")
	case len(in) > maxMessage:
		return malformed("message too long")
	case !utf8.Valid(in):
		return malformed("message is not UTF-8")
	case bytes.IndexByte(in, 0) >= 0:
		return malformed("message contains NUL")
	}
	return nil
}

// first handles the client-first-message:
//
//	gs2-header = gs2-cbind-flag "," [ "a=" saslname ] ","
//	client-first-message-bare = [ "m=" ext "," ] "n=" saslname "," "r=" nonce [ "," extensions ]
//
// and answers with the server-first-message. For an unknown user it
// answers with a fake salt, so nothing so far depends on the account
// existing.
func (s *scram) first(ctx context.Context, in []byte) ([]byte, *Failure) {
	if f := checkMessage(in); f != nil {
		return nil, f
	}
	msg := string(in)

	g, bare, f := parseGS2(msg)
	if f != nil {
		return nil, f
	}
	// Checked before anything about the user: the outcome depends on the
	// connection and the offer only.
	cbData, f := checkBinding(g, s.mech, s.cfg)
	if f != nil {
		return nil, f
	}
	authzid := g.authzid

	attrs := strings.Split(bare, ",")
	if strings.HasPrefix(attrs[0], "m=") {
		// RFC 5802 §5.1: "m" is reserved for mandatory extensions and
		// must make authentication fail; none is defined.
		return nil, malformed("mandatory SCRAM extension not supported")
	}
	if len(attrs) < 2 {
		return nil, malformed("client-first-message needs n= and r=")
	}
	name, ok := strings.CutPrefix(attrs[0], "n=")
	if !ok {
		return nil, malformed("missing username (n=)")
	}
	authcid, err := unescapeSASLName(name)
	if err != nil {
		return nil, malformed("invalid username: " + err.Error())
	}
	cnonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok || !validNonce(cnonce) {
		return nil, malformed("missing or invalid client nonce (r=)")
	}
	for _, ext := range attrs[2:] {
		// Optional extensions are allowed and ignored (they stay in
		// the AuthMessage through clientFirstBare).
		if !validExtension(ext) {
			return nil, malformed("invalid attribute in client-first-message")
		}
	}

	user, err := s.cfg.PrepareUser(authcid)
	if err != nil || user == "" {
		return nil, badCredentials()
	}
	if authzid != "" && !sameUser(s.cfg, authzid, user) {
		return nil, &Failure{Condition: condInvalidAuthzid, Text: "authorization identity must be the authenticated user"}
	}
	if f := admit(ctx, s.cfg, user); f != nil {
		return nil, f
	}
	cred, known, f := lookupCredential(ctx, s.cfg, s.h, user)
	if f != nil {
		return nil, f
	}

	snonce := s.fixedNonce
	if snonce == "" {
		snonce = base64.StdEncoding.EncodeToString(randomBytes(nonceLen))
	}
	s.gs2Header = g.header
	s.cbData = cbData
	s.clientFirstBare = bare
	s.nonce = cnonce + snonce
	s.user, s.cred, s.known = user, cred, known
	s.serverFirst = "r=" + s.nonce +
		",s=" + base64.StdEncoding.EncodeToString(cred.Salt) +
		",i=" + strconv.Itoa(cred.Iterations)
	if s.cfg.Offered != nil {
		// XEP-0474: the client checks this against what it saw offered;
		// its proof then covers it (the AuthMessage holds it).
		s.serverFirst += ",h=" + downgradeHash(s.h, s.cfg.Offered, s.cfg.ChannelBinding.Types)
	}
	return []byte(s.serverFirst), nil
}

// final handles the client-final-message:
//
//	"c=" base64(gs2-header [ cb-data ]) "," "r=" nonce [ "," extensions ] "," "p=" base64(proof)
//
// It checks the proof (RFC 5802 §3): ClientKey := ClientProof XOR
// HMAC(StoredKey, AuthMessage) must hash to StoredKey. On success it
// returns the server-final-message "v=" base64(HMAC(ServerKey,
// AuthMessage)) that proves to the client that the server knows its
// credential too.
func (s *scram) final(in []byte) ([]byte, *Failure) {
	if f := checkMessage(in); f != nil {
		return nil, f
	}
	msg := string(in)
	attrs := strings.Split(msg, ",")
	if len(attrs) < 3 {
		return nil, malformed("client-final-message needs c=, r= and p=")
	}
	cb, ok := strings.CutPrefix(attrs[0], "c=")
	if !ok {
		return nil, malformed("missing channel binding (c=)")
	}
	nonce, ok := strings.CutPrefix(attrs[1], "r=")
	if !ok {
		return nil, malformed("missing nonce (r=)")
	}
	last := attrs[len(attrs)-1]
	proofB64, ok := strings.CutPrefix(last, "p=")
	if !ok {
		return nil, malformed("missing proof (p=) as last attribute")
	}
	for _, ext := range attrs[2 : len(attrs)-1] {
		if !validExtension(ext) {
			return nil, malformed("invalid attribute in client-final-message")
		}
	}
	withoutProof := msg[:len(msg)-len(last)-1]

	cbData, err := base64.StdEncoding.Strict().DecodeString(cb)
	if err != nil {
		return nil, malformed("channel binding is not valid base64")
	}
	proof, err := base64.StdEncoding.Strict().DecodeString(proofB64)
	if err != nil || len(proof) != s.h.size {
		return nil, malformed("proof is not valid base64 of the right size")
	}
	// c= must repeat the GS2 header exactly (this protects the flag and
	// the authzid from tampering) followed, with p=, by this connection's
	// binding data: a client whose TLS ends at someone else sends that
	// other connection's data.
	if !bytes.HasPrefix(cbData, []byte(s.gs2Header)) || !bytes.Equal(cbData[len(s.gs2Header):], s.cbData) {
		return nil, &Failure{Condition: condNotAuthorized, Text: "channel binding does not match"}
	}
	if nonce != s.nonce {
		return nil, &Failure{Condition: condNotAuthorized, Text: "nonce does not match"}
	}

	authMessage := s.clientFirstBare + "," + s.serverFirst + "," + withoutProof
	clientSig := hmacSum(s.h.new, s.cred.StoredKey, authMessage)
	clientKey := make([]byte, s.h.size)
	subtle.XORBytes(clientKey, proof, clientSig)
	storedKey := hashSum(s.h.new, clientKey)
	// Constant-time compare, and the same work and answer for a fake
	// credential: the proof check is the only place an unknown user fails.
	match := subtle.ConstantTimeCompare(storedKey, s.cred.StoredKey) == 1
	if !match || !s.known {
		return nil, badCredentials()
	}
	serverSig := hmacSum(s.h.new, s.cred.ServerKey, authMessage)
	s.username = s.user
	return []byte("v=" + base64.StdEncoding.EncodeToString(serverSig)), nil
}

// unescapeSASLName decodes a SCRAM saslname (RFC 5802 §5.1): ',' and '='
// travel as "=2C" and "=3D"; any other '=' sequence is invalid, and so is
// an empty name.
func unescapeSASLName(s string) (string, error) {
	if s == "" {
		return "", errEmptyName
	}
	if strings.IndexByte(s, '=') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errBadEscape
		}
		i += 2
	}
	return b.String(), nil
}

type parseError string

func (e parseError) Error() string { return string(e) }

const (
	errEmptyName = parseError("empty name")
	errBadEscape = parseError("'=' must be followed by 2C or 3D")
)

// validNonce reports whether s is a SCRAM nonce: printable ASCII except
// ',' (RFC 5802 §7). The client nonce ends up in our server-first-message,
// so nothing else may pass.
func validNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

// validExtension reports whether s is an attr-val (ALPHA "=" 1*value-char).
func validExtension(s string) bool {
	if len(s) < 3 || s[1] != '=' {
		return false
	}
	c := s[0]
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
}

// sameUser reports whether the authorization identity (a JID, as RFC 6120
// §6.3.8 defines it) denotes the authenticated user. We only let a user
// act as itself, so the localpart of the authzid, prepared like a
// username, must be the user; a domain-only JID never matches. The domain
// is not checked here because the package does not know it.
func sameUser(cfg Config, authzid, user string) bool {
	local, _, ok := strings.Cut(authzid, "@")
	if !ok || local == "" {
		return false
	}
	p, err := cfg.PrepareUser(local)
	return err == nil && p == user
}
