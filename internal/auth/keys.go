package auth

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"sync/atomic"

	"bluetick/internal/store"
)

// scramHash is one SCRAM hash function with what the fake credentials of
// its mechanism need to look real.
type scramHash struct {
	mech string
	new  func() hash.Hash
	size int
	// lastIterations is the iteration count of the last real credential
	// of this mechanism seen by Lookup (0: none yet). Fake credentials
	// copy it, so unknown users show the count real users have even when
	// the deployment does not use DefaultIterations.
	lastIterations atomic.Int64
}

var (
	hashSHA1   = &scramHash{mech: SCRAMSHA1, new: sha1.New, size: sha1.Size}
	hashSHA256 = &scramHash{mech: SCRAMSHA256, new: sha256.New, size: sha256.Size}
)

func hmacSum(h func() hash.Hash, key []byte, msg ...string) []byte {
	m := hmac.New(h, key)
	for _, s := range msg {
		m.Write([]byte(s))
	}
	return m.Sum(nil)
}

func hashSum(h func() hash.Hash, b []byte) []byte {
	d := h()
	d.Write(b)
	return d.Sum(nil)
}

// saltedKeys runs the RFC 5802 §3 key derivation on an already prepared
// password: SaltedPassword := Hi(password, salt, i), ClientKey :=
// HMAC(SaltedPassword, "Client Key"), StoredKey := H(ClientKey), ServerKey
// := HMAC(SaltedPassword, "Server Key"). Hi is PBKDF2 with HMAC-H and one
// block of output.
func saltedKeys(h *scramHash, password string, salt []byte, iterations int) (storedKey, serverKey []byte, err error) {
	salted, err := pbkdf2.Key(h.new, password, salt, iterations, h.size)
	if err != nil {
		// Only in FIPS 140-only mode (SHA-1 and short salts are refused
		// there) or for an out-of-range count.
		return nil, nil, fmt.Errorf("auth: %s key derivation: %w", h.mech, err)
	}
	clientKey := hmacSum(h.new, salted, "Client Key")
	return hashSum(h.new, clientKey), hmacSum(h.new, salted, "Server Key"), nil
}

// deriveCredential builds the stored credential of h's mechanism from a
// prepared password and a salt.
func deriveCredential(h *scramHash, password string, salt []byte, iterations int) (store.Credential, error) {
	storedKey, serverKey, err := saltedKeys(h, password, salt, iterations)
	if err != nil {
		return store.Credential{}, err
	}
	return store.Credential{
		Mechanism:  h.mech,
		Salt:       salt,
		Iterations: iterations,
		StoredKey:  storedKey,
		ServerKey:  serverKey,
	}, nil
}

// validCredential reports whether a stored credential can be used with h;
// anything else is a store or migration bug, not a client error.
func validCredential(h *scramHash, c store.Credential) bool {
	return len(c.Salt) > 0 && len(c.Salt) <= 1024 &&
		c.Iterations >= 1 && c.Iterations <= maxIterations &&
		len(c.StoredKey) == h.size && len(c.ServerKey) == h.size
}

// fakeKey keys the fake credentials of unknown users. It is random per
// process: the fake salts must be stable (a client asking twice for the
// same unknown user must see the same salt, as for a real one) yet not
// computable by anyone outside, or a salt could be checked against the
// formula to learn that the account does not exist.
var fakeKey = randomBytes(32)

// fakeCredential is the stand-in credential of a user that does not exist
// (or lacks a credential for h's mechanism). Salt and keys are HMACs of the
// user name under fakeKey: deterministic per user and mechanism, of the
// same sizes as real ones, and matching no password that anyone can find.
func fakeCredential(h *scramHash, user string) store.Credential {
	iterations := int(h.lastIterations.Load())
	if iterations == 0 {
		iterations = DefaultIterations
	}
	return store.Credential{
		Mechanism:  h.mech,
		Salt:       hmacSum(sha256.New, fakeKey, "salt\x00", h.mech, "\x00", user)[:saltLen],
		Iterations: iterations,
		StoredKey:  hmacSum(sha256.New, fakeKey, "stored\x00", h.mech, "\x00", user)[:h.size],
		ServerKey:  hmacSum(sha256.New, fakeKey, "server\x00", h.mech, "\x00", user)[:h.size],
	}
}

// lookupCredential returns user's credential for h's mechanism and whether
// it is real. An absent user or credential yields a fake credential and no
// failure, so the exchange carries on exactly as for a real account; only a
// store failure ends it here.
func lookupCredential(ctx context.Context, cfg Config, h *scramHash, user string) (store.Credential, bool, *Failure) {
	cred, err := cfg.Lookup(ctx, user, h.mech)
	switch {
	case err == nil:
		if !validCredential(h, cred) {
			return store.Credential{}, false, &Failure{Condition: condTemporary, Text: "stored credential is unusable"}
		}
		h.lastIterations.Store(int64(cred.Iterations))
		return cred, true, nil
	case errors.Is(err, store.ErrNotFound):
		return fakeCredential(h, user), false, nil
	default:
		return store.Credential{}, false, &Failure{Condition: condTemporary, Text: "account store unavailable"}
	}
}
