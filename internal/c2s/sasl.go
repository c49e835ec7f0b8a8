package c2s

import (
	"context"
	"encoding/base64"
	"errors"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// maxAuthFailures on one stream before it is closed; the doubling delay
// makes each further guess slower anyway.
const maxAuthFailures = 5

// sasl runs one SASL exchange (RFC 6120 §6.4) starting with <auth/>. It
// returns true on success; false after a <failure/> the client may retry.
//
// What it shares with SASL2 (sasl2.go), so both profiles are limited
// alike: the per-address limit (admitAddress), the mechanisms and the
// per-account throttle (offers, authConfig), the accounting of a failure
// (authFailed, tooManyFailures) and of a success (authSucceeded).
func (st *stream) sasl(first *xmlstream.Element) (bool, error) {
	ctx := context.Background()
	mech := first.Attr("mechanism")
	st.mech = mech
	var attempt *auth.Attempt // admitted by the per-account throttle
	fail := func(cond, text string) (bool, error) {
		st.authFailed(cond, attempt, cond == "not-authorized" || cond == "invalid-authzid")
		f := xmlstream.New(nsSASL, "failure").Append(xmlstream.New(nsSASL, cond))
		if text != "" {
			f.Append(xmlstream.New(nsSASL, "text", "xml:lang", "en").AppendText(text))
		}
		if err := st.t.Write([]*xmlstream.Element{f}); err != nil {
			return false, err
		}
		return false, st.tooManyFailures()
	}
	if f := st.admitAddress(); f != nil {
		return fail(f.Condition, f.Text)
	}
	if !st.offers(mech) {
		if mech == auth.Plain {
			return fail("encryption-required", "PLAIN needs TLS")
		}
		return fail("invalid-mechanism", "")
	}
	neg, err := auth.NewNegotiator(mech, st.authConfig(&attempt))
	if err != nil {
		return fail("invalid-mechanism", "")
	}
	in, err := decode64(first.Text())
	if err != nil {
		return fail("incorrect-encoding", "")
	}
	for {
		out, done, err := neg.Step(ctx, in)
		if err != nil {
			var f *auth.Failure
			if errors.As(err, &f) {
				st.triedPlus = st.triedPlus || f.UnsupportedBinding
				return fail(f.Condition, f.Text)
			}
			st.log.Error("sasl", "err", err)
			return fail("temporary-auth-failure", "")
		}
		if done {
			succ := xmlstream.New(nsSASL, "success")
			if len(out) > 0 {
				succ.AppendText(base64.StdEncoding.EncodeToString(out))
			}
			prev := st.authSucceeded(ctx, neg, attempt)
			if err := st.t.Write([]*xmlstream.Element{succ}); err != nil {
				return false, err
			}
			if prev.Failed > 0 {
				st.svc.loginNotice(ctx, st.user, prev, st.t.Remote().String())
			}
			return true, nil
		}
		ch := xmlstream.New(nsSASL, "challenge")
		if len(out) > 0 {
			ch.AppendText(base64.StdEncoding.EncodeToString(out))
		} else {
			ch.AppendText("=") // zero-length data (RFC 6120 §6.4.2)
		}
		if err := st.t.Write([]*xmlstream.Element{ch}); err != nil {
			return false, err
		}
		el, err := st.next()
		if err != nil {
			return false, err
		}
		if el.Space != nsSASL {
			return false, &stanza.StreamError{Condition: "policy-violation", Text: "SASL exchange in progress"}
		}
		switch el.Name {
		case "abort":
			return fail("aborted", "")
		case "response":
			if in, err = decode64(el.Text()); err != nil {
				return fail("incorrect-encoding", "")
			}
		default:
			return false, &stanza.StreamError{Condition: "policy-violation", Text: "SASL exchange in progress"}
		}
	}
}

// decode64 decodes SASL data; "=" is an empty response (RFC 6120 §6.4.2).
func decode64(s string) ([]byte, error) {
	if s == "=" || s == "" {
		return nil, nil
	}
	return base64.StdEncoding.DecodeString(s)
}

// admitAddress counts one more authentication attempt from the client's
// address against limits.logins_per_ip_per_minute (loopback exempt with
// limits.exempt_loopback); over it, the failure to answer.
func (st *stream) admitAddress() *auth.Failure {
	if ip := st.t.Remote().String(); !st.svc.exempt(ip) && !st.svc.auth.Allow(ip) {
		st.svc.guard.Metrics.ThrottledAddress.Add(1)
		return &auth.Failure{Condition: "temporary-auth-failure", Text: "too many login attempts from this address; wait a minute"}
	}
	return nil
}

// mechanisms are the password mechanisms offered on this stream, the one
// list both <mechanisms/> and SASL2's <authentication/> advertise.
func (st *stream) mechanisms() []string { return st.saslMechanisms() }

// offers reports whether mech is one of st.mechanisms().
func (st *stream) offers(mech string) bool {
	for _, m := range st.mechanisms() {
		if m == mech {
			return true
		}
	}
	return false
}

// authConfig is what a Negotiator of this stream needs: the account store,
// localpart preparation, and the per-account throttle, which is asked
// before any password check and, when it admits the attempt, stores it in
// *attempt for authFailed and authSucceeded.
func (st *stream) authConfig(attempt **auth.Attempt) auth.Config {
	return auth.Config{
		Lookup:      st.svc.im.Store().Credential,
		PrepareUser: jid.PrepareLocal,
		// What the features advertised: -PLUS and XEP-0474 (auth.Config;
		// SASL2 offers the same list).
		Offered:        st.mechanisms(),
		ChannelBinding: st.channelBinding(),
		TriedPlus:      st.triedPlus,
		// Whatever the address (loopback too), before any password
		// check: refused at once, nothing sleeps for the back-off.
		Admit: func(ctx context.Context, user string) *auth.Failure {
			// A disabled account (XEP-0133 disable-user) logs in with no
			// password mechanism until it is re-enabled (its FAST tokens
			// are revoked when it is disabled).
			if off, err := st.svc.im.Store().UserDisabled(ctx, user); err != nil {
				st.log.Error("sasl: reading whether the account is disabled", "user", user, "err", err)
				return &auth.Failure{Condition: "temporary-auth-failure", Text: "try again later"}
			} else if off {
				return &auth.Failure{Condition: "account-disabled", Text: "this account is disabled by the server's administrator"}
			}
			a, wait := st.svc.guard.Admit(ctx, user, st.t.Remote())
			if a == nil {
				return &auth.Failure{Condition: "temporary-auth-failure", Text: retryText(wait)}
			}
			*attempt = a
			return nil
		},
	}
}

// authFailed accounts for a failed exchange before it is answered: one
// more failure on this stream, a wrong password reported to the
// per-account throttle (attempt: the admitted attempt, nil if none), and,
// if delay, the failure delay (limits.failed_auth_delay, doubling with
// each failure of the stream, at most 8 s).
func (st *stream) authFailed(cond string, attempt *auth.Attempt, delay bool) {
	st.failures++
	st.svc.countLogin(st, "failed")
	if cond == "not-authorized" {
		st.svc.guard.Metrics.Failures.Add(1)
		if attempt != nil {
			attempt.Failed()
		}
	}
	if delay {
		d := st.svc.cfg.Limits.FailedAuthDelay.Duration << (st.failures - 1)
		if d > 8*time.Second {
			d = 8 * time.Second
		}
		time.Sleep(d)
	}
}

// tooManyFailures is the stream error that closes a stream once it has
// had maxAuthFailures failed authentications (after the last one was
// answered), nil before.
func (st *stream) tooManyFailures() error {
	if st.failures >= maxAuthFailures {
		return &stanza.StreamError{Condition: "policy-violation", Text: "too many failed authentication attempts"}
	}
	return nil
}

// authSucceeded makes the stream authenticated as neg's user and reports
// the success to the per-account throttle, returning what it knew of the
// account's failed logins before (for the owner's notice).
func (st *stream) authSucceeded(ctx context.Context, neg auth.Negotiator, attempt *auth.Attempt) store.LoginStats {
	st.user = neg.Username()
	st.log = st.log.With("user", st.user)
	st.svc.countLogin(st, "ok")
	var prev store.LoginStats
	if attempt != nil {
		var err error
		if prev, err = attempt.Succeeded(ctx); err != nil {
			st.log.Warn("sasl: reading the account's failed logins", "err", err)
		}
	}
	return prev
}
