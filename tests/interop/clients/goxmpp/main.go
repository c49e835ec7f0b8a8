// Command goxmpp logs in to bluetick with github.com/xmppo/go-xmpp, the
// library of go-sendxmpp, whose releases from 2024 on do SCRAM-*-PLUS with
// tls-exporter and tls-server-end-point, XEP-0440 and XEP-0474: a real
// client for bluetick's channel binding (tests/interop/channelbinding_test.go).
//
// Usage: goxmpp 'JSON-CONFIG', the config every interop client gets (host,
// c2s, tls, domain, users, args). args: user; mode "starttls" or "direct";
// port (connect there instead, for the man in the middle); tls_max 12 or 13;
// ssdp (check the XEP-0474 hash); mechanism (force one). It prints JSON
// lines: {"event": "login", "jid", "mechanism", "gs2", "h", "encrypted"} or
// {"event": "login_failed", "error", "gs2"}, then {"event": "done"}. The
// XML goes to stderr. It ends itself within the config's timeout.
package main

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/xmppo/go-xmpp"
)

type config struct {
	Host    string            `json:"host"`
	C2S     int               `json:"c2s"`
	TLS     int               `json:"tls"`
	Domain  string            `json:"domain"`
	Users   map[string]string `json:"users"`
	Timeout int               `json:"timeout"`
	Args    struct {
		User      string `json:"user"`
		Mode      string `json:"mode"`
		Port      int    `json:"port"`
		TLSMax    int    `json:"tls_max"`
		SSDP      bool   `json:"ssdp"`
		Mechanism string `json:"mechanism"`
	} `json:"args"`
}

func emit(event string, kv ...any) {
	m := map[string]any{"event": event}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	b, _ := json.Marshal(m)
	fmt.Println(string(b))
}

// wire copies go-xmpp's debug output (the XML it sends and receives) to
// stderr and remembers the GS2 header of the SASL exchange and whether the
// server-first-message carried XEP-0474's h=.
type wire struct {
	mu   sync.Mutex
	gs2  string
	sawH bool
}

var (
	// RFC 6120's <auth/>, or SASL2's <initial-response/> (go-xmpp uses
	// XEP-0388 when offered).
	authRe      = regexp.MustCompile(`(?:<auth [^>]*>|<initial-response>)([A-Za-z0-9+/=]+)</(?:auth|initial-response)>`)
	challengeRe = regexp.MustCompile(`<challenge [^>]*>([A-Za-z0-9+/=\s]+)</challenge>`)
)

func (w *wire) Write(p []byte) (int, error) {
	os.Stderr.Write(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	if m := authRe.FindSubmatch(p); m != nil {
		if b, err := base64.StdEncoding.DecodeString(string(m[1])); err == nil {
			if i := bytes.Index(b, []byte(",")); i >= 0 {
				w.gs2 = string(b[:i])
			}
		}
	}
	if m := challengeRe.FindSubmatch(p); m != nil {
		s := strings.Join(strings.Fields(string(m[1])), "")
		if b, err := base64.StdEncoding.DecodeString(s); err == nil {
			for _, a := range strings.Split(string(b), ",") {
				if strings.HasPrefix(a, "h=") {
					w.sawH = true
				}
			}
		}
	}
	return len(p), nil
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: goxmpp JSON-CONFIG")
		os.Exit(2)
	}
	var cfg config
	if err := json.Unmarshal([]byte(os.Args[1]), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	timeout := time.Duration(cfg.Timeout) * time.Second
	if timeout <= 0 {
		timeout = 20 * time.Second
	}
	time.AfterFunc(timeout, func() {
		emit("timeout")
		os.Exit(3)
	})

	a := cfg.Args
	port := cfg.TLS
	if a.Mode == "starttls" {
		port = cfg.C2S
	}
	if a.Port != 0 {
		port = a.Port
	}
	tc := &tls.Config{InsecureSkipVerify: true, ServerName: cfg.Domain, MinVersion: tls.VersionTLS12}
	if a.TLSMax == 12 {
		tc.MaxVersion = tls.VersionTLS12
	}
	w := &wire{}
	opts := xmpp.Options{
		Host:        fmt.Sprintf("%s:%d", cfg.Host, port),
		User:        a.User + "@" + cfg.Domain,
		Password:    cfg.Users[a.User],
		Resource:    "goxmpp",
		TLSConfig:   tc,
		NoTLS:       a.Mode == "starttls",
		StartTLS:    a.Mode == "starttls",
		NoPLAIN:     true, // a SCRAM failure must not be papered over
		SSDP:        a.SSDP,
		Mechanism:   a.Mechanism,
		Debug:       true,
		DebugWriter: w,
		DialTimeout: 5 * time.Second,
	}
	c, err := opts.NewClient()
	w.mu.Lock()
	gs2, sawH := w.gs2, w.sawH
	w.mu.Unlock()
	if err != nil {
		emit("login_failed", "error", err.Error(), "gs2", gs2, "h", sawH)
		emit("done")
		return
	}
	emit("login", "jid", c.JID(), "mechanism", c.Mechanism, "gs2", gs2, "h", sawH, "encrypted", c.IsEncrypted())
	c.Close()
	emit("done")
}
