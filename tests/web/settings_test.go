package web

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestWebSettings: the settings page (name, photo, last seen, block list),
// browser notifications and Web Push (settings.mjs). Not parallel: it sets
// SSL_CERT_FILE for the server, so that the gateway trusts the test's
// loopback HTTPS push endpoint, and passes the subscription to the script
// in the environment.
func TestWebSettings(t *testing.T) {
	need(t)
	// The push service: a loopback HTTPS server recording what it is sent.
	type post struct {
		hdr  http.Header
		body []byte
		path string
	}
	var mu sync.Mutex
	var posts []post
	ps := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/count" {
			mu.Lock()
			fmt.Fprint(w, len(posts))
			mu.Unlock()
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		posts = append(posts, post{r.Header.Clone(), b, r.URL.Path})
		mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	defer ps.Close()
	ca := filepath.Join(t.TempDir(), "push-ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ps.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SSL_CERT_FILE", ca)

	// Carol's browser's subscription keys (RFC 8291 user agent side).
	ua, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	b64 := base64.RawURLEncoding
	sub, _ := json.Marshal(map[string]string{
		"endpoint": ps.URL + "/push/carol-browser",
		"count":    ps.URL + "/count",
		"p256dh":   b64.EncodeToString(ua.PublicKey().Bytes()),
		"auth":     b64.EncodeToString(auth),
	})
	t.Setenv("BLUETICK_TEST_PUSH", string(sub))
	// The scenario's fetch of /count must trust the test's certificate too.
	t.Setenv("NODE_EXTRA_CA_CERTS", ca)

	cfgPath := filepath.Join(t.TempDir(), "bluetick.toml")
	os.WriteFile(cfgPath, []byte(`
[push]
enabled = true
min_interval = "0s"
allow_private = ["127.0.0.1"]   # the test's push endpoint listens on loopback
[push.webpush]
enabled = true
`), 0o600)
	fs := run(t, "settings", []string{"--config", cfgPath}, "alice", "bob", "carol")

	p := fs.get(t, "profile")
	if p.num("own_width") != 192 {
		t.Errorf("alice's own photo in Settings: %s, want 192 px wide", p)
	}
	if h, _ := p["header"].(map[string]any); h["w"] != 192.0 || h["h"] != 192.0 {
		t.Errorf("alice's photo in bob's chat header: %v, want 192×192", p["header"])
	}
	if p.str("name") != "Alice Liddell" {
		t.Errorf("alice's name in bob's chat header: %q", p.str("name"))
	}
	if c, _ := p["cached"].(map[string]any); c == nil || c["type"] != "image/png" || len(fmt.Sprint(c["id"])) != 40 || c["bytes"].(float64) <= 0 {
		t.Errorf("alice's photo in bob's IndexedDB: %v", p["cached"])
	}
	if v := fs.get(t, "last-seen").str("after_reload"); v != "nobody" {
		t.Errorf("last-seen setting after a reload: %q, want nobody", v)
	}
	b := fs.get(t, "block")
	if !slices.Equal(b.strs("list"), []string{"bob@localhost"}) {
		t.Errorf("block list after blocking bob: %q", b.strs("list"))
	}
	if tick := b.str("sender_tick"); tick != "sent" {
		t.Errorf("bob's message to alice while she blocked him: tick %q, want sent (✓, never delivered, as WhatsApp)", tick)
	}
	if txt := b.strs("texts"); slices.Contains(txt, "while you blocked me") || !slices.Contains(txt, "after the unblock") {
		t.Errorf("alice's chat with bob: %q, want the message sent while blocked absent and the next present", txt)
	}
	n := fs.get(t, "notifications")
	if n.str("push_state") != "unavailable" || !strings.Contains(n.str("push_message"), "push service") {
		t.Errorf("Web Push in a chromium with no push service: %s, want a clear message", n)
	}
	if w, _ := n["without_preview"].(map[string]any); w["title"] != "New message from bob" || w["body"] != "" {
		t.Errorf("notification without previews: %v", n["without_preview"])
	}
	if w, _ := n["with_preview"].(map[string]any); w["title"] != "New message from bob" || w["body"] != "see you at noon" {
		t.Errorf("notification with previews: %v", n["with_preview"])
	}
	c := fs.get(t, "push-cdp")
	if w, _ := c["notification"].(map[string]any); w["title"] != "New message" {
		t.Errorf("push through the DevTools protocol: %s", c)
	}
	if !slices.Contains(c.strs("posted"), "New message") {
		t.Errorf("the service worker did not tell the page: %s", c)
	}

	s := fs.get(t, "push-server")
	if s.str("state") != "on" {
		t.Fatalf("carol's Web Push registration: %s", s)
	}
	if s.str("key") == "" {
		t.Errorf("carol subscribed without the server's VAPID key: %s", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(posts) == 0 {
		t.Fatal("no push reached the endpoint")
	}
	got := posts[0]
	if got.path != "/push/carol-browser" || got.hdr.Get("Content-Encoding") != "aes128gcm" || got.hdr.Get("TTL") == "" {
		t.Errorf("push request: %s %v", got.path, got.hdr)
	}
	if a := got.hdr.Get("Authorization"); !strings.HasPrefix(a, "vapid t=") || !strings.Contains(a, "k="+strings.TrimRight(s.str("key"), "=")) {
		t.Errorf("push Authorization %q, want vapid with the key carol subscribed with (%s)", a, s.str("key"))
	}
	plain, err := decryptWebPush(ua, auth, got.body)
	if err != nil {
		t.Fatalf("decrypting the push: %v", err)
	}
	t.Logf("push payload: %s", plain)
	var pl map[string]any
	if err := json.Unmarshal(plain, &pl); err != nil || pl["node"] == nil {
		t.Errorf("push payload %q: %v", plain, err)
	}
	if strings.Contains(string(plain), "secret for carol") || strings.Contains(string(plain), "alice") {
		t.Errorf("push payload carries content: %s", plain)
	}
}

// decryptWebPush opens an RFC 8291 aes128gcm message for the subscription
// (the user agent's key and auth secret).
func decryptWebPush(ua *ecdh.PrivateKey, auth, body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("short body")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if len(body) < 21+idlen || rs < 18 {
		return nil, errors.New("bad header")
	}
	asPub, err := ecdh.P256().NewPublicKey(body[21 : 21+idlen])
	if err != nil {
		return nil, fmt.Errorf("sender key: %v", err)
	}
	ct := body[21+idlen:]
	shared, err := ua.ECDH(asPub)
	if err != nil {
		return nil, err
	}
	mac := func(key []byte, parts ...[]byte) []byte {
		m := hmac.New(sha256.New, key)
		for _, p := range parts {
			m.Write(p)
		}
		return m.Sum(nil)
	}
	prkKey := mac(auth, shared)
	info := slices.Concat([]byte("WebPush: info\x00"), ua.PublicKey().Bytes(), asPub.Bytes())
	ikm := mac(prkKey, info, []byte{1})
	prk := mac(salt, ikm)
	cek := mac(prk, []byte("Content-Encoding: aes128gcm\x00"), []byte{1})[:16]
	nonce := mac(prk, []byte("Content-Encoding: nonce\x00"), []byte{1})[:12]
	blk, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(blk)
	pt, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, err
	}
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 || pt[i] != 2 {
		return nil, errors.New("no final record delimiter")
	}
	return pt[:i], nil
}
