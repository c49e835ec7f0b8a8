package hostmeta

import (
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

type xrd struct {
	XMLName xml.Name `xml:"http://docs.oasis-open.org/ns/xri/xrd-1.0 XRD"`
	Links   []struct {
		Rel  string `xml:"rel,attr"`
		Href string `xml:"href,attr"`
	} `xml:"Link"`
}

// get fetches path and returns the websocket and BOSH hrefs from XRD or JRD.
func get(t *testing.T, h http.Handler, path, host string, tlsOn bool) (ws, bosh string) {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.Host = host
	if tlsOn {
		r.TLS = &tls.ConnectionState{}
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "*" {
		t.Fatalf("%s: %d, headers %v", path, w.Code, w.Header())
	}
	body, _ := io.ReadAll(w.Body)
	var links []Link
	if path == "/.well-known/host-meta.json" {
		var j struct{ Links []Link }
		if err := json.Unmarshal(body, &j); err != nil {
			t.Fatalf("JRD %s: %v", body, err)
		}
		links = j.Links
	} else {
		var x xrd
		if err := xml.Unmarshal(body, &x); err != nil {
			t.Fatalf("XRD %s: %v", body, err)
		}
		for _, l := range x.Links {
			links = append(links, Link{l.Rel, l.Href})
		}
	}
	if len(links) != 2 || links[0].Rel != RelWebSocket || links[1].Rel != RelBOSH {
		t.Fatalf("%s links %v (body %s)", path, links, body)
	}
	return links[0].Href, links[1].Href
}

func TestHostMeta(t *testing.T) {
	cases := []struct {
		base, host string
		tls        bool
		ws, bosh   string
	}{
		{"", "127.0.0.1:5280", false, "ws://127.0.0.1:5280/xmpp-websocket", "http://127.0.0.1:5280/http-bind"},
		{"", "chat.example.com", true, "wss://chat.example.com/xmpp-websocket", "https://chat.example.com/http-bind"},
		{"https://chat.example.com", "10.0.0.1:5280", false, "wss://chat.example.com/xmpp-websocket", "https://chat.example.com/http-bind"},
		{"https://example.com:8443/xmpp/", "x", false, "wss://example.com:8443/xmpp/xmpp-websocket", "https://example.com:8443/xmpp/http-bind"},
		{"http://localhost:5280", "x", true, "ws://localhost:5280/xmpp-websocket", "http://localhost:5280/http-bind"},
	}
	for _, c := range cases {
		h := Handler(c.base, "/xmpp-websocket", "/http-bind")
		for _, p := range []string{"/.well-known/host-meta", "/.well-known/host-meta.json"} {
			if ws, bosh := get(t, h, p, c.host, c.tls); ws != c.ws || bosh != c.bosh {
				t.Errorf("base %q host %q %s: %q %q, want %q %q", c.base, c.host, p, ws, bosh, c.ws, c.bosh)
			}
		}
	}
}

func TestHostMetaMethods(t *testing.T) {
	h := Handler("", "/xmpp-websocket", "/http-bind")
	for method, code := range map[string]int{"OPTIONS": 204, "POST": 405, "HEAD": 200} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(method, "/.well-known/host-meta", nil))
		if w.Code != code || w.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: %d %v, want %d with CORS", method, w.Code, w.Header(), code)
		}
	}
	r := httptest.NewRequest("GET", "/.well-known/host-meta", nil)
	r.Host = ""
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != 400 {
		t.Errorf("no Host: %d, want 400", w.Code)
	}
}
