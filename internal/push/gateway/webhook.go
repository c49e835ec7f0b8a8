package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"

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
	Allowed []string // URL prefixes devices may register
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
	if !strings.HasPrefix(url, "https://") && !strings.HasPrefix(url, "http://") {
		return false
	}
	for _, p := range w.Allowed {
		if p != "" && strings.HasPrefix(url, p) {
			return true
		}
	}
	return false
}

// Send implements Provider. 404 and 410 mean the endpoint is gone.
func (w *Webhook) Send(ctx context.Context, d store.PushDevice, m Message) error {
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
