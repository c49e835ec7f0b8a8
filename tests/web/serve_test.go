package web

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// TestServe: `bluetick serve` serves the app at / (with its CSP) and keeps
// the XMPP endpoints; [web] enabled = false leaves / empty; [web] dir
// serves another directory. No browser needed.
func TestServe(t *testing.T) {
	if buildErr != nil {
		t.Fatalf("bluetick does not build: %v", buildErr)
	}
	config := func(toml string) []string {
		path := filepath.Join(t.TempDir(), "bluetick.toml")
		if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		return []string{"--config", path}
	}
	t.Run("default", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, nil)
		base := fmt.Sprintf("http://127.0.0.1:%d", s.http)
		r, b := httpGet(t, base+"/")
		if r.StatusCode != 200 || !strings.Contains(b, `<div id="app">`) || !strings.Contains(r.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("GET /: %s, CSP %q", r.Status, r.Header.Get("Content-Security-Policy"))
		}
		if r, b := httpGet(t, base+"/.well-known/host-meta.json"); r.StatusCode != 200 || !strings.Contains(b, "/xmpp-websocket") {
			t.Errorf("host-meta.json: %s %s", r.Status, b)
		}
		if r, _ := httpGet(t, base+"/healthz"); r.StatusCode != 200 {
			t.Errorf("/healthz: %s", r.Status)
		}
		if r, b := httpGet(t, base+"/config.json"); r.StatusCode != 200 || b != `{"domain":"localhost"}` {
			t.Errorf("/config.json: %s %s", r.Status, b)
		}
		if r, _ := httpGet(t, base+"/no/such/file"); r.StatusCode != 404 {
			t.Errorf("unknown path: %s", r.Status)
		}
	})
	t.Run("disabled", func(t *testing.T) {
		t.Parallel()
		s := startServer(t, config("[web]\nenabled = false\n"))
		base := fmt.Sprintf("http://127.0.0.1:%d", s.http)
		if r, b := httpGet(t, base+"/"); r.StatusCode != 404 || strings.Contains(b, "app") {
			t.Errorf("GET / with the app off: %s %q", r.Status, b)
		}
		if r, _ := httpGet(t, base+"/.well-known/host-meta.json"); r.StatusCode != 200 {
			t.Errorf("host-meta with the app off: %s", r.Status)
		}
	})
	t.Run("dir", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>my build</p>"), 0o644)
		s := startServer(t, config(fmt.Sprintf("[web]\ndir = %q\n", dir)))
		if r, b := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/", s.http)); r.StatusCode != 200 || b != "<p>my build</p>" {
			t.Errorf("GET / with web.dir: %s %q", r.Status, b)
		}
	})
}
