package interop

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
)

// 19. XEP-0357 push through the built-in gateway: slixmpp registers a
// webhook device with the XEP-0050 command, enables push and goes
// offline; a message to it reaches the local webhook, signed, without
// body or sender; after disable nothing is sent.
func testPush(t *testing.T) {
	const secret = "interop-webhook-secret"
	type hit struct {
		body []byte
		sig  string
	}
	var mu sync.Mutex
	var hits []hit
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/count" {
			mu.Lock()
			fmt.Fprint(w, len(hits))
			mu.Unlock()
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{b, r.Header.Get("X-Bluetick-Signature")})
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := fmt.Sprintf(`
[push]
enabled = true
min_interval = "0s"
allow_private = ["127.0.0.1"]   # the test's webhook listens on loopback
[push.webhook]
secret = %q
allowed_urls = "%s/"
`, secret, hook.URL)
	t.Run("inactive_and_hibernated", func(t *testing.T) {
		// Its own server: bob's hibernated session must not outlive it.
		s := startServerWith(t, cfg, "alice", "bob")
		evs := slix(t, s, "push_sleep", map[string]any{"url": hook.URL + "/sleepy", "count_url": hook.URL + "/count"}).finish(t)
		if e := one(t, evs, "enabled"); e["error"] != nil {
			t.Fatalf("enable failed: %s", e)
		}
		want := map[string]float64{"inactive": 1, "active": 1, "hibernated": 2}
		for _, e := range all(evs, "step") {
			if n, _ := e.num("hits"); n != want[e.str("name")] {
				t.Errorf("after the message %s: %v pushes in all, want %v", e.str("name"), n, want[e.str("name")])
			}
		}
		if len(all(evs, "step")) != 3 {
			t.Errorf("steps: %s", summary(evs))
		}
		mu.Lock()
		hits = nil
		mu.Unlock()
	})
	s := startServerWith(t, cfg, "alice", "bob")
	body1, body2 := "first secret text", "second secret text"
	evs := slix(t, s, "push", map[string]any{"url": hook.URL + "/bob", "body1": body1, "body2": body2}).finish(t)

	if f := one(t, evs, "account_disco").strs("features"); !slices.Contains(f, "urn:xmpp:push:0") {
		t.Errorf("account disco#info lacks urn:xmpp:push:0: %v", f)
	}
	if j := one(t, evs, "server_items").strs("jids"); !slices.Contains(j, "push."+domain) {
		t.Errorf("server disco#items lacks push.%s: %v", domain, j)
	}
	if n := one(t, evs, "commands").strs("nodes"); !slices.Contains(n, "register-push-webhook") || !slices.Contains(n, "unregister-push") {
		t.Errorf("gateway commands %v", n)
	}
	if f := one(t, evs, "command_form"); f.str("status") != "executing" || !slices.Contains(f.strs("fields"), "url") {
		t.Errorf("first stage of register-push-webhook: %s", f)
	}
	reg := one(t, evs, "registered")
	if reg.str("status") != "completed" || reg.str("node") == "" || !reg.boolean("has_secret") || reg.str("jid") != "push."+domain {
		t.Fatalf("registration: %s", reg)
	}
	if e := one(t, evs, "enable_foreign"); e.str("error") != "remote-server-not-found" {
		t.Errorf("enable with a foreign app server: %s, want remote-server-not-found", e)
	}
	if e := one(t, evs, "enabled"); e["error"] != nil {
		t.Fatalf("enable failed: %s", e)
	}
	if e := one(t, evs, "disabled"); e["error"] != nil {
		t.Fatalf("disable failed: %s", e)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(hits) != 1 {
		t.Fatalf("webhook got %d requests, want exactly 1 (one push while offline, none after disable)", len(hits))
	}
	h := hits[0]
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(h.body)
	if want := "sha256=" + hex.EncodeToString(m.Sum(nil)); h.sig != want {
		t.Errorf("X-Bluetick-Signature %q, want %q", h.sig, want)
	}
	var p map[string]any
	if err := json.Unmarshal(h.body, &p); err != nil {
		t.Fatalf("webhook body %q: %v", h.body, err)
	}
	if p["node"] != reg.str("node") || p["device_id"] != "interop-phone" || p["count"] != float64(1) {
		t.Errorf("webhook payload %s", h.body)
	}
	if strings.Contains(string(h.body), "secret text") || strings.Contains(string(h.body), "alice") || p["body"] != nil || p["sender"] != nil {
		t.Errorf("the push leaks the message or its sender: %s", h.body)
	}
}
