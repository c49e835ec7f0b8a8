package fast

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Client is the SASL2 <user-agent/> of the client a token is issued to
// (XEP-0388 §"Client Information"). AgentID is required: XEP-0484 issues
// tokens per client installation.
type Client struct {
	AgentID  string // the id attribute
	Software string // <software/>, informational (shown in device lists)
	Device   string // <device/>, informational
}

// Limits on what a client may put in its user-agent (XEP-0388 asks for a
// UUID as the id; software and device names are short).
const (
	maxAgentID = 256
	maxInfo    = 256
)

// Errors of Issue.
var (
	ErrDisabled         = errors.New("fast: FAST is disabled ([fast] enabled = false)")
	ErrNoAgent          = errors.New("fast: a token needs the client's SASL2 <user-agent id=\"...\"/>")
	ErrUnknownMechanism = errors.New("fast: not an HT mechanism offered here")
)

// Token is a freshly issued token: send it to the client once, in
// <success/> (Element), and forget it.
type Token struct {
	Token     string
	Mechanism string
	Expiry    time.Time
}

// Element is the <token xmlns='urn:xmpp:fast:0'/> for the SASL2
// <success/>, with the expiry in XEP-0082 DateTime format.
func (t *Token) Element() *xmlstream.Element {
	return xmlstream.New(NS, "token", "expiry", t.Expiry.UTC().Format(time.RFC3339), "token", t.Token)
}

// Issue makes a new token for user's client c, valid for mechanism, and
// stores its hash (which may evict the token of the account's least
// recently used other client, see store.FastTokens.PutFastToken). Call it
// only once the client is fully authenticated (XEP-0484).
func (s *Service) Issue(ctx context.Context, user string, c Client, mechanism string) (*Token, error) {
	if !s.Enabled() {
		return nil, ErrDisabled
	}
	if !IsMechanism(mechanism) {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMechanism, mechanism)
	}
	if c.AgentID == "" {
		return nil, ErrNoAgent
	}
	if len(c.AgentID) > maxAgentID || !utf8.ValidString(c.AgentID) {
		return nil, fmt.Errorf("fast: user-agent id longer than %d bytes or not UTF-8", maxAgentID)
	}
	now := s.cfg.Now().UTC().Truncate(time.Microsecond) // what the stores keep
	t := store.FastToken{User: user, AgentID: c.AgentID, Mechanism: mechanism,
		Software: clip(c.Software), Device: clip(c.Device), Created: now, Expires: now.Add(s.lifetime())}
	var tok string
	var err error
	for range 2 { // a hash collision is as likely as guessing the token; retry once all the same
		tok, t.Hash = newToken()
		if err = s.st.PutFastToken(ctx, t, s.cfg.MaxTokensPerAccount); !errors.Is(err, store.ErrExists) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fast: storing a token for %q: %w", user, err)
	}
	s.Metrics.Issued.Add(1)
	s.log.Info("token issued", "user", user, "agent", c.AgentID, "software", t.Software, "mechanism", mechanism, "expires", t.Expires)
	return &Token{Token: tok, Mechanism: mechanism, Expiry: t.Expires}, nil
}

// clip bounds an informational string, cutting at a rune boundary.
func clip(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= maxInfo {
		return s
	}
	i := maxInfo
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i]
}

// TokenAfterSuccess is called by the SASL2 layer after any successful
// login, before it writes <success/>, with what ParseInline read and the
// token login's negotiator (nil for a password login). It returns the
// token to put in <success/>, or nil when none is due:
//
//   - <request-token mechanism="M"/> was sent: a token for M (which the
//     caller offered on this stream; ParseInline does not know);
//   - else the login used a token that RotationDue: a new token for the
//     same mechanism (the old one stays valid until the new one is used);
//   - else, and after <fast invalidate="true"/> without <request-token/>,
//     none.
//
// An error means no token could be issued (e.g. ErrNoAgent): the login
// itself still succeeded, so log it and send <success/> without one.
func (s *Service) TokenAfterSuccess(ctx context.Context, user string, c Client, in Inline, n *Negotiator) (*Token, error) {
	mech, rotation := in.RequestToken, false
	if mech == "" {
		if n == nil || !n.RotationDue() {
			return nil, nil
		}
		mech, rotation = n.mech, true
	}
	tok, err := s.Issue(ctx, user, c, mech)
	if err == nil && rotation {
		s.Metrics.Rotated.Add(1)
	}
	return tok, err
}

// Inline is what XEP-0484 adds to a SASL2 <authenticate/>.
type Inline struct {
	// RequestToken is the mechanism of <request-token/>: "" if absent.
	RequestToken string
	// Fast: <fast/> is present, the client logs in with a token.
	Fast bool
	// Count is <fast count=""/>, a positive integer; 0 if absent.
	Count int64
	// Invalidate is <fast invalidate="true"/> (or "1").
	Invalidate bool
}

// ParseInline reads the XEP-0484 children of a SASL2 <authenticate/>. An
// error (a bad attribute) should fail the authentication with
// malformed-request.
func ParseInline(authenticate *xmlstream.Element) (Inline, error) {
	var in Inline
	if rt := authenticate.Child(NS, "request-token"); rt != nil {
		in.RequestToken = rt.Attr("mechanism")
		if in.RequestToken == "" {
			return in, errors.New("<request-token/> needs a mechanism")
		}
	}
	f := authenticate.Child(NS, "fast")
	if f == nil {
		return in, nil
	}
	in.Fast = true
	if c := f.Attr("count"); c != "" {
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil || n <= 0 {
			return in, errors.New("<fast count=\"...\"/> must be a positive integer")
		}
		in.Count = n
	}
	switch f.Attr("invalidate") {
	case "", "0", "false":
	case "1", "true":
		in.Invalidate = true
	default:
		return in, errors.New("<fast invalidate=\"...\"/> must be true, false, 1 or 0")
	}
	return in, nil
}

// Feature is the <fast/> SASL2 inline feature listing Mechanisms(tls,
// cbTypes...), or nil when there are none to offer. It has no tls-0rtt
// attribute: Go's TLS server does not accept 0-RTT early data.
func (s *Service) Feature(tls bool, cbTypes ...string) *xmlstream.Element {
	mechs := s.Mechanisms(tls, cbTypes...)
	if len(mechs) == 0 {
		return nil
	}
	f := xmlstream.New(NS, "fast")
	for _, m := range mechs {
		f.Append(xmlstream.New(NS, "mechanism").AppendText(m))
	}
	return f
}
