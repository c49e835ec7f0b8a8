package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/store"
)

// httpTimeout bounds one request to a push service.
const httpTimeout = 30 * time.Second

// NewHTTPClient is the client the providers use: bounded, and never
// following redirects (a webhook or push endpoint must not bounce the
// server's requests elsewhere).
func NewHTTPClient() *http.Client {
	return &http.Client{
		Timeout:       httpTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// FromConfig builds the gateway of cfg.Domain with the providers [push]
// configures; files (FCM service account, APNs key) are read now, and the
// VAPID key is created in data_dir on first use.
func FromConfig(cfg config.Config, st store.Push, log *slog.Logger) (*Gateway, error) {
	p := cfg.Push
	// The operator's endpoints (FCM, APNs) use a plain client; URLs that
	// devices choose (Web Push, webhook) go through the guard.
	client := NewHTTPClient()
	guard, err := NewGuard(p.AllowPrivate)
	if err != nil {
		return nil, err
	}
	providers := map[string]Provider{}
	if p.FCM.ServiceAccountFile != "" {
		f, err := LoadFCM(p.FCM.ServiceAccountFile, p.FCM.ProjectID, p.FCM.Endpoint, p.FCM.TokenURL, client)
		if err != nil {
			return nil, err
		}
		providers["fcm"] = f
	}
	if p.APNs.KeyFile != "" {
		k, err := LoadAPNsKey(p.APNs.KeyFile)
		if err != nil {
			return nil, err
		}
		// Go's client speaks HTTP/2 to https endpoints by itself (ALPN h2).
		providers["apns"] = &APNs{Endpoint: p.APNs.Endpoint, Topic: p.APNs.Topic, KeyID: p.APNs.KeyID, TeamID: p.APNs.TeamID,
			Key: k, PushType: p.APNs.PushType, Client: client}
	}
	if p.WebPush.Enabled {
		k, err := LoadVAPIDKey(filepath.Join(cfg.DataDir, "vapid.pem"))
		if err != nil {
			return nil, errors.New("push.webpush: " + err.Error())
		}
		sub := p.WebPush.Subject
		if sub == "" {
			sub = "mailto:postmaster@" + cfg.Domain
		}
		providers["webpush"] = &WebPush{Key: k, Subject: sub, Client: guard.HTTPClient()}
	}
	if p.Webhook.Secret != "" {
		allowed, err := parseAllowedURLs(p.Webhook.AllowedURLs, guard)
		if err != nil {
			return nil, err
		}
		providers["webhook"] = &Webhook{Secret: []byte(p.Webhook.Secret), Allowed: allowed, Client: guard.HTTPClient()}
	}
	g := New(cfg.Domain, st, providers, log)
	g.Guard = guard
	g.MaxRetries = p.MaxRetries
	g.RetryTimeout = p.RetryTimeout.Duration
	return g, nil
}

// parseAllowedURLs reads push.webhook.allowed_urls: absolute http or https
// URLs without user info, query or fragment. An entry whose host is an IP
// address (in any spelling) or localhost must be allowed by
// push.allow_private too, or no device could ever register under it: that
// is a startup error rather than a silent refusal of every registration.
func parseAllowedURLs(list string, guard *Guard) ([]string, error) {
	var out []string
	for _, a := range strings.Split(list, ",") {
		if a = strings.TrimSpace(a); a == "" {
			continue
		}
		u, err := checkURL(a, "https", "http")
		if err == nil && (u.RawQuery != "" || u.ForceQuery) {
			err = errors.New("must not contain a query")
		}
		if err != nil {
			return nil, fmt.Errorf("push.webhook.allowed_urls: %q %v", a, err)
		}
		h := normHost(u.Hostname())
		if _, ip := netip.ParseAddr(h); ip == nil || endsInNumber(h) || h == "localhost" || strings.HasSuffix(h, ".localhost") {
			if _, err := guard.Resolve(context.Background(), u.Hostname()); err != nil {
				return nil, fmt.Errorf("push.webhook.allowed_urls: %q: %v", a, err)
			}
		}
		out = append(out, a)
	}
	return out, nil
}
