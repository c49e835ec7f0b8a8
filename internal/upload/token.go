package upload

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Token errors; both become 403 on the PUT.
var (
	ErrBadToken     = errors.New("upload: token is malformed or forged")
	ErrTokenExpired = errors.New("upload: token expired")
)

// Signer makes and checks PUT tokens: an HMAC-SHA256 over the slot id,
// size, content type and expiry, keyed by a secret every node shares. A
// node can thus authorise a PUT for a slot another node handed out, and
// nobody without the secret can make one; the token goes in the
// Authorization header XEP-0363 lets the slot carry.
type Signer struct {
	key []byte
}

// NewSigner keys a signer; the key must be long enough to be unguessable.
func NewSigner(secret []byte) (*Signer, error) {
	if len(secret) < 32 {
		return nil, errors.New("upload: secret must be at least 32 bytes")
	}
	return &Signer{key: append([]byte(nil), secret...)}, nil
}

const tokenPrefix = "v1."

func (s *Signer) mac(slot string, size int64, ctype string, exp int64) []byte {
	m := hmac.New(sha256.New, s.key)
	// NUL separators: none of the fields can contain one (ids and sizes
	// are checked, content types are header-safe), so fields cannot shift.
	m.Write([]byte("bluetick-upload-put\x00" + slot + "\x00" + strconv.FormatInt(size, 10) + "\x00" + ctype + "\x00" + strconv.FormatInt(exp, 10)))
	return m.Sum(nil)
}

// Sign returns the token allowing one PUT of size bytes of ctype to slot
// until exp: "v1.<unix expiry>.<base64url mac>".
func (s *Signer) Sign(slot string, size int64, ctype string, exp time.Time) string {
	e := exp.Unix()
	return tokenPrefix + strconv.FormatInt(e, 10) + "." + base64.RawURLEncoding.EncodeToString(s.mac(slot, size, ctype, e))
}

// Verify checks a token for exactly this slot, size and type at now.
func (s *Signer) Verify(tok, slot string, size int64, ctype string, now time.Time) error {
	exp, mac, err := parseToken(tok)
	if err != nil {
		return err
	}
	if !hmac.Equal(mac, s.mac(slot, size, ctype, exp)) {
		return ErrBadToken
	}
	if now.Unix() > exp {
		return ErrTokenExpired
	}
	return nil
}

// parseToken splits a token without trusting it.
func parseToken(tok string) (exp int64, mac []byte, err error) {
	rest, ok := strings.CutPrefix(tok, tokenPrefix)
	if !ok || len(tok) > 128 {
		return 0, nil, ErrBadToken
	}
	es, ms, ok := strings.Cut(rest, ".")
	if !ok || es == "" || len(es) > 19 || es[0] == '0' || es[0] == '+' || es[0] == '-' {
		return 0, nil, ErrBadToken
	}
	exp, err = strconv.ParseInt(es, 10, 64)
	if err != nil {
		return 0, nil, ErrBadToken
	}
	mac, err = base64.RawURLEncoding.Strict().DecodeString(ms)
	if err != nil || len(mac) != sha256.Size {
		return 0, nil, ErrBadToken
	}
	return exp, mac, nil
}

// bearer extracts the token from an Authorization header value.
func bearer(h string) string {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}
