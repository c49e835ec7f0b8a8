// Package hostmeta serves XEP-0156 connection discovery over HTTP: the
// Web Host Metadata files (RFC 6415) /.well-known/host-meta (XRD) and
// /.well-known/host-meta.json (JRD) listing the WebSocket (RFC 7395) and
// BOSH (XEP-0206) endpoints, so a web client given only
// "alice@example.com" finds where to connect — a browser cannot look up
// DNS SRV records.
package hostmeta

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
)

// Link relations of the connection methods (XEP-0156 §3).
const (
	RelWebSocket = "urn:xmpp:alt-connections:websocket"
	RelBOSH      = "urn:xmpp:alt-connections:xbosh"
)

// Link is one entry of host-meta.
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// Handler serves both files for the WebSocket endpoint at wsPath (e.g.
// "/xmpp-websocket") and the BOSH endpoint at boshPath ("/http-bind"). publicURL ("https://chat.example.com", from
// listen.public_url) is the base clients reach the HTTP listener at; empty
// takes each request's own scheme and Host, which is right only when
// clients connect directly (behind a proxy the proxy's address is wanted).
func Handler(publicURL, wsPath, boshPath string) http.Handler {
	return &handler{base: publicURL, wsPath: wsPath, boshPath: boshPath}
}

type handler struct{ base, wsPath, boshPath string }

// baseURL is http(s)://host[:port][/prefix] for this request.
func (h *handler) baseURL(r *http.Request) (string, bool) {
	if h.base != "" {
		u, err := url.Parse(h.base)
		if err != nil {
			return "", false
		}
		return u.Scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/"), true
	}
	if r.Host == "" {
		return "", false
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host, true
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Any web page may read these files (XEP-0156 §3): they hold nothing
	// private, and web clients are usually served from another origin.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	switch r.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	base, ok := h.baseURL(r)
	if !ok {
		http.Error(w, "no Host in the request and no listen.public_url configured", http.StatusBadRequest)
		return
	}
	links := []Link{
		{Rel: RelWebSocket, Href: "ws" + strings.TrimPrefix(base, "http") + h.wsPath}, // http→ws, https→wss
		{Rel: RelBOSH, Href: base + h.boshPath},
	}
	if strings.HasSuffix(r.URL.Path, ".json") {
		w.Header().Set("Content-Type", "application/json")
		b, _ := json.MarshalIndent(struct {
			Links []Link `json:"links"`
		}{links}, "", "  ")
		w.Write(append(b, '\n'))
		return
	}
	w.Header().Set("Content-Type", "application/xrd+xml; charset=utf-8")
	var b strings.Builder
	b.WriteString("<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n")
	for _, l := range links {
		b.WriteString("  <Link rel=\"")
		xml.EscapeText(&b, []byte(l.Rel))
		b.WriteString("\" href=\"")
		xml.EscapeText(&b, []byte(l.Href))
		b.WriteString("\"/>\n")
	}
	b.WriteString("</XRD>\n")
	w.Write([]byte(b.String()))
}
