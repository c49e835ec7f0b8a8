package webapp

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, path string, hdr ...string) *http.Response {
	t.Helper()
	req := httptest.NewRequest("GET", path, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Result()
}

func body(t *testing.T, r *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestIndexAndHeaders(t *testing.T) {
	h := Handler(Options{Domain: "example.org"})
	r := get(t, h, "/")
	if r.StatusCode != 200 {
		t.Fatalf("GET /: %s", r.Status)
	}
	b := body(t, r)
	if !strings.Contains(b, `<div id="app">`) || !strings.Contains(b, `<script type="module" src="/app-`) {
		t.Fatalf("GET / is not the app's index.html:\n%s", b)
	}
	if strings.Contains(b, "<script>") {
		t.Error("index.html has an inline script")
	}
	csp := r.Header.Get("Content-Security-Policy")
	for _, want := range []string{"script-src 'self'", "object-src 'none'", "frame-ancestors 'none'", "default-src 'self'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP allows inline or eval: %q", csp)
	}
	for k, v := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-cache",
	} {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

// TestAssets: every file index.html names is served with its type, the
// hashed bundle cached for long, gzip when accepted.
func TestAssets(t *testing.T) {
	h := Handler(Options{})
	idx := body(t, get(t, h, "/"))
	i := strings.Index(idx, `src="/app-`) + len(`src="`)
	j := strings.Index(idx[i:], `"`)
	js := idx[i : i+j]
	r := get(t, h, js)
	if r.StatusCode != 200 || r.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
		t.Fatalf("GET %s: %s %q", js, r.Status, r.Header.Get("Content-Type"))
	}
	if cc := r.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Errorf("%s Cache-Control = %q", js, cc)
	}
	plain := body(t, r)
	r = get(t, h, js, "Accept-Encoding", "br, gzip")
	if r.Header.Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip for Accept-Encoding: gzip")
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	unz, _ := io.ReadAll(zr)
	if !bytes.Equal(unz, []byte(plain)) {
		t.Error("the gzip copy differs from the file")
	}
	for path, ctype := range map[string]string{
		"/sw.js":                "text/javascript; charset=utf-8",
		"/manifest.webmanifest": "application/manifest+json",
		"/icon-192.png":         "image/png",
		"/config.json":          "application/json",
	} {
		r := get(t, h, path)
		if r.StatusCode != 200 || r.Header.Get("Content-Type") != ctype {
			t.Errorf("GET %s: %s %q, want 200 %q", path, r.Status, r.Header.Get("Content-Type"), ctype)
		}
	}
	if cc := get(t, h, "/sw.js").Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("sw.js Cache-Control = %q", cc)
	}
}

func TestNotFound(t *testing.T) {
	h := Handler(Options{})
	for _, p := range []string{"/nope.js", "/a/b", "/index.html.gz", "/../webapp.go", "/dist/index.html"} {
		if r := get(t, h, p); r.StatusCode != 404 {
			t.Errorf("GET %s: %s, want 404", p, r.Status)
		}
	}
	req := httptest.NewRequest("POST", "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d", rec.Code)
	}
}

func TestConfigJSON(t *testing.T) {
	b := body(t, get(t, Handler(Options{Domain: "chat.example.com"}), "/config.json"))
	if b != `{"domain":"chat.example.com"}` {
		t.Errorf("config.json = %s", b)
	}
}

func TestDirOverride(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("<p>dev build</p>"), 0o644)
	os.WriteFile(filepath.Join(dir, "x.css"), []byte("p{}"), 0o644)
	h := Handler(Options{Dir: dir})
	if b := body(t, get(t, h, "/")); b != "<p>dev build</p>" {
		t.Errorf("GET / with Dir = %q", b)
	}
	if r := get(t, h, "/x.css"); r.Header.Get("Content-Type") != "text/css; charset=utf-8" || r.Header.Get("Content-Encoding") != "" {
		t.Errorf("GET /x.css: %q %q", r.Header.Get("Content-Type"), r.Header.Get("Content-Encoding"))
	}
	if r := get(t, h, "/sw.js"); r.StatusCode != 404 {
		t.Errorf("GET /sw.js with Dir (absent there): %s", r.Status)
	}
}
