package gateway

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"bluetick/internal/store"
)

// APNs sends through the Apple Push Notification service's HTTP/2 API
// (POST {endpoint}/3/device/<token>) with token-based authentication: an
// ES256 JWT signed with the team's .p8 key (header kid = key id, claims
// iss = team id, iat), reused for 50 minutes (Apple refuses tokens older
// than an hour and too frequent renewals).
type APNs struct {
	Endpoint string // https://api.push.apple.com
	Topic    string // bundle id
	KeyID    string
	TeamID   string
	Key      *ecdsa.PrivateKey
	PushType string // alert or background
	Client   *http.Client

	mu     sync.Mutex
	jwt    string
	issued time.Time
}

// apnsTokenLife is how long a provider token is reused.
const apnsTokenLife = 50 * time.Minute

// LoadAPNsKey reads a .p8 key (PKCS#8 PEM, P-256).
func LoadAPNsKey(path string) (*ecdsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("push.apns.key_file: %v", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("push.apns.key_file %s: not a PEM .p8 key", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	ek, ok := k.(*ecdsa.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("push.apns.key_file %s: not an ECDSA P-256 key", path)
	}
	return ek, nil
}

func (a *APNs) token() (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.jwt != "" && time.Since(a.issued) < apnsTokenLife {
		return a.jwt, nil
	}
	now := time.Now()
	t, err := signJWT(a.Key, a.KeyID, map[string]any{"iss": a.TeamID, "iat": now.Unix()})
	if err != nil {
		return "", err
	}
	a.jwt, a.issued = t, now
	return t, nil
}

// Send implements Provider. Apple answers 410 Unregistered for a token
// whose app is gone and 400 BadDeviceToken for one that never was valid
// for this topic and environment: both remove the device.
func (a *APNs) Send(ctx context.Context, d store.PushDevice, m Message) error {
	if d.Token == "" || strings.ContainsAny(d.Token, "/?#") {
		return fmt.Errorf("apns: bad device token: %w", errPermanent)
	}
	var body map[string]any
	prio := "10"
	if a.PushType == "background" {
		body = map[string]any{"aps": map[string]any{"content-available": 1}}
		prio = "5"
	} else {
		text := "New message"
		if m.Count > 1 {
			text = fmt.Sprintf("%d new messages", m.Count)
		}
		if m.Body != "" {
			text = m.Body
		}
		alert := map[string]any{"body": text}
		if m.Sender != "" {
			alert["title"] = m.Sender
		}
		// mutable-content lets the app's notification service extension
		// fetch and decrypt the real message before it is shown.
		body = map[string]any{"aps": map[string]any{"alert": alert, "mutable-content": 1, "sound": "default"}}
	}
	body["node"] = m.Node
	if m.Count > 0 {
		body["count"] = m.Count
	}
	b, _ := json.Marshal(body)
	tok, err := a.token()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.Endpoint, "/")+"/3/device/"+d.Token, bytes.NewReader(b))
	if err != nil {
		return err
	}
	req.Header.Set("authorization", "bearer "+tok)
	req.Header.Set("apns-topic", a.Topic)
	req.Header.Set("apns-push-type", a.PushType)
	req.Header.Set("apns-priority", prio)
	req.Header.Set("content-type", "application/json")
	resp, err := a.Client.Do(req)
	if err != nil {
		return err
	}
	defer drain(resp)
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	he := httpError("apns", resp)
	var reason struct {
		Reason string `json:"reason"`
	}
	json.Unmarshal([]byte(he.body), &reason)
	if reason.Reason != "" {
		he.Reason = reason.Reason
	}
	switch {
	case resp.StatusCode == http.StatusGone, reason.Reason == "Unregistered", reason.Reason == "BadDeviceToken":
		return ErrUnregistered
	case resp.StatusCode == http.StatusForbidden && reason.Reason == "ExpiredProviderToken":
		a.mu.Lock()
		a.jwt = ""
		a.mu.Unlock()
		he.Status = http.StatusServiceUnavailable // retry with a fresh token
	}
	return he
}
