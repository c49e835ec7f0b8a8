package webapp

import (
	"strings"
	"testing"
)

// The upload service's origin (S3, a media domain) is allowed for images,
// media and connections, and only there; a same-origin or absent upload
// URL keeps the strict policy.
func TestCSPUploadOrigin(t *testing.T) {
	h := Handler(Options{Domain: "example.org", UploadURL: "https://media.example.com:8443/bucket/prefix"})
	csp := get(t, h, "/").Header.Get("Content-Security-Policy")
	const o = "https://media.example.com:8443"
	for _, want := range []string{
		"img-src 'self' blob: data: " + o + ";",
		"media-src 'self' blob: " + o + ";",
		"connect-src 'self' " + o + ";",
		"script-src 'self';",
		"default-src 'self';",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Count(csp, o) != 3 || strings.Contains(csp, "/bucket") {
		t.Errorf("CSP %q: the origin must appear in exactly img, media and connect, without the path", csp)
	}
	for _, u := range []string{"", "not a url", "ftp://x.example", "/upload", "https://a.example;script-src *"} {
		if got := CSPFor(u); got != CSP {
			t.Errorf("CSPFor(%q) = %q, want the strict CSP", u, got)
		}
	}
	if got := get(t, Handler(Options{}), "/").Header.Get("Content-Security-Policy"); got != CSP {
		t.Errorf("no upload URL: %q", got)
	}
}
