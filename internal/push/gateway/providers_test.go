package gateway

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/store"
)

// parseJWT splits a compact JWS and returns header, claims and the
// signature input and bytes.
func parseJWT(t *testing.T, tok string) (hdr, claims map[string]any, signed, sig []byte) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("JWT %q has %d parts", tok, len(parts))
	}
	dec := func(s string) []byte {
		b, err := b64.DecodeString(s)
		if err != nil {
			t.Fatalf("JWT part %q: %v", s, err)
		}
		return b
	}
	if err := json.Unmarshal(dec(parts[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(dec(parts[1]), &claims); err != nil {
		t.Fatal(err)
	}
	return hdr, claims, []byte(parts[0] + "." + parts[1]), dec(parts[2])
}

func verifyES256(t *testing.T, pub *ecdsa.PublicKey, signed, sig []byte) {
	t.Helper()
	if len(sig) != 64 {
		t.Fatalf("ES256 signature is %d bytes, want 64 (r||s)", len(sig))
	}
	sum := sha256.Sum256(signed)
	if !ecdsa.Verify(pub, sum[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		t.Fatal("ES256 signature does not verify")
	}
}

var dev = store.PushDevice{Node: "n1", Owner: "alice", DeviceID: "phone", Token: "tok123"}

// --- webhook ----------------------------------------------------------------

func TestWebhookSignedJSON(t *testing.T) {
	secret := []byte("hook-secret")
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("Content-Type %q", r.Header.Get("Content-Type"))
		}
		if sig := r.Header.Get(SignatureHeader); sig != Sign(secret, body) {
			t.Errorf("signature %q does not match the body", sig)
		}
		got.Store(body)
		if strings.HasSuffix(r.URL.Path, "/gone") {
			w.WriteHeader(http.StatusGone)
		}
	}))
	defer srv.Close()
	wh := &Webhook{Secret: secret, Allowed: []string{srv.URL + "/"}, Client: NewHTTPClient()}
	d := dev
	d.Token = srv.URL + "/hook"
	if err := wh.Send(t.Context(), d, Message{Node: "n1", Count: 2}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	json.Unmarshal(got.Load().([]byte), &m)
	if m["node"] != "n1" || m["count"] != float64(2) || m["device_id"] != "phone" || m["body"] != nil || m["sender"] != nil {
		t.Fatalf("payload %v", m)
	}
	d.Token = srv.URL + "/gone"
	if err := wh.Send(t.Context(), d, Message{Node: "n1"}); !errors.Is(err, ErrUnregistered) {
		t.Fatalf("410: err %v, want ErrUnregistered", err)
	}
	if wh.Allows("http://elsewhere.example/") || wh.Allows("file:///etc/passwd") || !wh.Allows(srv.URL+"/x") {
		t.Fatal("Allows does not follow the allowed prefixes")
	}
}

// --- FCM ---------------------------------------------------------------------

type fakeGoogle struct {
	t          *testing.T
	key        *rsa.PublicKey
	tokenURL   string
	tokens     atomic.Int32
	sends      atomic.Int32
	lastBody   atomic.Value
	answer     atomic.Int32 // HTTP status the send endpoint answers
	answerBody atomic.Value
	stale      atomic.Bool // the next wrong bearer token is expected (revoked)
}

func (g *fakeGoogle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	t := g.t
	switch {
	case r.URL.Path == "/token":
		r.ParseForm()
		if gt := r.PostForm.Get("grant_type"); gt != "urn:ietf:params:oauth:grant-type:jwt-bearer" {
			t.Errorf("grant_type %q", gt)
		}
		hdr, claims, signed, sig := parseJWT(t, r.PostForm.Get("assertion"))
		if hdr["alg"] != "RS256" || hdr["kid"] != "key-1" {
			t.Errorf("assertion header %v", hdr)
		}
		sum := sha256.Sum256(signed)
		if err := rsa.VerifyPKCS1v15(g.key, crypto.SHA256, sum[:], sig); err != nil {
			t.Errorf("assertion signature does not verify with the service account's public key: %v", err)
			http.Error(w, `{"error":"invalid_grant"}`, 400)
			return
		}
		iat, exp := int64(claims["iat"].(float64)), int64(claims["exp"].(float64))
		if claims["iss"] != "bluetick@proj.iam.gserviceaccount.com" || claims["aud"] != g.tokenURL || claims["scope"] != FCMScope ||
			exp-iat != 3600 || time.Since(time.Unix(iat, 0)) > time.Minute {
			t.Errorf("assertion claims %v", claims)
		}
		n := g.tokens.Add(1)
		json.NewEncoder(w).Encode(map[string]any{"access_token": "ya29.token-" + string(rune('0'+n)), "expires_in": 3599, "token_type": "Bearer"})
	case r.URL.Path == "/v1/projects/proj/messages:send":
		want := "Bearer ya29.token-" + string(rune('0'+g.tokens.Load()))
		if r.Header.Get("Authorization") != want {
			if !g.stale.Swap(false) {
				t.Errorf("Authorization %q, want %q", r.Header.Get("Authorization"), want)
			}
			w.WriteHeader(401)
			return
		}
		b, _ := io.ReadAll(r.Body)
		g.lastBody.Store(b)
		g.sends.Add(1)
		if st := g.answer.Load(); st != 0 && st != 200 {
			w.WriteHeader(int(st))
			io.WriteString(w, g.answerBody.Load().(string))
			return
		}
		io.WriteString(w, `{"name":"projects/proj/messages/0:1"}`)
	default:
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
		w.WriteHeader(404)
	}
}

func newFCM(t *testing.T) (*FCM, *fakeGoogle) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	g := &fakeGoogle{t: t, key: &key.PublicKey}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	g.tokenURL = srv.URL + "/token"
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	sa, _ := json.Marshal(map[string]string{
		"type": "service_account", "project_id": "proj", "private_key_id": "key-1",
		"private_key":  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})),
		"client_email": "bluetick@proj.iam.gserviceaccount.com", "token_uri": g.tokenURL,
	})
	path := filepath.Join(t.TempDir(), "sa.json")
	os.WriteFile(path, sa, 0o600)
	f, err := LoadFCM(path, "", srv.URL, "", NewHTTPClient())
	if err != nil {
		t.Fatal(err)
	}
	return f, g
}

func TestFCMAuthAndSend(t *testing.T) {
	f, g := newFCM(t)
	for range 2 {
		if err := f.Send(t.Context(), dev, Message{Node: "n1", Count: 1}); err != nil {
			t.Fatal(err)
		}
	}
	if n := g.tokens.Load(); n != 1 {
		t.Errorf("token endpoint asked %d times for two sends, want 1 (cached)", n)
	}
	var body struct {
		Message struct {
			Token   string            `json:"token"`
			Data    map[string]string `json:"data"`
			Android struct {
				Priority string `json:"priority"`
			} `json:"android"`
		} `json:"message"`
	}
	json.Unmarshal(g.lastBody.Load().([]byte), &body)
	if body.Message.Token != "tok123" || body.Message.Data["node"] != "n1" || body.Message.Data["count"] != "1" ||
		body.Message.Android.Priority != "HIGH" || body.Message.Data["body"] != "" {
		t.Fatalf("send body %s", g.lastBody.Load())
	}
	// An expired cached token is replaced.
	f.mu.Lock()
	f.expires = time.Now().Add(-time.Second)
	f.mu.Unlock()
	if err := f.Send(t.Context(), dev, Message{Node: "n1"}); err != nil || g.tokens.Load() != 2 {
		t.Fatalf("after expiry: err %v, tokens %d", err, g.tokens.Load())
	}
}

func TestFCMUnregistered(t *testing.T) {
	f, g := newFCM(t)
	g.answer.Store(404)
	g.answerBody.Store(`{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND","details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}`)
	if err := f.Send(t.Context(), dev, Message{Node: "n1"}); !errors.Is(err, ErrUnregistered) {
		t.Fatalf("err %v, want ErrUnregistered", err)
	}
	g.answer.Store(503)
	g.answerBody.Store(`{"error":{"code":503,"status":"UNAVAILABLE"}}`)
	err := f.Send(t.Context(), dev, Message{Node: "n1"})
	var he *HTTPError
	if !errors.As(err, &he) || !he.Temporary() || !retryable(err) {
		t.Fatalf("503: err %v, want a temporary HTTPError", err)
	}
}

// --- APNs ----------------------------------------------------------------------

func TestAPNsHTTP2AndJWT(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var calls atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.ProtoMajor != 2 {
			t.Errorf("request over %s, APNs needs HTTP/2", r.Proto)
		}
		auth := r.Header.Get("authorization")
		if !strings.HasPrefix(auth, "bearer ") {
			t.Fatalf("authorization %q", auth)
		}
		hdr, claims, signed, sig := parseJWT(t, strings.TrimPrefix(auth, "bearer "))
		if hdr["alg"] != "ES256" || hdr["kid"] != "KEYID12345" || claims["iss"] != "TEAMID1234" || claims["iat"] == nil {
			t.Errorf("provider token header %v claims %v", hdr, claims)
		}
		verifyES256(t, &key.PublicKey, signed, sig)
		if r.Header.Get("apns-topic") != "org.example.app" || r.Header.Get("apns-push-type") != "alert" || r.Header.Get("apns-priority") != "10" {
			t.Errorf("headers %v", r.Header)
		}
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		aps, _ := body["aps"].(map[string]any)
		if aps == nil || aps["mutable-content"] != float64(1) || body["node"] != "n1" {
			t.Errorf("body %v", body)
		}
		if alert, _ := aps["alert"].(map[string]any); alert["title"] != nil {
			t.Errorf("alert shows a sender by default: %v", alert)
		}
		switch r.URL.Path {
		case "/3/device/good":
			w.Header().Set("apns-id", "x")
		case "/3/device/gone":
			w.WriteHeader(410)
			io.WriteString(w, `{"reason":"Unregistered","timestamp":1700000000000}`)
		case "/3/device/bad":
			w.WriteHeader(400)
			io.WriteString(w, `{"reason":"BadDeviceToken"}`)
		default:
			t.Errorf("path %s", r.URL.Path)
		}
	}))
	srv.EnableHTTP2 = true
	srv.StartTLS()
	defer srv.Close()
	a := &APNs{Endpoint: srv.URL, Topic: "org.example.app", KeyID: "KEYID12345", TeamID: "TEAMID1234", Key: key, PushType: "alert", Client: srv.Client()}
	d := dev
	d.Token = "good"
	if err := a.Send(t.Context(), d, Message{Node: "n1", Count: 1}); err != nil {
		t.Fatal(err)
	}
	first := a.jwt
	if err := a.Send(t.Context(), d, Message{Node: "n1"}); err != nil || a.jwt != first {
		t.Fatalf("second send: %v; provider token reused: %v", err, a.jwt == first)
	}
	for _, tok := range []string{"gone", "bad"} {
		d.Token = tok
		if err := a.Send(t.Context(), d, Message{Node: "n1"}); !errors.Is(err, ErrUnregistered) {
			t.Errorf("%s: err %v, want ErrUnregistered", tok, err)
		}
	}
	if calls.Load() != 4 {
		t.Fatalf("%d requests", calls.Load())
	}
}

func TestAPNsKeyFile(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	path := filepath.Join(t.TempDir(), "AuthKey.p8")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	k, err := LoadAPNsKey(path)
	if err != nil || !k.Equal(key) {
		t.Fatalf("LoadAPNsKey: %v", err)
	}
	os.WriteFile(path, []byte("garbage"), 0o600)
	if _, err := LoadAPNsKey(path); err == nil {
		t.Fatal("garbage key accepted")
	}
}

// --- Web Push ------------------------------------------------------------------

func unb64(t *testing.T, s string) []byte {
	b, err := b64.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestEncryptRFC8291Vector: with the keys and salt of RFC 8291 Appendix A,
// encrypt produces the RFC's body byte for byte.
func TestEncryptRFC8291Vector(t *testing.T) {
	as, err := ecdh.P256().NewPrivateKey(unb64(t, "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"))
	if err != nil {
		t.Fatal(err)
	}
	ua, err := ecdh.P256().NewPublicKey(unb64(t, "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := encrypt([]byte("When I grow up, I want to be a watermelon"), ua, as,
		unb64(t, "BTBZMqHH6r4Tts7J_aSIgg"), unb64(t, "DGv6ra1nlYgDCS1FRnbzlw"))
	if err != nil {
		t.Fatal(err)
	}
	want := unb64(t, "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN")
	if !bytes.Equal(got, want) {
		t.Fatalf("RFC 8291 vector:\n got %x\nwant %x", got, want)
	}
	uaPriv, _ := ecdh.P256().NewPrivateKey(unb64(t, "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"))
	pt, err := Decrypt(want, uaPriv, unb64(t, "BTBZMqHH6r4Tts7J_aSIgg"))
	if err != nil || string(pt) != "When I grow up, I want to be a watermelon" {
		t.Fatalf("Decrypt of the RFC body: %q, %v", pt, err)
	}
}

func TestWebPushSend(t *testing.T) {
	vapid, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	rand.Read(auth)
	var plain atomic.Value
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" || r.Header.Get("Urgency") != "high" {
			t.Errorf("headers %v", r.Header)
		}
		// RFC 8292: Authorization: vapid t=<JWT>, k=<public key>.
		a := r.Header.Get("Authorization")
		var tok, k string
		for _, p := range strings.Split(strings.TrimPrefix(a, "vapid "), ",") {
			p = strings.TrimSpace(p)
			if v, ok := strings.CutPrefix(p, "t="); ok {
				tok = v
			}
			if v, ok := strings.CutPrefix(p, "k="); ok {
				k = v
			}
		}
		if !strings.HasPrefix(a, "vapid ") || tok == "" || k == "" {
			t.Fatalf("Authorization %q", a)
		}
		x, y := elliptic.Unmarshal(elliptic.P256(), unb64(t, k))
		if x == nil {
			t.Fatal("k is not an uncompressed P-256 point")
		}
		hdr, claims, signed, sig := parseJWT(t, tok)
		verifyES256(t, &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, signed, sig)
		u, _ := url.Parse("https://" + r.Host)
		exp := time.Unix(int64(claims["exp"].(float64)), 0)
		if hdr["alg"] != "ES256" || claims["aud"] != u.Scheme+"://"+u.Host || claims["sub"] != "mailto:ops@example.org" ||
			exp.Before(time.Now()) || exp.After(time.Now().Add(24*time.Hour)) {
			t.Errorf("VAPID JWT header %v claims %v", hdr, claims)
		}
		body, _ := io.ReadAll(r.Body)
		pt, err := Decrypt(body, ua, auth)
		if err != nil {
			t.Errorf("subscriber cannot decrypt: %v", err)
		}
		plain.Store(pt)
		if r.URL.Path == "/expired" {
			w.WriteHeader(http.StatusGone)
			return
		}
		w.WriteHeader(http.StatusCreated)
	}))
	defer srv.Close()
	wp := &WebPush{Key: vapid, Subject: "mailto:ops@example.org", Client: srv.Client()}
	d := store.PushDevice{Node: "n1", Owner: "alice", Provider: "webpush", Token: srv.URL + "/sub/1", P256DH: ua.PublicKey().Bytes(), Auth: auth}
	if err := wp.Send(context.Background(), d, Message{Node: "n1", Count: 3}); err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(plain.Load().([]byte), &m); err != nil || m["node"] != "n1" || m["count"] != float64(3) {
		t.Fatalf("decrypted payload %s (%v)", plain.Load(), err)
	}
	d.Token = srv.URL + "/expired"
	if err := wp.Send(context.Background(), d, Message{Node: "n1"}); !errors.Is(err, ErrUnregistered) {
		t.Fatalf("410: %v, want ErrUnregistered", err)
	}
}

func TestVAPIDKeyKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "vapid.pem")
	k1, err := LoadVAPIDKey(path)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadVAPIDKey(path)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load: %v, same key %v", err, k1.Equal(k2))
	}
}

// TestWebPushRefusesPrivateAddresses: an endpoint a client registered
// must not point the server at its own networks; the send is refused
// before any connection, as final for this push (not retried) and not as
// the provider's "unregistered".
func TestWebPushRefusesPrivateAddresses(t *testing.T) {
	var hit atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hit.Store(true) }))
	defer srv.Close()
	vapid, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	guard, _ := NewGuard(nil)
	wp := &WebPush{Key: vapid, Subject: "mailto:a@b", Client: guard.HTTPClient()}
	d := store.PushDevice{Token: "https" + strings.TrimPrefix(srv.URL, "http") + "/x", P256DH: ua.PublicKey().Bytes(), Auth: make([]byte, 16)}
	err := wp.Send(t.Context(), d, Message{Node: "n"})
	if re, ok := isRefused(err); !ok || re.Reason != "loopback" || retryable(err) || errors.Is(err, ErrUnregistered) || hit.Load() {
		t.Fatalf("loopback endpoint: err %v, reached %v", err, hit.Load())
	}
	for _, a := range []string{"10.1.2.3", "192.168.0.1", "169.254.169.254", "::1", "fd00::1", "100.64.0.1"} {
		if classify(netip.MustParseAddr(a)) == "" {
			t.Errorf("%s counted as public", a)
		}
	}
	if classify(netip.MustParseAddr("8.8.8.8")) != "" {
		t.Error("8.8.8.8 not public")
	}
}

// TestFCMTokenRevoked: a 401 from the send endpoint (token revoked early)
// fetches a new access token once and retries.
func TestFCMTokenRevoked(t *testing.T) {
	f, g := newFCM(t)
	if err := f.Send(t.Context(), dev, Message{Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	// The endpoint now expects token 2 while the cache still holds token 1.
	g.tokens.Add(1)
	g.stale.Store(true)
	if err := f.Send(t.Context(), dev, Message{Node: "n1"}); err != nil {
		t.Fatalf("after a revoked token: %v", err)
	}
	if n := g.tokens.Load(); n != 3 {
		t.Fatalf("token endpoint count %d, want one more fetch", n)
	}
}

// TestFromConfig builds the providers a [push] section configures and
// reports a broken key file by its config key.
func TestFromConfig(t *testing.T) {
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.Push.Enabled = true
	cfg.Push.WebPush.Enabled = true
	cfg.Push.Webhook = config.PushWebhook{Secret: "s", AllowedURLs: "https://a.example/, https://b.example/"}
	g, err := FromConfig(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if g.providers["webpush"] == nil || g.providers["fcm"] != nil || g.JID().String() != "push.localhost" {
		t.Fatalf("providers %v", g.providers)
	}
	if wh := g.providers["webhook"].(*Webhook); len(wh.Allowed) != 2 || !wh.Allows("https://b.example/x") {
		t.Fatalf("webhook allowed %v", wh.Allowed)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "vapid.pem")); err != nil {
		t.Fatalf("VAPID key not saved: %v", err)
	}
	// An allowed URL on a private address needs push.allow_private, or no
	// device could ever register under it: a startup error naming both keys.
	for _, a := range []string{"http://127.0.0.1:42105", "http://localhost/", "http://[::1]/", "http://127.1/", "http://10.0.0.1/"} {
		cfg.Push.Webhook.AllowedURLs = a
		if _, err := FromConfig(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "push.webhook.allowed_urls") || !strings.Contains(err.Error(), "push.allow_private") && !strings.Contains(err.Error(), "standard form") {
			t.Errorf("allowed_urls %s without allow_private: %v", a, err)
		}
	}
	for _, a := range []string{"ftp://x/", "http://u@x/", "http://x/#f", "http://x/?q=1", "/relative"} {
		cfg.Push.Webhook.AllowedURLs = a
		if _, err := FromConfig(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "push.webhook.allowed_urls") {
			t.Errorf("allowed_urls %s: %v", a, err)
		}
	}
	cfg.Push.Webhook.AllowedURLs = "http://127.0.0.1:42105, http://[::1]/"
	cfg.Push.AllowPrivate = []string{"127.0.0.0/8", "::1"}
	g, err = FromConfig(cfg, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("allowed by allow_private: %v", err)
	}
	if wh := g.providers["webhook"].(*Webhook); wh.Allows("http://127.0.0.1:42105@127.0.0.1:42444/pwn") || !wh.Allows("http://127.0.0.1:42105/x") {
		t.Fatal("allowed_urls compared as strings")
	}
	cfg.Push.AllowPrivate = []string{"10.0.0.0/40"}
	if _, err := FromConfig(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "push.allow_private") {
		t.Fatalf("bad allow_private: %v", err)
	}
	cfg.Push.AllowPrivate = nil
	cfg.Push.Webhook = config.PushWebhook{}
	cfg.Push.FCM.ServiceAccountFile = filepath.Join(cfg.DataDir, "missing.json")
	if _, err := FromConfig(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "push.fcm.service_account_file") {
		t.Fatalf("missing service account file: %v", err)
	}
	cfg.Push.FCM.ServiceAccountFile = ""
	cfg.Push.APNs = config.PushAPNs{KeyFile: filepath.Join(cfg.DataDir, "vapid.pem") + ".nope", KeyID: "k", TeamID: "t", Topic: "x", PushType: "alert"}
	if _, err := FromConfig(cfg, nil, nil); err == nil || !strings.Contains(err.Error(), "push.apns.key_file") {
		t.Fatalf("missing APNs key: %v", err)
	}
}
