package gateway

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
)

var b64 = base64.RawURLEncoding

// signJWT returns a compact JWS (RFC 7515) of claims: RS256 with an RSA
// key (FCM's OAuth2 assertion), ES256 with a P-256 key (APNs provider
// tokens, VAPID). kid goes into the header when not empty.
func signJWT(key crypto.Signer, kid string, claims any) (string, error) {
	hdr := map[string]string{"typ": "JWT"}
	switch key.(type) {
	case *rsa.PrivateKey:
		hdr["alg"] = "RS256"
	default:
		hdr["alg"] = "ES256"
	}
	if kid != "" {
		hdr["kid"] = kid
	}
	h, err := json.Marshal(hdr)
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	sum := sha256.Sum256([]byte(signing))
	var sig []byte
	switch k := key.(type) {
	case *rsa.PrivateKey:
		sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
	case *ecdsa.PrivateKey:
		// JWS ES256 is the fixed-size r||s, not ASN.1 (RFC 7518 §3.4).
		var r, s *big.Int
		r, s, err = ecdsa.Sign(rand.Reader, k, sum[:])
		if err == nil {
			sig = make([]byte, 64)
			r.FillBytes(sig[:32])
			s.FillBytes(sig[32:])
		}
	}
	if err != nil {
		return "", err
	}
	return signing + "." + b64.EncodeToString(sig), nil
}
