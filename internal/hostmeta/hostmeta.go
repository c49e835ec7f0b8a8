// Package hostmeta serves XEP-0156 connection discovery over HTTP: the
// Web Host Metadata files (RFC 6415) /.well-known/host-meta (XRD) and
// /.well-known/host-meta.json (JRD) listing the WebSocket endpoint, so a
// web client given only "alice@example.com" finds where to connect — a
// browser cannot look up DNS SRV records.
//
// Only connection methods the server has are listed: WebSocket (RFC 7395).
// BOSH (XEP-0206) is not implemented, so it is not listed.
package hostmeta

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
)

// RelWebSocket is the link relation of an RFC 7395 endpoint.
const RelWebSocket = "urn:xmpp:alt-connections:websocket"

// Link is one entry of host-meta.
type Link struct {
	Rel  string `json:"rel"`
	Href string `json:"href"`
}

// Handler serves both files for the WebSocket endpoint at wsPath (e.g.
// "/xmpp-websocket"). publicURL ("https://chat.example.com", from
// listen.public_url) is the base clients reach the HTTP listener at; empty
// takes each request's own scheme and Host, which is right only when
// clients connect directly (behind a proxy the proxy's address is wanted).
func Handler(publicURL, wsPath string) http.Handler {
	return &handler{base: publicURL, wsPath: wsPath}
}

type handler struct{ base, wsPath string }

// websocketURL is ws(s)://host[:port]/path for this request.
func (h *handler) websocketURL(r *http.Request) (string, bool) {
	if h.base != "" {
		u, err := url.Parse(h.base)
		if err != nil {
			return "", false
		}
		scheme := "ws"
		if u.Scheme == "https" {
			scheme = "wss"
		}
		return scheme + "://" + u.Host + strings.TrimSuffix(u.Path, "/") + h.wsPath, true
	}
	if r.Host == "" {
		return "", false
	}
	scheme := "ws"
	if r.TLS != nil {
		scheme = "wss"
	}
	return scheme + "://" + r.Host + h.wsPath, true
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
	ws, ok := h.websocketURL(r)
	if !ok {
		http.Error(w, "no Host in the request and no listen.public_url configured", http.StatusBadRequest)
		return
	}
	links := []Link{{Rel: RelWebSocket, Href: ws}}
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
