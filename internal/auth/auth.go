// Package auth is the server side of SASL for XMPP (RFC 6120 §6): the
// SCRAM-SHA-1 and SCRAM-SHA-256 mechanisms (RFC 5802, RFC 7677), their
// channel-binding variants SCRAM-SHA-1-PLUS and SCRAM-SHA-256-PLUS, and
// PLAIN (RFC 4616).
//
// The package knows nothing about XML or base64: the c2s layer decodes each
// <auth/> and <response/> payload, feeds it to a Negotiator and wraps what
// comes back in <challenge/>, <success/> or <failure/>. Keeping the wire
// format out lets the mechanisms be tested byte for byte against the RFC
// examples and fuzzed directly.
//
// Passwords are never stored: an account holds one store.Credential per
// SCRAM hash (salt, iteration count, StoredKey, ServerKey), made by
// NewCredentials. A -PLUS mechanism uses the credential of its hash, and
// PLAIN is verified against the same credentials, so one stored form
// serves all mechanisms.
//
// # Channel binding and downgrade protection
//
// A stream tells the negotiator what it advertised and what its connection
// can bind to, in two Config fields, so that SASL (RFC 6120) and SASL2
// (XEP-0388) run the very same checks:
//
//   - Config.ChannelBinding (see ChannelBinding, built by
//     TLSChannelBinding from the connection's tls.ConnectionState and the
//     server certificate): the types advertised with XEP-0440
//     <sasl-channel-binding/> — tls-exporter (RFC 9266, TLS 1.3) and
//     tls-server-end-point (RFC 5929) — and a function giving their data.
//     MechanismsFor offers the -PLUS mechanisms only when it is usable.
//   - Config.Offered: the mechanism list the stream advertised.
//
// With them a SCRAM exchange enforces the GS2 rules of RFC 5802 §6: p=<type>
// needs a -PLUS mechanism and an advertised type, and c= in the
// client-final-message must then be base64(GS2 header + binding data) of
// this very connection, so a client talking through a TLS-terminating
// man in the middle fails; "y" (the client binds but saw no -PLUS) fails
// when -PLUS was offered, since someone stripped it; "n" is always
// accepted. And it adds the XEP-0474 (SSDP) attribute h= to its
// server-first-message: the hash of Offered and the advertised types,
// which a client compares with what it saw and which the client's proof
// covers, so stripping a mechanism or a type on the way is detected.
//
// The server must not reveal whether an account exists. For an unknown user
// every mechanism goes through the same steps, with a fake credential that
// is deterministic per user (so a repeated probe sees the same salt), and
// fails only where a wrong password would fail, with the same condition and
// text. Channel binding failures depend only on the connection, never on
// the account.
package auth

import (
	"context"
	"crypto/rand"
	"fmt"
	"slices"

	"golang.org/x/text/secure/precis"

	"bluetick/internal/store"
)

// Mechanism names, as advertised in <mechanisms/> and requested in <auth/>.
const (
	SCRAMSHA1       = "SCRAM-SHA-1"
	SCRAMSHA256     = "SCRAM-SHA-256"
	SCRAMSHA1Plus   = "SCRAM-SHA-1-PLUS"
	SCRAMSHA256Plus = "SCRAM-SHA-256-PLUS"
	Plain           = "PLAIN"
)

// DefaultIterations is the PBKDF2 iteration count for new credentials.
//
// 4096 is the minimum RFC 7677 §4 recommends and the count used by the RFC
// examples and by most XMPP servers, so every client accepts it (some
// clients refuse or time out on much larger counts, and a SCRAM client pays
// the PBKDF2 cost on every login unless it caches the salted password,
// which small devices often do not). The server itself runs PBKDF2 only for
// PLAIN, so the count also bounds the CPU an attacker can make the server
// burn per PLAIN attempt. Raising it strengthens stored credentials against
// offline guessing after a database leak; existing credentials keep their
// own count, so it can be raised later without breaking anyone.
const DefaultIterations = 4096

// Limits on what a client may send and what a credential may hold.
const (
	// maxMessage bounds every client message. Legitimate SCRAM and PLAIN
	// messages are a few hundred bytes; the bound keeps parsing and
	// hashing cost trivial whatever a client sends.
	maxMessage = 4096
	// maxIterations is a sanity bound on stored iteration counts: PLAIN
	// runs PBKDF2 on the server, and a corrupt or absurd count must not
	// let one login pin a CPU for minutes.
	maxIterations = 1 << 24
	// saltLen is the salt size of new credentials (RFC 5802 asks for a
	// random salt; 16 bytes is what FIPS SP 800-132 requires).
	saltLen = 16
	// nonceLen is the number of random bytes in the server nonce (base64
	// encoded, so 32 characters); RFC 5802 only asks for "random", 192
	// bits makes collisions and guessing irrelevant.
	nonceLen = 24
)

// Config is the input of one exchange: access to accounts (Lookup,
// PrepareUser, Admit: typically shared by all exchanges, and then safe for
// concurrent use) and what the stream offered (Offered, ChannelBinding:
// per stream).
type Config struct {
	// Lookup returns the stored credential of user (a canonical localpart,
	// the output of PrepareUser) for mechanism (SCRAMSHA1 or SCRAMSHA256).
	// It returns an error wrapping store.ErrNotFound when the user or that
	// credential is absent; any other error fails the exchange with
	// temporary-auth-failure.
	Lookup func(ctx context.Context, user, mechanism string) (store.Credential, error)
	// PrepareUser maps the SASL authentication identity (the SCRAM
	// username or PLAIN authcid) to the canonical localpart, typically
	// with the PRECIS UsernameCaseMapped profile (RFC 7622 §3.3). An error
	// fails the exchange with not-authorized. It is also applied to the
	// localpart of an authorization identity to compare it with the
	// authenticated user. If nil, the name is used unchanged (only
	// sensible in tests).
	PrepareUser func(username string) (string, error)
	// Admit, if set, is called once per exchange with the canonical
	// localpart, as soon as it is known and before the password is
	// checked (before the credential is even looked up); a non-nil
	// *Failure ends the exchange with it (a login throttle's
	// temporary-auth-failure, see Throttle). It is called for accounts
	// that do not exist too, at the same step.
	Admit func(ctx context.Context, user string) *Failure

	// Offered is the mechanism list the stream advertised before this
	// exchange (<mechanisms/>, or SASL2's <authentication/>), as sent.
	// When set, the requested mechanism must be in it, SCRAM answers with
	// the XEP-0474 hash of it (with ChannelBinding.Types) and refuses the
	// "y" flag if it holds a -PLUS mechanism. Nil: the caller does not
	// say (tests and tools): no hash, and "y" is refused only if
	// ChannelBinding is usable.
	Offered []string
	// ChannelBinding is what the connection can bind to and what the
	// stream advertised of it (XEP-0440); the zero value means none, and
	// then the -PLUS mechanisms are refused.
	ChannelBinding ChannelBinding
	// TriedPlus: this client already asked on this stream for a -PLUS
	// mechanism with a binding type the connection lacks, and was refused
	// (UnsupportedBinding: tls-unique on TLS 1.3, which slixmpp asks for).
	// It saw the -PLUS offer, so its "y" afterwards is a fallback, not a
	// sign that someone stripped the offer on the way: accepted, as "n".
	// Refusing it only sends such a client on to PLAIN, which gives a man
	// in the middle the password itself. A binding that did not match
	// (not-authorized) does not count: a "y" after it stays refused.
	TriedPlus bool
}

// admit runs cfg.Admit if there is one.
func admit(ctx context.Context, cfg Config, user string) *Failure {
	if cfg.Admit == nil {
		return nil
	}
	return cfg.Admit(ctx, user)
}

// Failure is a SASL failure with its RFC 6120 §6.5 condition (for example
// "not-authorized", "malformed-request", "invalid-authzid",
// "invalid-mechanism", "temporary-auth-failure") and an optional
// human-readable text. Both go to the client in <failure/>, so Text never
// says more than the client may know (in particular not whether an account
// exists).
type Failure struct {
	Condition string
	Text      string
	// UnsupportedBinding: refused because the client asked for a channel
	// binding type this connection lacks (see Config.TriedPlus).
	UnsupportedBinding bool
}

// Error implements error.
func (f *Failure) Error() string {
	if f.Text == "" {
		return "sasl: " + f.Condition
	}
	return "sasl: " + f.Condition + ": " + f.Text
}

// Failure conditions used by this package (RFC 6120 §6.5).
const (
	condNotAuthorized    = "not-authorized"
	condMalformed        = "malformed-request"
	condInvalidAuthzid   = "invalid-authzid"
	condInvalidMechanism = "invalid-mechanism"
	condTemporary        = "temporary-auth-failure"
)

// badCredentials is the one failure for a wrong password and for an
// unknown user alike, so the two cannot be told apart.
func badCredentials() *Failure {
	return &Failure{Condition: condNotAuthorized, Text: "invalid username or password"}
}

func malformed(text string) *Failure {
	return &Failure{Condition: condMalformed, Text: text}
}

// errFinished is returned by Step once an exchange has succeeded or failed:
// a SASL exchange is single-use and a client that keeps talking is broken.
func errFinished() *Failure {
	return malformed("SASL exchange already finished")
}

// Negotiator runs one SASL exchange on the server side. It is not safe for
// concurrent use; a stream runs one exchange at a time anyway.
type Negotiator interface {
	// Step is called with each decoded (not base64) client message: first
	// the initial response (may be empty), then each response. It returns
	// the server's next challenge or, when done is true, the additional
	// data to send with <success/> (may be nil). Any error is a *Failure.
	// After done or a failure every further Step fails.
	Step(ctx context.Context, in []byte) (out []byte, done bool, err error)
	// Username is the authenticated canonical localpart, valid once Step
	// returned done; before that it is "".
	Username() string
}

// NewNegotiator starts an exchange for mechanism, one of SCRAMSHA1,
// SCRAMSHA256, SCRAMSHA1Plus, SCRAMSHA256Plus or Plain. An unknown
// mechanism, one missing from cfg.Offered (when set), or a -PLUS mechanism
// without usable cfg.ChannelBinding gives a *Failure with condition
// invalid-mechanism. Whether PLAIN is allowed on this stream (only over
// TLS, see Mechanisms) is the caller's decision, expressed by leaving it
// out of what it offers.
func NewNegotiator(mechanism string, cfg Config) (Negotiator, error) {
	if cfg.Lookup == nil {
		// A wiring bug, but reported like any server-side failure so a
		// caller that maps *Failure to <failure/> still answers sanely.
		return nil, &Failure{Condition: condTemporary, Text: "no account store configured"}
	}
	if cfg.PrepareUser == nil {
		cfg.PrepareUser = identityUser
	}
	if cfg.Offered != nil && !slices.Contains(cfg.Offered, mechanism) {
		return nil, &Failure{Condition: condInvalidMechanism, Text: "mechanism not offered on this stream"}
	}
	if isPlus(mechanism) && !cfg.ChannelBinding.Available() {
		return nil, &Failure{Condition: condInvalidMechanism, Text: "channel binding is not available on this connection"}
	}
	switch mechanism {
	case SCRAMSHA1, SCRAMSHA1Plus:
		return newSCRAM(hashSHA1, mechanism, cfg), nil
	case SCRAMSHA256, SCRAMSHA256Plus:
		return newSCRAM(hashSHA256, mechanism, cfg), nil
	case Plain:
		return &plain{cfg: cfg}, nil
	}
	return nil, &Failure{Condition: condInvalidMechanism, Text: "mechanism not supported"}
}

// Mechanisms lists the mechanisms to offer without channel binding,
// strongest first (clients tend to pick the first one they support).
// PLAIN sends the password itself, so it is offered only when tlsActive is
// true (RFC 6120 §6.4.1: the server must not offer mechanisms that would
// expose the password in clear).
func Mechanisms(tlsActive bool) []string {
	return MechanismsFor(tlsActive, ChannelBinding{})
}

// MechanismsFor is Mechanisms for a connection with channel binding cb:
// when cb is usable the -PLUS mechanisms come first (binding to the TLS
// channel beats any hash without it), then the others, strongest first.
// The result is what a stream advertises and passes as Config.Offered.
func MechanismsFor(tlsActive bool, cb ChannelBinding) []string {
	m := make([]string, 0, 5)
	if cb.Available() {
		m = append(m, SCRAMSHA256Plus, SCRAMSHA1Plus)
	}
	m = append(m, SCRAMSHA256, SCRAMSHA1)
	if tlsActive {
		m = append(m, Plain)
	}
	return m
}

// NewCredentials derives one store.Credential per SCRAM mechanism from a
// password, each with its own fresh random salt, so that the stored keys of
// the two mechanisms are unrelated. The password is first prepared with the
// PRECIS OpaqueString profile (RFC 8265 §4.2), the successor of SASLprep
// that RFC 7677 requires, so that a client preparing the same password
// derives the same keys; a password that the profile rejects (empty,
// control characters, ...) gives an error. iterations must be positive;
// use DefaultIterations unless there is a reason not to (counts below 4096
// are only for tests).
func NewCredentials(password string, iterations int) ([]store.Credential, error) {
	if iterations < 1 || iterations > maxIterations {
		return nil, fmt.Errorf("auth: iteration count %d out of range [1, %d]", iterations, maxIterations)
	}
	pw, err := precis.OpaqueString.String(password)
	if err != nil {
		return nil, fmt.Errorf("auth: invalid password: %w", err)
	}
	creds := make([]store.Credential, 0, 2)
	for _, h := range []*scramHash{hashSHA256, hashSHA1} {
		salt := randomBytes(saltLen)
		cred, err := deriveCredential(h, pw, salt, iterations)
		if err != nil {
			return nil, err
		}
		creds = append(creds, cred)
	}
	return creds, nil
}

// identityUser is the PrepareUser used when Config leaves it nil.
func identityUser(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("auth: empty username")
	}
	return name, nil
}

// randomBytes returns n bytes from crypto/rand. Since Go 1.24 rand.Read
// never fails (the runtime aborts instead), so there is no error to pass on.
func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("auth: crypto/rand failed: " + err.Error())
	}
	return b
}
