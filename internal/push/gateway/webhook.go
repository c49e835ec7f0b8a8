package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"

	"bluetick/internal/store"
)

// Webhook posts the notification as JSON to the URL the device registered,
// signed with HMAC-SHA256 under the configured secret:
//
//	X-Bluetick-Signature: sha256=<hex of HMAC-SHA256(secret, body)>
//
// For self-hosted relays (a UnifiedPush distributor, a home server, a
// bridge to another push system).
type Webhook struct {
	Secret  []byte
	Allowed []string // URLs devices may register under (see within)
	Client  *http.Client
}

// SignatureHeader carries the body's HMAC.
const SignatureHeader = "X-Bluetick-Signature"

// Sign returns the X-Bluetick-Signature value of body.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Allows reports whether url may be registered.
func (w *Webhook) Allows(url string) bool {
	_, err := w.check(url)
	return err == nil
}

// check parses raw (checkURL) and finds an allowed URL it lies within:
// same scheme, host and effective port, path prefix on a segment boundary.
// Entries are compared as parsed URLs, never as strings:
// "http://127.0.0.1:42105" does not allow
// "http://127.0.0.1:42105@127.0.0.1:42444/" (user info) nor
// "http://127.0.0.1:421050/".
func (w *Webhook) check(raw string) (*url.URL, error) {
	u, err := checkURL(raw, "https", "http")
	if err != nil {
		return nil, err
	}
	for _, a := range w.Allowed {
		if au, err := url.Parse(a); err == nil && au.Host != "" && au.User == nil && within(u, au) {
			return u, nil
		}
	}
	return nil, &RefusedError{Host: u.Host, Reason: "not_allowed", Detail: "this webhook URL is not under any of the server's push.webhook.allowed_urls"}
}

// Send implements Provider. 404 and 410 mean the endpoint is gone.
func (w *Webhook) Send(ctx context.Context, d store.PushDevice, m Message) error {
	// Checked again: allowed_urls may have changed since the device
	// registered (and devices registered before these checks existed).
	if _, err := w.check(d.Token); err != nil {
		return err
	}
	body := payload(d, m)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Token, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	resp, err := w.Client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusGone:
		return ErrUnregistered
	}
	return httpError("webhook", resp)
}
