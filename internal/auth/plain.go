package auth

import (
	"bytes"
	"context"
	"crypto/subtle"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"

	"bluetick/internal/store"
)

type plainState int

const (
	plainStart    plainState = iota // nothing received yet
	plainWantResp                   // empty initial response answered with an empty challenge
	plainEnded                      // succeeded or failed
)

// plain is the server side of PLAIN (RFC 4616): one message
// [authzid] NUL authcid NUL passwd, checked against the stored SCRAM
// credential by redoing the client's key derivation, so accounts need no
// separate password hash for PLAIN.
type plain struct {
	cfg      Config
	state    plainState
	username string
}

// Username implements Negotiator.
func (p *plain) Username() string { return p.username }

// Step implements Negotiator.
func (p *plain) Step(ctx context.Context, in []byte) ([]byte, bool, error) {
	switch p.state {
	case plainStart:
		if len(in) == 0 {
			// <auth/> without initial response: PLAIN is
			// client-first, so ask for the message with an empty
			// challenge (RFC 4422 §5, RFC 6120 §6.4.2).
			p.state = plainWantResp
			return []byte{}, false, nil
		}
	case plainWantResp:
	default:
		return nil, false, errFinished()
	}
	p.state = plainEnded
	user, f := p.verify(ctx, in)
	if f != nil {
		return nil, false, f
	}
	p.username = user
	return nil, true, nil
}

// verify parses and checks a PLAIN message and returns the authenticated
// user.
func (p *plain) verify(ctx context.Context, in []byte) (string, *Failure) {
	if len(in) > maxMessage {
		return "", malformed("message too long")
	}
	parts := bytes.Split(in, []byte{0})
	if len(parts) != 3 {
		return "", malformed("PLAIN message must be authzid NUL authcid NUL password")
	}
	for _, part := range parts {
		if !utf8.Valid(part) {
			return "", malformed("PLAIN message is not UTF-8")
		}
	}
	authzid, authcid, password := string(parts[0]), string(parts[1]), string(parts[2])
	if authcid == "" || password == "" {
		return "", malformed("empty username or password")
	}

	user, err := p.cfg.PrepareUser(authcid)
	if err != nil || user == "" {
		return "", badCredentials()
	}
	if authzid != "" && !sameUser(p.cfg, authzid, user) {
		return "", &Failure{Condition: condInvalidAuthzid, Text: "authorization identity must be the authenticated user"}
	}
	if f := admit(ctx, p.cfg, user); f != nil {
		return "", f
	}
	// The same preparation as NewCredentials, or a password with, say,
	// a non-NFC form would never match. A password the profile rejects
	// cannot be anyone's password.
	pw, err := precis.OpaqueString.String(password)
	if err != nil {
		return "", badCredentials()
	}

	h, cred, known, f := p.lookup(ctx, user)
	if f != nil {
		return "", f
	}
	// For an unknown user cred is fake and the PBKDF2 work is the same as
	// for a real account, so response time does not tell them apart.
	storedKey, _, err := saltedKeys(h, pw, cred.Salt, cred.Iterations)
	if err != nil {
		return "", &Failure{Condition: condTemporary, Text: "key derivation failed"}
	}
	match := subtle.ConstantTimeCompare(storedKey, cred.StoredKey) == 1
	if !match || !known {
		return "", badCredentials()
	}
	return user, nil
}

// lookup picks the credential to verify against: SCRAM-SHA-256, or
// SCRAM-SHA-1 for accounts that only have that. Both are always looked up,
// so the number of store queries does not depend on which exist.
func (p *plain) lookup(ctx context.Context, user string) (*scramHash, store.Credential, bool, *Failure) {
	c256, known256, f := lookupCredential(ctx, p.cfg, hashSHA256, user)
	if f != nil {
		return nil, store.Credential{}, false, f
	}
	c1, known1, f := lookupCredential(ctx, p.cfg, hashSHA1, user)
	if f != nil {
		return nil, store.Credential{}, false, f
	}
	if !known256 && known1 {
		return hashSHA1, c1, true, nil
	}
	// Unknown users get the fake SHA-256 credential: SHA-256 is what
	// real accounts are verified with.
	return hashSHA256, c256, known256, nil
}
