package gateway

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"bluetick/internal/store"
)

// FCM sends through Firebase Cloud Messaging HTTP v1
// (POST {endpoint}/v1/projects/{project}/messages:send), authenticated as
// a Google service account: an RS256-signed JWT assertion is exchanged at
// the token endpoint for an access token (RFC 7523,
// urn:ietf:params:oauth:grant-type:jwt-bearer), cached until shortly before
// it expires.
type FCM struct {
	Project  string
	Endpoint string // https://fcm.googleapis.com
	TokenURL string
	Email    string
	KeyID    string
	Key      *rsa.PrivateKey
	Client   *http.Client

	mu      sync.Mutex
	token   string
	expires time.Time
}

// FCMScope is the OAuth2 scope of the FCM send API.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// serviceAccount is the JSON key file Google hands out.
type serviceAccount struct {
	Type         string `json:"type"`
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

// LoadFCM reads a service account file; project and tokenURL override the
// file's when not empty.
func LoadFCM(path, project, endpoint, tokenURL string, client *http.Client) (*FCM, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("push.fcm.service_account_file: %v", err)
	}
	var sa serviceAccount
	if err := json.Unmarshal(b, &sa); err != nil {
		return nil, fmt.Errorf("push.fcm.service_account_file %s: not a service account JSON key: %v", path, err)
	}
	if sa.Type != "service_account" || sa.ClientEmail == "" || sa.PrivateKey == "" {
		return nil, fmt.Errorf("push.fcm.service_account_file %s: not a service account key (type %q)", path, sa.Type)
	}
	blk, _ := pem.Decode([]byte(sa.PrivateKey))
	if blk == nil {
		return nil, fmt.Errorf("push.fcm.service_account_file %s: private_key is not PEM", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		if k1, err1 := x509.ParsePKCS1PrivateKey(blk.Bytes); err1 == nil {
			k, err = k1, nil
		}
	}
	rk, ok := k.(*rsa.PrivateKey)
	if err != nil || !ok {
		return nil, fmt.Errorf("push.fcm.service_account_file %s: private_key is not an RSA key", path)
	}
	f := &FCM{Project: sa.ProjectID, Endpoint: endpoint, TokenURL: sa.TokenURI, Email: sa.ClientEmail, KeyID: sa.PrivateKeyID, Key: rk, Client: client}
	if project != "" {
		f.Project = project
	}
	if tokenURL != "" {
		f.TokenURL = tokenURL
	}
	if f.Project == "" || f.TokenURL == "" {
		return nil, fmt.Errorf("push.fcm.service_account_file %s: no project_id or token_uri (set push.fcm.project_id / token_url)", path)
	}
	if f.Endpoint == "" {
		f.Endpoint = "https://fcm.googleapis.com"
	}
	return f, nil
}

// accessToken returns a cached OAuth2 token or fetches a new one.
func (f *FCM) accessToken(ctx context.Context) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.token != "" && time.Now().Before(f.expires) {
		return f.token, nil
	}
	now := time.Now()
	assertion, err := signJWT(f.Key, f.KeyID, map[string]any{
		"iss": f.Email, "scope": FCMScope, "aud": f.TokenURL,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	})
	if err != nil {
		return "", err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := f.Client.Do(req)
	if err != nil {
		return "", err
	}
	defer drain(resp)
	if resp.StatusCode != http.StatusOK {
		return "", httpError("fcm token endpoint", resp)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", fmt.Errorf("fcm token endpoint: bad answer: %v", err)
	}
	if tok.ExpiresIn <= 0 {
		tok.ExpiresIn = 3600
	}
	f.token = tok.AccessToken
	// Renew a minute early, so a token never expires in flight.
	f.expires = now.Add(time.Duration(tok.ExpiresIn)*time.Second - time.Minute)
	return f.token, nil
}

func (f *FCM) dropToken(tok string) {
	f.mu.Lock()
	if f.token == tok {
		f.token = ""
	}
	f.mu.Unlock()
}

// Send implements Provider: a high-priority data message (the app wakes
// and fetches from the server; nothing is shown by FCM itself).
func (f *FCM) Send(ctx context.Context, d store.PushDevice, m Message) error {
	data := map[string]string{"node": m.Node}
	if m.Count > 0 {
		data["count"] = strconv.Itoa(m.Count)
	}
	if m.Sender != "" {
		data["sender"] = m.Sender
	}
	if m.Body != "" {
		data["body"] = m.Body
	}
	body, _ := json.Marshal(map[string]any{"message": map[string]any{
		"token":   d.Token,
		"data":    data,
		"android": map[string]any{"priority": "HIGH"},
	}})
	for attempt := 0; ; attempt++ {
		tok, err := f.accessToken(ctx)
		if err != nil {
			return err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost,
			strings.TrimRight(f.Endpoint, "/")+"/v1/projects/"+url.PathEscape(f.Project)+"/messages:send", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := f.Client.Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode == http.StatusOK {
			drain(resp)
			return nil
		}
		he := httpError("fcm", resp)
		drain(resp)
		if resp.StatusCode == http.StatusUnauthorized && attempt == 0 {
			f.dropToken(tok) // revoked or expired early: fetch a new one once
			continue
		}
		if fcmUnregistered(resp.StatusCode, he.body) {
			return ErrUnregistered
		}
		return he
	}
}

// fcmUnregistered recognises FCM's answer for a token that is no longer
// valid: 404 NOT_FOUND, or the UNREGISTERED error code (FCM v1 error
// reference).
func fcmUnregistered(status int, body string) bool {
	var e struct {
		Error struct {
			Status  string `json:"status"`
			Details []struct {
				ErrorCode string `json:"errorCode"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal([]byte(body), &e) != nil {
		return status == http.StatusNotFound
	}
	for _, d := range e.Error.Details {
		if d.ErrorCode == "UNREGISTERED" {
			return true
		}
	}
	return status == http.StatusNotFound || e.Error.Status == "NOT_FOUND"
}
