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
func (st *stream) sasl(first *xmlstream.Element) (bool, error) {
	ctx := context.Background()
	mech := first.Attr("mechanism")
	var attempt *auth.Attempt // admitted by the per-account throttle
	fail := func(cond, text string) (bool, error) {
		st.failures++
		if cond == "not-authorized" {
			st.svc.guard.Metrics.Failures.Add(1)
			if attempt != nil {
				attempt.Failed()
			}
		}
		if cond == "not-authorized" || cond == "invalid-authzid" {
			delay := st.svc.cfg.Limits.FailedAuthDelay.Duration << (st.failures - 1)
			if delay > 8*time.Second {
				delay = 8 * time.Second
			}
			time.Sleep(delay)
		}
		f := xmlstream.New(nsSASL, "failure").Append(xmlstream.New(nsSASL, cond))
		if text != "" {
			f.Append(xmlstream.New(nsSASL, "text", "xml:lang", "en").AppendText(text))
		}
		if err := st.t.Write([]*xmlstream.Element{f}); err != nil {
			return false, err
		}
		if st.failures >= maxAuthFailures {
			return false, &stanza.StreamError{Condition: "policy-violation", Text: "too many failed authentication attempts"}
		}
		return false, nil
	}
	if ip := st.t.Remote().String(); !st.svc.exempt(ip) && !st.svc.auth.Allow(ip) {
		st.svc.guard.Metrics.ThrottledAddress.Add(1)
		return fail("temporary-auth-failure", "too many login attempts from this address; wait a minute")
	}
	offered := st.saslMechanisms() // channelbinding.go
	allowed := false
	for _, m := range offered {
		if m == mech {
			allowed = true
		}
	}
	if !allowed {
		if mech == auth.Plain {
			return fail("encryption-required", "PLAIN needs TLS")
		}
		return fail("invalid-mechanism", "")
	}
	neg, err := auth.NewNegotiator(mech, auth.Config{
		Lookup:      st.svc.im.Store().Credential,
		PrepareUser: jid.PrepareLocal,
		// What the features advertised: -PLUS and XEP-0474 (auth.Config).
		Offered:        offered,
		ChannelBinding: st.channelBinding(),
		// Whatever the address (loopback too), before any password
		// check: refused at once, nothing sleeps for the back-off.
		Admit: func(ctx context.Context, user string) *auth.Failure {
			a, wait := st.svc.guard.Admit(ctx, user, st.t.Remote())
			if a == nil {
				return &auth.Failure{Condition: "temporary-auth-failure", Text: retryText(wait)}
			}
			attempt = a
			return nil
		},
	})
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
			st.user = neg.Username()
			st.log = st.log.With("user", st.user)
			var prev store.LoginStats
			if attempt != nil {
				var err error
				if prev, err = attempt.Succeeded(ctx); err != nil {
					st.log.Warn("sasl: reading the account's failed logins", "err", err)
				}
			}
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
