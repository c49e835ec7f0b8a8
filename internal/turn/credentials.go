// Package turn gives calls a media relay: time-limited TURN credentials
// (the TURN REST API scheme coturn calls use-auth-secret), the built-in
// STUN/TURN server that checks them (pion/turn), and XEP-0215 external
// service discovery, through which clients learn the server and get their
// credentials over their authenticated XMPP session.
//
// One credential scheme serves both modes — the built-in server and an
// external coturn sharing the secret — so a client cannot tell them apart
// and an operator can switch without touching clients.
package turn

import (
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"
)

// Credentials are what a client presents to the TURN server.
type Credentials struct {
	Username string // "<expiry-unix>:<user>"
	Password string // base64(HMAC-SHA1(secret, Username))
	Expires  time.Time
}

// Errors of Check; the TURN server answers all of them 401.
var (
	ErrMalformed = errors.New("turn: username is not <expiry-unix>:<user>")
	ErrExpired   = errors.New("turn: credentials expired")
)

// Issue returns credentials for user valid until now+ttl, truncated to the
// second as the username carries Unix seconds.
func Issue(secret, user string, now time.Time, ttl time.Duration) Credentials {
	exp := now.Add(ttl).Truncate(time.Second)
	name := strconv.FormatInt(exp.Unix(), 10) + ":" + user
	return Credentials{Username: name, Password: Password(secret, name), Expires: exp}
}

// Password is base64(HMAC-SHA1(secret, username)): the password coturn
// derives for a username under use-auth-secret.
func Password(secret, username string) string {
	m := hmac.New(sha1.New, []byte(secret))
	m.Write([]byte(username))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// ParseUsername splits "<expiry-unix>:<user>" (coturn's default separator).
// The expiry is decimal digits only — no sign, no spaces — and the user is
// not empty.
func ParseUsername(username string) (expires time.Time, user string, err error) {
	ts, user, ok := strings.Cut(username, ":")
	if !ok || ts == "" || len(ts) > 18 || user == "" {
		return time.Time{}, "", ErrMalformed
	}
	var n int64
	for i := 0; i < len(ts); i++ {
		c := ts[i]
		if c < '0' || c > '9' {
			return time.Time{}, "", ErrMalformed
		}
		n = n*10 + int64(c-'0')
	}
	return time.Unix(n, 0), user, nil
}

// Check validates a username the TURN server received and returns the
// password that goes with it, from which the server derives the long-term
// key (RFC 5389 §15.4) that verifies the request's MESSAGE-INTEGRITY: a
// forged username or password fails there. Expired credentials are
// refused here.
func Check(secret, username string, now time.Time) (password string, err error) {
	exp, _, err := ParseUsername(username)
	if err != nil {
		return "", err
	}
	if !now.Before(exp) {
		return "", ErrExpired
	}
	return Password(secret, username), nil
}
