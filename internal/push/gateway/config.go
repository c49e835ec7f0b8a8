package gateway

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"syscall"
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

// errPrivateAddr: a Web Push endpoint resolved to an address inside the
// server's networks. Endpoints come from clients, so the server must not
// be made to post to its own loopback or LAN services.
var errPrivateAddr = fmt.Errorf("push endpoint resolves to a loopback, private or link-local address: %w", errPermanent)

// NewPublicHTTPClient is NewHTTPClient restricted to public addresses, for
// URLs chosen by clients (Web Push endpoints).
func NewPublicHTTPClient() *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second, Control: func(network, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !publicAddr(ip) {
			return errPrivateAddr
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.DialContext = d.DialContext
	c := NewHTTPClient()
	c.Transport = tr
	return c
}

func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() &&
		!netip.MustParsePrefix("100.64.0.0/10").Contains(ip) && !netip.MustParsePrefix("fc00::/7").Contains(ip)
}

// FromConfig builds the gateway of cfg.Domain with the providers [push]
// configures; files (FCM service account, APNs key) are read now, and the
// VAPID key is created in data_dir on first use.
func FromConfig(cfg config.Config, st store.Push, log *slog.Logger) (*Gateway, error) {
	p := cfg.Push
	client := NewHTTPClient()
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
		providers["webpush"] = &WebPush{Key: k, Subject: sub, Client: NewPublicHTTPClient()}
	}
	if p.Webhook.Secret != "" {
		var allowed []string
		for _, a := range strings.Split(p.Webhook.AllowedURLs, ",") {
			if a = strings.TrimSpace(a); a != "" {
				allowed = append(allowed, a)
			}
		}
		providers["webhook"] = &Webhook{Secret: []byte(p.Webhook.Secret), Allowed: allowed, Client: client}
	}
	g := New(cfg.Domain, st, providers, log)
	g.MaxRetries = p.MaxRetries
	g.RetryTimeout = p.RetryTimeout.Duration
	return g, nil
}
