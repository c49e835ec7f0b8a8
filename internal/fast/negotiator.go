package fast

import (
	"context"
	"crypto/hmac"
	"errors"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/store"
)

// Reason says why a token login failed, for logs and metrics (the
// bluetick_fast_logins_total counter's label). Only some reasons are told
// to the client; see the package doc.
type Reason string

// Reasons a token login fails.
const (
	ReasonNone           Reason = ""                // no failure (yet)
	ReasonMalformed      Reason = "malformed"       // the initial response is not authcid NUL 32-byte HMAC
	ReasonUnknownUser    Reason = "unknown-user"    // no such account, or not a valid localpart
	ReasonUnknownToken   Reason = "unknown-token"   // no token of the account matches: wrong, superseded or removed token, or wrong channel-binding data
	ReasonExpired        Reason = "expired"         // the token's lifetime is over
	ReasonRevoked        Reason = "revoked"         // revoked by the user, the operator, a password change or eviction
	ReasonWrongAgent     Reason = "wrong-agent"     // the token belongs to another client (user-agent id)
	ReasonWrongMechanism Reason = "wrong-mechanism" // the token was issued for another HT mechanism
	ReasonReplay         Reason = "replay"          // the <fast count=""/> was already used
	ReasonError          Reason = "error"           // the store failed; temporary-auth-failure
)

// Why a token was revoked (store.FastToken.RevokeReason).
const (
	RevokedByUser   = "user"     // the owner, from a client (ad-hoc command)
	RevokedByAdmin  = "admin"    // the operator (bluetick user tokens revoke)
	RevokedPassword = "password" // the account's password changed
	RevokedEvicted  = "evicted"  // more clients than fast.max_tokens_per_account
)

// revokedText is what a token's holder is told, by revocation reason.
var revokedText = map[string]string{
	RevokedByUser:   "token revoked: this device was logged out by the account's owner",
	RevokedByAdmin:  "token revoked by the server's administrator",
	RevokedPassword: "token revoked: the account's password was changed",
	RevokedEvicted:  "token revoked: too many devices are logged in to this account",
}

// invalidToken is the one failure told to whoever has not proven they
// hold the token: the same for a wrong token and an unknown account.
func invalidToken() *auth.Failure {
	return &auth.Failure{Condition: "not-authorized", Text: "invalid token"}
}

// Params are what the SASL2 layer knows of a token login besides the
// SASL data.
type Params struct {
	// AgentID is the <user-agent id=""/> of the <authenticate/>.
	AgentID string
	// CBData is the channel-binding data of the connection, of the type
	// ChannelBinding(mechanism) (nil for HT-SHA-256-NONE): the hash of the
	// server certificate for tls-server-end-point, the 32-byte exporter
	// value for tls-exporter, the Finished message for tls-unique.
	CBData []byte
	// Count and Invalidate are ParseInline's, from <fast/>.
	Count      int64
	Invalidate bool
}

// Negotiator runs one HT token login. It has the shape of
// auth.Negotiator (Step, Username) so the SASL2 layer drives both the
// same way, plus what FAST needs after it. Not safe for concurrent use.
type Negotiator struct {
	s    *Service
	mech string
	p    Params

	finished bool
	user     string
	reason   Reason
	tok      store.FastToken // the token used, once Step succeeded
	rotate   bool
}

var _ auth.Negotiator = (*Negotiator)(nil)

// NewNegotiator starts a token login with mechanism. It fails with
// invalid-mechanism (an *auth.Failure) when FAST is off, the mechanism is
// not an HT one, or it needs channel-binding data that p lacks (the
// connection cannot compute that binding: it should not have been
// offered).
func (s *Service) NewNegotiator(mechanism string, p Params) (*Negotiator, error) {
	if !s.Enabled() || !IsMechanism(mechanism) {
		return nil, &auth.Failure{Condition: "invalid-mechanism", Text: "mechanism not supported"}
	}
	if ChannelBinding(mechanism) != "" && len(p.CBData) == 0 {
		return nil, &auth.Failure{Condition: "invalid-mechanism", Text: "channel binding " + ChannelBinding(mechanism) + " is not available on this connection"}
	}
	return &Negotiator{s: s, mech: mechanism, p: p}, nil
}

// Step takes the HT initial response and either succeeds at once (done,
// with the server's final message as additional data) or fails with an
// *auth.Failure. HT has a single round trip: every later Step fails.
func (n *Negotiator) Step(ctx context.Context, in []byte) ([]byte, bool, error) {
	if n.finished {
		return nil, false, &auth.Failure{Condition: "malformed-request", Text: "SASL exchange already finished"}
	}
	n.finished = true
	out, err := n.verify(ctx, in)
	n.s.Metrics.login(n.reason)
	if err != nil {
		lvl := n.s.log.Info
		if n.reason == ReasonError {
			lvl = n.s.log.Error
		}
		lvl("token login refused", "user", n.user, "agent", n.p.AgentID, "mechanism", n.mech, "reason", string(n.reason), "err", err)
		n.user = ""
		return nil, false, err
	}
	n.s.log.Debug("token login", "user", n.user, "agent", n.p.AgentID, "mechanism", n.mech, "rotate", n.rotate)
	return out, true, nil
}

// verify checks the initial response. n.user is the prepared name as soon
// as it is known (for the log), n.reason why it failed.
func (n *Negotiator) verify(ctx context.Context, in []byte) ([]byte, error) {
	authcid, mac, err := parseInitial(in)
	if err != nil {
		n.reason = ReasonMalformed
		return nil, &auth.Failure{Condition: "malformed-request", Text: "HT initial response: " + err.Error()}
	}
	user, err := n.s.cfg.PrepareUser(authcid)
	if err != nil {
		// Same work as for a name that exists: one HMAC.
		htMAC(make([]byte, 32), initiator, n.p.CBData)
		n.reason = ReasonUnknownUser
		return nil, invalidToken()
	}
	n.user = user
	toks, err := n.s.st.FastTokens(ctx, user)
	if err != nil {
		n.reason = ReasonError
		return nil, &auth.Failure{Condition: "temporary-auth-failure", Text: "please try again later"}
	}
	// Every stored token is tried, with constant-time comparisons and no
	// early exit: the time taken depends on how many tokens the account
	// has, never on which one (or how much of one) matched.
	var match *store.FastToken
	if len(toks) == 0 {
		htMAC(make([]byte, 32), initiator, n.p.CBData)
	}
	for i := range toks {
		if hmac.Equal(htMAC(toks[i].Hash, initiator, n.p.CBData), mac) && match == nil {
			match = &toks[i]
		}
	}
	if match == nil {
		n.reason = ReasonUnknownToken
		if ok, err := n.s.st.UserExists(ctx, user); err == nil && !ok {
			n.reason = ReasonUnknownUser
		}
		return nil, invalidToken()
	}
	// The client holds this token: it may be told what is wrong with it.
	now := n.s.cfg.Now()
	switch {
	case !match.Revoked.IsZero():
		n.reason = ReasonRevoked
		text, ok := revokedText[match.RevokeReason]
		if !ok {
			text = "token revoked"
		}
		return nil, &auth.Failure{Condition: "credentials-expired", Text: text}
	case !now.Before(match.Expires):
		n.reason = ReasonExpired
		return nil, &auth.Failure{Condition: "credentials-expired", Text: "token expired"}
	case match.AgentID != n.p.AgentID:
		// XEP-0484 issues tokens per client: a copy used by another
		// client (another user-agent id) is refused.
		n.reason = ReasonWrongAgent
		return nil, &auth.Failure{Condition: "not-authorized", Text: "token was issued to another client"}
	case match.Mechanism != n.mech:
		// XEP-0484 binds a token to its mechanism, so a token issued for
		// a channel-binding mechanism cannot be downgraded to NONE.
		n.reason = ReasonWrongMechanism
		return nil, &auth.Failure{Condition: "not-authorized", Text: "token is not valid for " + n.mech}
	case n.p.Count > 0 && n.p.Count <= match.Count:
		n.reason = ReasonReplay
		return nil, &auth.Failure{Condition: "not-authorized", Text: "count already used with this token"}
	}
	if n.p.Count > 0 || n.p.Invalidate || now.Sub(match.LastUsed) >= lastUsedRefresh || supersedes(toks, match) {
		err = n.s.st.UseFastToken(ctx, store.FastUse{User: user, Hash: match.Hash, At: now, Count: n.p.Count, Invalidate: n.p.Invalidate})
	}
	switch {
	case errors.Is(err, store.ErrReplay):
		// Another node took this count between our read and our write.
		n.reason = ReasonReplay
		return nil, &auth.Failure{Condition: "not-authorized", Text: "count already used with this token"}
	case errors.Is(err, store.ErrNotFound):
		// Revoked or superseded since we read it.
		n.reason = ReasonRevoked
		return nil, &auth.Failure{Condition: "credentials-expired", Text: "token revoked"}
	case err != nil:
		n.reason = ReasonError
		return nil, &auth.Failure{Condition: "temporary-auth-failure", Text: "please try again later"}
	}
	n.tok = *match
	n.rotate = !n.p.Invalidate && match.Expires.Sub(now) < n.s.rotateWhenLeft()
	return htMAC(match.Hash, responder, n.p.CBData), nil
}

// lastUsedRefresh: a login that has nothing else to record (no count, no
// older token to remove, no invalidation) writes the token's last use only
// when the stored one is this old. A phone on a bad network reconnects
// many times an hour, and the write was two fifths of a token login's
// server CPU; "last used" in the devices list is then at most an hour old.
const lastUsedRefresh = time.Hour

// supersedes reports whether using match removes other live tokens of its
// client (those expiring no later than it, XEP-0484: after a rotation, the
// first use of the new token ends the old one).
func supersedes(toks []store.FastToken, match *store.FastToken) bool {
	for i := range toks {
		t := &toks[i]
		if t != match && t.AgentID == match.AgentID && t.Revoked.IsZero() && !t.Expires.After(match.Expires) {
			return true
		}
	}
	return false
}

// Username is the authenticated localpart once Step succeeded, else "".
func (n *Negotiator) Username() string { return n.user }

// Mechanism is the negotiator's HT mechanism.
func (n *Negotiator) Mechanism() string { return n.mech }

// Reason is why Step failed (ReasonNone before Step or after success).
func (n *Negotiator) Reason() Reason { return n.reason }

// RotationDue reports, after success, that the token used has less than
// half its lifetime left and no invalidation was asked: the server
// should send a new token with <success/> (TokenAfterSuccess does).
func (n *Negotiator) RotationDue() bool { return n.rotate }
