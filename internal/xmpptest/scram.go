package xmpptest

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SCRAM is the client side of one SCRAM-SHA-256 exchange without channel
// binding (RFC 5802 §3, RFC 7677), independent of the SASL profile:
//
//	first := s.First()            // client-first-message
//	final, err := s.Final(sf)     // answer to the server-first-message
//	err = s.Verify(sv)            // the server's v=... (additional data)
type SCRAM struct {
	user, pass string
	bare       string // client-first-message-bare
	serverSig  []byte
}

// NewSCRAM starts an exchange for user with password pass.
func NewSCRAM(user, pass string) *SCRAM {
	nb := make([]byte, 18)
	rand.Read(nb)
	return &SCRAM{user: user, pass: pass, bare: "n=" + user + ",r=" + base64.RawStdEncoding.EncodeToString(nb)}
}

// First is the client-first-message.
func (s *SCRAM) First() []byte { return []byte("n,," + s.bare) }

// Final computes the client-final-message for the server-first-message.
func (s *SCRAM) Final(serverFirst []byte) ([]byte, error) {
	var nonce, salt string
	var iter int
	for _, f := range strings.Split(string(serverFirst), ",") {
		switch {
		case strings.HasPrefix(f, "r="):
			nonce = f[2:]
		case strings.HasPrefix(f, "s="):
			salt = f[2:]
		case strings.HasPrefix(f, "i="):
			iter, _ = strconv.Atoi(f[2:])
		}
	}
	saltB, err := base64.StdEncoding.DecodeString(salt)
	if err != nil || nonce == "" || iter < 1 {
		return nil, fmt.Errorf("scram: bad server-first-message %q", serverFirst)
	}
	salted, err := pbkdf2.Key(sha256.New, s.pass, saltB, iter, 32)
	if err != nil {
		return nil, err
	}
	ck := hmac256(salted, []byte("Client Key"))
	stored := sha256.Sum256(ck)
	final := "c=biws,r=" + nonce
	authMsg := []byte(s.bare + "," + string(serverFirst) + "," + final)
	sig := hmac256(stored[:], authMsg)
	proof := make([]byte, len(ck))
	for i := range ck {
		proof[i] = ck[i] ^ sig[i]
	}
	s.serverSig = hmac256(hmac256(salted, []byte("Server Key")), authMsg)
	return []byte(final + ",p=" + base64.StdEncoding.EncodeToString(proof)), nil
}

// Verify checks the server-final-message (v=...).
func (s *SCRAM) Verify(serverFinal []byte) error {
	want := "v=" + base64.StdEncoding.EncodeToString(s.serverSig)
	if s.serverSig == nil || string(serverFinal) != want {
		return errors.New("scram: the server's signature does not verify")
	}
	return nil
}

func hmac256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
