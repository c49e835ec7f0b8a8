// Package fast implements XEP-0484 Fast Authentication Streamlining Tokens
// (FAST) on the server: login tokens a client gets after a full SASL2
// login (XEP-0388) and uses afterwards with an HT-* mechanism
// (draft-schmaus-kitten-sasl-ht-09) to log in within a single round trip,
// without keeping the password. It also lets users and operators list the
// clients holding tokens and revoke them (docs/devices.md).
//
// # What the SASL2 layer calls
//
// Stream features, inside SASL2 <inline/>: Feature(tls, cbTypes...), the
// <fast/> element listing Mechanisms(tls, cbTypes...): HT-SHA-256-NONE
// on every TLS stream, plus one channel-binding variant for each binding
// type the connection can compute (ChannelBinding names the type of each
// mechanism). Nothing is offered without TLS or when [fast] is disabled.
//
// <authenticate/>: ParseInline reads its <request-token/> and <fast/>.
// If the mechanism IsMechanism, NewNegotiator gives an auth.Negotiator-like
// exchange, driven with Step exactly as the password mechanisms are; its
// Params carry the client's user-agent id, the channel-binding data of
// ChannelBinding(mechanism) and the <fast/> count and invalidate
// attributes.
//
// <success/>: after any successful login (password or token) and before
// writing <success/>, TokenAfterSuccess returns the <token/> to include,
// or nil: one is issued when the client sent <request-token/>, or when
// the token it logged in with has less than half its lifetime left
// (rotation), never after <fast invalidate='true'/> without
// <request-token/>.
//
// # Tokens and what the store keeps
//
// A token is 54 random bytes (432 bits) in unpadded base64url: 72 ASCII
// characters, handed to the client once in <token/>. The client uses that
// string as the HMAC-SHA-256 key of the HT mechanism. HMAC hashes any key
// longer than the hash's 64-byte block first (RFC 2104 §2), so for such a
// token HMAC(token, m) = HMAC(SHA-256(token), m): the store keeps only
// SHA-256(token) and the server verifies logins with it, never holding the
// token itself after handing it out.
//
// A plain hash, not a slow password hash, is right here: the token is
// random and long, so no guessing or dictionary attack against the hash is
// possible. But HT is a symmetric proof: whoever can verify it can also
// compute it. SHA-256(token) is therefore as good as the token for logging
// in with an HT mechanism (not for anything else), and a copy of the
// fast_tokens table lets its holder log in as each listed client until
// the token expires or is revoked. This is inherent to XEP-0484 and HT
// (Prosody keeps the token itself); docs/devices.md says so, and the
// bounded lifetime, rotation and revocation limit the damage.
//
// # Refusals
//
// A refused login fails the same way (not-authorized, "invalid token",
// same work done) for an unknown account, a name that is not a valid
// localpart, an unknown or superseded token, and wrong channel-binding
// data (which is indistinguishable from a wrong token, by design of HT).
// Only a client that proves it holds the token (the HMAC matched, so it
// learns nothing it did not know) is told more: the token expired or was
// revoked (credentials-expired, RFC 6120 §6.5.2, as XEP-0484 §"Security
// Considerations" asks for tokens the server no longer trusts), was issued
// to another client or for another mechanism, or the count was already
// used. Negotiator.Reason gives the precise reason for logs and metrics.
package fast

import (
	"context"
	"log/slog"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/store"
)

// NS is the XEP-0484 namespace.
const NS = "urn:xmpp:fast:0"

// The HT mechanisms (draft-schmaus-kitten-sasl-ht-09): HMAC-SHA-256,
// with the channel binding named by the suffix.
const (
	HTSHA256None = "HT-SHA-256-NONE" // no channel binding
	HTSHA256Endp = "HT-SHA-256-ENDP" // tls-server-end-point (RFC 5929 §4)
	HTSHA256Expr = "HT-SHA-256-EXPR" // tls-exporter (RFC 9266)
	HTSHA256Uniq = "HT-SHA-256-UNIQ" // tls-unique (RFC 5929 §3)
)

// Channel-binding types (RFC 5056 names).
const (
	CBTLSExporter       = "tls-exporter"
	CBTLSServerEndPoint = "tls-server-end-point"
	CBTLSUnique         = "tls-unique"
)

// mechanisms maps each mechanism to its channel-binding type ("" for
// none), in the order they are offered: bindings that tie the login to
// this TLS connection first (clients tend to take the first they know),
// tls-unique last as it exists only on TLS 1.2 (Go's crypto/tls has no
// tls-unique for TLS 1.3, RFC 9266 §3 retires it there), NONE for the
// clients that cannot bind (web browsers).
var mechanisms = []struct{ name, cb string }{
	{HTSHA256Expr, CBTLSExporter},
	{HTSHA256Endp, CBTLSServerEndPoint},
	{HTSHA256Uniq, CBTLSUnique},
	{HTSHA256None, ""},
}

// IsMechanism reports whether name is one of the HT mechanisms here.
func IsMechanism(name string) bool {
	for _, m := range mechanisms {
		if m.name == name {
			return true
		}
	}
	return false
}

// ChannelBinding returns the channel-binding type whose data the caller
// must pass (Params.CBData) for mechanism: "" for HT-SHA-256-NONE and
// for unknown names.
func ChannelBinding(mechanism string) string {
	for _, m := range mechanisms {
		if m.name == mechanism {
			return m.cb
		}
	}
	return ""
}

// Config is the service's configuration: the [fast] section plus hooks.
type Config struct {
	config.Fast
	// PrepareUser maps the HT authcid to the canonical localpart; nil:
	// jid.PrepareLocal, as the password mechanisms do.
	PrepareUser func(string) (string, error)
	// Now is the clock; nil: time.Now.
	Now func() time.Time
}

// Store is what the service needs of the store.
type Store interface {
	store.FastTokens
	UserExists(ctx context.Context, user string) (bool, error)
}

// Service issues, checks and revokes the FAST tokens of one server (all
// nodes of a cluster share them through the store). Safe for concurrent
// use.
type Service struct {
	cfg     Config
	st      Store
	log     *slog.Logger
	Metrics Metrics
	// Kick, if set, ends the live sessions of user's client agentID (all
	// of the user's sessions if agentID is ""), except the session except
	// (may be zero), and returns how many it ended. The ad-hoc command
	// calls it after revoking tokens. cmd/bluetick sets it to the
	// server's Server.KickDevice.
	Kick func(ctx context.Context, user, agentID string, except jid.JID) int
}

// New makes the service over a store.
func New(cfg Config, st Store, log *slog.Logger) *Service {
	if cfg.PrepareUser == nil {
		cfg.PrepareUser = jid.PrepareLocal
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{cfg: cfg, st: st, log: log.With("component", "fast")}
}

// Enabled reports whether FAST is on ([fast] enabled).
func (s *Service) Enabled() bool { return s != nil && s.cfg.Enabled }

// Mechanisms lists the HT mechanisms to offer on a stream, in order of
// preference: none without TLS or when disabled (XEP-0484 §"Security
// Considerations": FAST only over TLS); HT-SHA-256-NONE always; a
// channel-binding variant for each type in cbTypes the connection can
// compute (e.g. "tls-exporter" on TLS 1.3 and on TLS 1.2 with extended
// master secret, "tls-server-end-point" whenever the certificate's
// signature hash is known, "tls-unique" only on TLS 1.2).
func (s *Service) Mechanisms(tls bool, cbTypes ...string) []string {
	if !s.Enabled() || !tls {
		return nil
	}
	var out []string
	for _, m := range mechanisms {
		if m.cb == "" {
			out = append(out, m.name)
			continue
		}
		for _, t := range cbTypes {
			if t == m.cb {
				out = append(out, m.name)
				break
			}
		}
	}
	return out
}

// lifetime and rotation thresholds of the configuration.
func (s *Service) lifetime() time.Duration { return s.cfg.TokenLifetime.Duration }

// rotateWhenLeft: a token used with less than this left is rotated.
func (s *Service) rotateWhenLeft() time.Duration { return s.lifetime() / 2 }
