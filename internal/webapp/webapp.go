// Package webapp serves Bluetick Web, the browser client built from web/
// (npm run build writes dist/, which is committed and embedded here), at
// / on the HTTP listener. Files are served with their content type, a
// strict Content-Security-Policy (no inline script), gzip when the client
// accepts it (the build writes NAME.gz beside each text file), no-cache for
// index.html and sw.js and a year's cache for the hashed app-HASH.js/.css and chunk-HASH.js.
// docs/web.md describes the app.
package webapp

import (
	"bytes"
	"embed"
	"encoding/json"
	"io/fs"
	"mime"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"
)

//go:embed dist
var embedded embed.FS

// CSP forbids inline script and every origin but the app's own: message
// bodies, names and file names can never become code. Handler adds the
// upload service's origin (Options.UploadURL) to img-src, media-src and
// connect-src, so photos, voice notes and PUTs work when the files live
// elsewhere (S3, a media domain).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; " +
	"media-src 'self' blob:; connect-src 'self'; worker-src 'self'; manifest-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Options configure the handler.
type Options struct {
	// Dir serves the app from a directory instead of the embedded build.
	Dir string
	// Domain is the XMPP domain, told to the app by /config.json so a
	// user name alone signs in even when the page's host name differs.
	Domain string
	// UploadURL is the XEP-0363 service's public link prefix
	// (upload.base_url resolved); its origin is allowed for images, media
	// and connections (the PUT) in the CSP. Empty: same origin only.
	UploadURL string
}

// CSPFor is the policy with the upload origin of uploadURL (scheme://host
// [:port]) allowed for img-src, media-src and connect-src. An empty or
// unparsable URL, or one with a path-only or odd scheme, leaves CSP as is.
func CSPFor(uploadURL string) string {
	u, err := url.Parse(uploadURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		strings.ContainsAny(u.Host, " ;,'\"") {
		return CSP
	}
	origin := u.Scheme + "://" + u.Host
	csp := strings.Replace(CSP, "img-src 'self' blob: data:;", "img-src 'self' blob: data: "+origin+";", 1)
	csp = strings.Replace(csp, "media-src 'self' blob:;", "media-src 'self' blob: "+origin+";", 1)
	return strings.Replace(csp, "connect-src 'self';", "connect-src 'self' "+origin+";", 1)
}

// Handler serves the app. Unknown paths are 404 (the app routes in the
// URL fragment, so no path other than its files is ever asked for).
func Handler(o Options) http.Handler {
	var files fs.FS
	if o.Dir != "" {
		files = os.DirFS(o.Dir)
	} else {
		files, _ = fs.Sub(embedded, "dist")
	}
	cfg, _ := json.Marshal(map[string]string{"domain": o.Domain})
	return &handler{files: files, config: cfg, csp: CSPFor(o.UploadURL)}
}

type handler struct {
	files  fs.FS
	config []byte
	csp    string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", h.csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, "/")
	switch {
	case name == "":
		name = "index.html"
	case name == "config.json":
		hd.Set("Content-Type", "application/json")
		hd.Set("Cache-Control", "no-cache")
		w.Write(h.config)
		return
	case strings.Contains(name, "/") || strings.HasSuffix(name, ".gz") || !fs.ValidPath(name):
		http.NotFound(w, r)
		return
	}
	data, err := fs.ReadFile(h.files, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js", ".mjs":
		ctype = "text/javascript; charset=utf-8"
	case ".webmanifest":
		ctype = "application/manifest+json"
	case ".html":
		ctype = "text/html; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	hd.Set("Content-Type", ctype)
	switch {
	case name == "index.html" || name == "sw.js":
		hd.Set("Cache-Control", "no-cache")
	case strings.HasPrefix(name, "app-"), strings.HasPrefix(name, "chunk-"):
		hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	default:
		hd.Set("Cache-Control", "public, max-age=3600")
	}
	hd.Set("Vary", "Accept-Encoding")
	if acceptsGzip(r) {
		if gz, err := fs.ReadFile(h.files, name+".gz"); err == nil {
			hd.Set("Content-Encoding", "gzip")
			data = gz
		}
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.TrimSpace(enc) == "gzip" && strings.ReplaceAll(q, " ", "") != "q=0" {
			return true
		}
	}
	return false
}
