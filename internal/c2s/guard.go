package c2s

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/auth"
	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// The login limits around SASL (docs/configuration.md#login-throttling):
// per address, the service's rate limiter (limits.logins_per_ip_per_minute,
// lifted for loopback by limits.exempt_loopback); per account, an
// auth.Throttle, on every address, loopback included. Every transport
// (TCP, direct TLS, WebSocket, BOSH) runs the one stream.sasl, so both
// apply to all of them.

// ThrottleConfig is the per-account login throttle's configuration.
func ThrottleConfig(cfg config.Config) auth.ThrottleConfig {
	l := cfg.Limits
	return auth.ThrottleConfig{
		Failures:   l.AccountLoginFailures,
		Backoff:    l.AccountLoginBackoff.Duration,
		BackoffMax: l.AccountLoginBackoffMax.Duration,
		Window:     l.AccountLoginWindow.Duration,
	}
}

// newThrottle makes the per-account throttle from the configuration.
func newThrottle(cfg config.Config, st store.Logins, svc *Service) *auth.Throttle {
	return auth.NewThrottle(ThrottleConfig(cfg), st, svc.log.With("component", "c2s"))
}

// LoginMetrics are the login limits' counters (bluetick_auth_*), for the
// metrics listener.
func (s *Service) LoginMetrics() prometheus.Collector { return &s.guard.Metrics }

// retryText is the <text/> of a throttled attempt's temporary-auth-failure.
func retryText(wait time.Duration) string {
	return fmt.Sprintf("too many failed logins to this account; retry in %s", wait.Truncate(time.Second)+time.Second)
}

// loginNotice tells an account's owner, once a login succeeded, about the
// failed attempts since the previous one: a normal message with a body
// from the server's own JID to the bare JID, which every client shows as a
// message from the server, delivered to the user's available resources or
// held in the offline store for the next one (the session that just
// logged in gets it with its initial presence).
func (s *Service) loginNotice(ctx context.Context, user string, prev store.LoginStats, from string) {
	to, err := jid.New(user, s.cfg.Domain, "")
	if err != nil {
		return
	}
	attempts := "failed login attempts"
	if prev.Failed == 1 {
		attempts = "failed login attempt"
	}
	body := fmt.Sprintf("%d %s on your account since your last login, the last from %s at %s.",
		prev.Failed, attempts, prev.LastFailureAddr, prev.LastFailure.UTC().Format("2006-01-02 15:04 MST"))
	if prev.LastFailureAddr != from {
		body += " If that was not you, someone may be guessing your password: make sure it is a strong one, and change it if in doubt."
	}
	msg := xmlstream.New(xmlstream.NSClient, "message", "from", s.cfg.Domain, "to", to.String(), "type", "normal", "id", server.NewID())
	msg.Append(xmlstream.New(xmlstream.NSClient, "subject").AppendText("Failed login attempts"))
	msg.Append(xmlstream.New(xmlstream.NSClient, "body").AppendText(body))
	if err := s.im.Deliver(ctx, to, msg); err != nil {
		s.log.Warn("c2s: failed-login notice not delivered", "user", user, "err", err)
	}
}
