package fast

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"unicode/utf8"
)

// tokenBytes is the randomness of a token. Encoded in base64url it makes
// 72 characters: more than SHA-256's 64-byte block, so HMAC hashes the
// key and SHA-256(token) is the effective key (see the package doc).
// Never lower it to 48 or less.
const tokenBytes = 54

// maxInitial bounds the HT initial response: a localpart (at most 1023
// bytes, RFC 7622 §3.3.1), a NUL and a 32-byte HMAC.
const maxInitial = 1023 + 1 + sha256.Size

// The HMAC inputs' prefixes (draft-schmaus-kitten-sasl-ht-09).
var (
	initiator = []byte("Initiator")
	responder = []byte("Responder")
)

// newToken returns a fresh token and its stored hash.
func newToken() (token string, hash []byte) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		panic("fast: crypto/rand failed: " + err.Error()) // never, since Go 1.24
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

// hashToken is what the store keeps of a token: SHA-256 of its string,
// which is also its effective HMAC-SHA-256 key.
func hashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// htMAC computes HMAC-SHA-256(key, prefix || cbData), key being the
// stored hash of a token (equivalently, the token itself).
func htMAC(key, prefix, cbData []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(prefix)
	m.Write(cbData)
	return m.Sum(nil)
}

// Errors of parseInitial.
var (
	errNoNUL     = errors.New("no NUL after the authentication identity")
	errNoAuthcid = errors.New("empty authentication identity")
	errBadUTF8   = errors.New("authentication identity is not UTF-8")
	errMACSize   = errors.New("the hashed token is not 32 bytes (HMAC-SHA-256)")
	errTooLong   = errors.New("initial response too long")
)

// parseInitial splits an HT initial client response (draft-schmaus-kitten-sasl-ht-09):
//
//	initial-client-response = authcid NUL initiator-hashed-token
//
// The authcid, UTF-8 without NUL, ends at the first NUL; the rest, which
// may contain NULs, is the HMAC.
func parseInitial(in []byte) (authcid string, mac []byte, err error) {
	if len(in) > maxInitial {
		return "", nil, errTooLong
	}
	i := bytes.IndexByte(in, 0)
	switch {
	case i < 0:
		return "", nil, errNoNUL
	case i == 0:
		return "", nil, errNoAuthcid
	case !utf8.Valid(in[:i]):
		return "", nil, errBadUTF8
	case len(in)-i-1 != sha256.Size:
		return "", nil, errMACSize
	}
	return string(in[:i]), in[i+1:], nil
}

// InitialResponse builds a client's HT initial response: what a client
// holding token sends for user (a localpart) with the channel-binding
// data cbData. The server never needs it; tests and tools (and the
// SASL2 layer's tests) do.
func InitialResponse(user, token string, cbData []byte) []byte {
	out := append([]byte(user), 0)
	return append(out, htMAC([]byte(token), initiator, cbData)...)
}

// ServerFinal is the additional data a server holding token returns with
// <success/> (the final server message of the draft): a client compares it with what it received
// to authenticate the server.
func ServerFinal(token string, cbData []byte) []byte {
	return htMAC([]byte(token), responder, cbData)
}
