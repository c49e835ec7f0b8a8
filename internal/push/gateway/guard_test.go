package gateway

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"bluetick/internal/dataform"
	"bluetick/internal/metrics"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
)

// logBuf collects the gateway's log lines.
type logBuf struct{ b bytes.Buffer }

func (l *logBuf) Write(p []byte) (int, error) { return l.b.Write(p) }

// fakeDNS answers the guard's lookups from a table (no test resolves a
// name over the network); names not in it do not exist.
type fakeDNS struct {
	mu sync.Mutex
	m  map[string][]netip.Addr
}

func (f *fakeDNS) set(host string, addrs ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var as []netip.Addr
	for _, a := range addrs {
		as = append(as, netip.MustParseAddr(a))
	}
	f.m[host] = as
}

func (f *fakeDNS) del(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.m, host)
}

func (f *fakeDNS) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if as, ok := f.m[host]; ok {
		return as, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

// pushGateway is a gateway with Web Push and a webhook allowing the given
// URLs, its guard built from allowPrivate and resolving through the
// returned fake DNS; the providers' clients trust httptest's TLS
// certificate.
func pushGateway(t *testing.T, allowPrivate []string, allowed ...string) (*Gateway, store.Store, *logBuf, *fakeDNS) {
	st, err := sqlite.Open(":memory:")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.CreateUser(t.Context(), "alice", nil); err != nil {
		t.Fatal(err)
	}
	guard, err := NewGuard(allowPrivate)
	if err != nil {
		t.Fatal(err)
	}
	dns := &fakeDNS{m: map[string][]netip.Addr{}}
	guard.LookupNetIP = dns.lookup
	client := guard.HTTPClient()
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	tlsSrv.Close()
	client.Transport.(*http.Transport).TLSClientConfig = tlsSrv.Client().Transport.(*http.Transport).TLSClientConfig
	vapid, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	lb := &logBuf{}
	g := New("example.org", st, map[string]Provider{
		"webpush": &WebPush{Key: vapid, Subject: "mailto:a@example.org", Client: client},
		"webhook": &Webhook{Secret: []byte("s"), Allowed: allowed, Client: client},
	}, slog.New(slog.NewTextHandler(lb, nil)))
	g.Guard = guard
	g.MaxRetries = 0
	g.Backoff = time.Millisecond
	return g, st, lb, dns
}

func webpushCommand(endpoint string, ua *ecdh.PrivateKey) string {
	return `<command xmlns='http://jabber.org/protocol/commands' node='register-push-webpush' action='execute'><x xmlns='jabber:x:data' type='submit'>` +
		`<field var='endpoint'><value>` + xmlEscape(endpoint) + `</value></field>` +
		`<field var='p256dh'><value>` + b64.EncodeToString(ua.PublicKey().Bytes()) + `</value></field>` +
		`<field var='auth'><value>` + b64.EncodeToString(make([]byte, 16)) + `</value></field></x></command>`
}

func webhookCommand(u string) string {
	return `<command xmlns='http://jabber.org/protocol/commands' node='register-push-webhook' action='execute'><x xmlns='jabber:x:data' type='submit'>` +
		`<field var='url'><value>` + xmlEscape(u) + `</value></field></x></command>`
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "'", "&apos;").Replace(s)
}

// registerCmd runs a registration command as alice and returns node and
// secret, or the error.
func registerCmd(t *testing.T, g *Gateway, payload string) (node, secret string, err error) {
	t.Helper()
	res, err := g.HandleIQ(t.Context(), iqFrom(t, "alice@example.org/phone", "set", payload))
	if err != nil {
		return "", "", err
	}
	f, ferr := dataform.Parse(res.Child(dataform.NS, "x"))
	if ferr != nil || res.Attr("status") != "completed" {
		t.Fatalf("registration answered %s", res)
	}
	return f.Get("node"), f.Get("secret"), nil
}

func errText(err error) string {
	var se *stanza.Error
	if errors.As(err, &se) {
		return se.Text
	}
	return errStr(err)
}

// TestWebPushPrivateEndpointRefusedAtRegistration: endpoints that name
// the server's own networks — in any spelling — are refused by the
// registration command with not-acceptable and a text saying why, so the
// client learns it before it enables push.
func TestWebPushPrivateEndpointRefusedAtRegistration(t *testing.T) {
	g, _, _, dns := pushGateway(t, nil)
	dns.set("localhost", "127.0.0.1")
	dns.set("push.example.net", "93.184.215.14")
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	for _, ep := range []string{
		"https://127.0.0.1/push/1",
		"https://127.0.0.1:8443/push/1",
		"https://localhost/push/1",
		"https://LocalHost./push/1",
		"https://sub.localhost/push/1",
		"https://[::ffff:127.0.0.1]/push/1",
		"https://[::1]/push/1",
		"https://127.1/push/1",
		"https://0x7f.1/push/1",
		"https://2130706433/push/1",
		"https://0177.0.0.1/push/1",
		"https://10.1.2.3/push/1",
		"https://192.168.1.1/push/1",
		"https://169.254.169.254/latest/meta-data",
		"https://100.64.0.1/push/1",
		"https://[fd00::1]/push/1",
		"https://[fe80::1%25eth0]/push/1",
		"https://0.0.0.0/push/1",
		"https://user:pw@push.example.net/push/1",
		"https://push.example.net/push/1#frag",
		"http://push.example.net/push/1",
		"https://push.example.net:0/push/1",
		"https://push.example.net/a/../../admin",
		"https://push.example.net/a/%2e%2e/admin",
		"https://push..example.net/push/1",
		"https://nxdomain.example.net/push/1",
	} {
		_, _, err := registerCmd(t, g, webpushCommand(ep, ua))
		if condition(err) != "not-acceptable" || errText(err) == "" {
			t.Errorf("endpoint %s: %v, want not-acceptable with a reason", ep, err)
		}
	}
	// The text says why.
	for ep, want := range map[string]string{
		"https://127.0.0.1/p":               "127.0.0.1 is a loopback address",
		"https://127.1/p":                   "127.1 is a non-standard spelling of the IPv4 address 127.0.0.1 (a loopback address)",
		"https://2130706433/p":              "127.0.0.1",
		"https://[::ffff:127.0.0.1]/p":      "loopback",
		"https://localhost/p":               "loopback",
		"https://169.254.169.254/p":         "link-local",
		"https://u@push.example.net/p":      "user info",
		"https://nxdomain.example.net/push": "does not resolve",
	} {
		_, _, err := registerCmd(t, g, webpushCommand(ep, ua))
		if !strings.Contains(errText(err), want) || !strings.Contains(errText(err), "endpoint refused") {
			t.Errorf("endpoint %s: %q, want it to say %q", ep, errText(err), want)
		}
	}
	if n := g.Metrics().Refused("webpush", "register", "loopback"); n < 5 {
		t.Errorf("bluetick_push_refused_total{webpush,register,loopback} = %d", n)
	}
	text, err := metrics.Text(g.Metrics())
	if err != nil || !strings.Contains(text, `bluetick_push_refused_total{at="register",provider="webpush",reason="ip_form"}`) {
		t.Errorf("metrics (%v):\n%s", err, text)
	}
	// A public endpoint is accepted.
	if _, _, err := registerCmd(t, g, webpushCommand("https://push.example.net/push/1", ua)); err != nil {
		t.Fatalf("public endpoint: %v", err)
	}
}

// TestWebhookUserinfoSSRF: with allowed_urls = "http://127.0.0.1:A", the
// URL http://127.0.0.1:A@127.0.0.1:B/pwn names host 127.0.0.1:B (A is a
// user name): it must be refused and port B never contacted.
func TestWebhookUserinfoSSRF(t *testing.T) {
	var okHits, pwnHits atomic.Int32
	allowed := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { okHits.Add(1) }))
	defer allowed.Close()
	target := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { pwnHits.Add(1) }))
	defer target.Close()
	g, st, _, _ := pushGateway(t, []string{"127.0.0.1"}, allowed.URL)
	evil := allowed.URL + "@" + strings.TrimPrefix(target.URL, "http://") + "/pwn"
	node, secret, err := registerCmd(t, g, webhookCommand(evil))
	if condition(err) != "not-acceptable" {
		t.Errorf("userinfo URL %s: %v, want not-acceptable", evil, err)
		if err == nil {
			g.Publish(t.Context(), publishIQ(node, secret, 1))
		}
	}
	for _, u := range []string{
		allowed.URL + ".evil.example/x",                          // host continues past the prefix
		allowed.URL + "0/x",                                      // port continues past the prefix
		allowed.URL + "/x#frag",                                  // fragment
		"https" + strings.TrimPrefix(allowed.URL, "http") + "/x", // other scheme
	} {
		if _, _, err := registerCmd(t, g, webhookCommand(u)); condition(err) != "not-acceptable" {
			t.Errorf("webhook URL %s: %v, want not-acceptable", u, err)
		}
	}
	if pwnHits.Load() != 0 {
		t.Fatalf("the server posted %d times to the port named after the user info", pwnHits.Load())
	}
	// A device stored before these checks is refused at send time, and
	// kept.
	sum := sha256.Sum256([]byte("sec"))
	st.PutPushDevice(t.Context(), store.PushDevice{Node: "old", Owner: "alice", Provider: "webhook", Token: evil, SecretHash: sum[:]})
	if err := g.Publish(t.Context(), publishIQ("old", "sec", 1)); condition(err) != "policy-violation" {
		t.Errorf("publish to a stored userinfo URL: %v, want policy-violation", err)
	}
	if pwnHits.Load() != 0 {
		t.Fatal("a stored userinfo URL was followed")
	}
	if g.Metrics().Refused("webhook", "send", "url") != 1 {
		t.Error("refusal at send not counted")
	}
	// Within the allowed URL: accepted, and delivered.
	node, secret, err = registerCmd(t, g, webhookCommand(allowed.URL+"/hook"))
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Publish(t.Context(), publishIQ(node, secret, 1)); err != nil || okHits.Load() != 1 {
		t.Fatalf("publish to the allowed webhook: %v, %d hits", err, okHits.Load())
	}
}

// TestRefusedEndpointKeepsDevice: a device stored before the guard (or
// whose host now resolves to a private address) is refused at send time;
// no provider was contacted, so the device is not deleted and the log does
// not say the provider unregistered it.
func TestRefusedEndpointKeepsDevice(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	g, st, lb, _ := pushGateway(t, nil)
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	sum := sha256.Sum256([]byte("sec"))
	d := store.PushDevice{Node: "legacy", Owner: "alice", Provider: "webpush", Token: srv.URL + "/push/1",
		P256DH: ua.PublicKey().Bytes(), Auth: make([]byte, 16), SecretHash: sum[:]}
	if err := st.PutPushDevice(t.Context(), d); err != nil {
		t.Fatal(err)
	}
	err := g.Publish(t.Context(), publishIQ("legacy", "sec", 1))
	var se *stanza.Error
	if !errors.As(err, &se) || se.Type != "wait" || se.Condition != "policy-violation" {
		t.Errorf("refused push answered %v, want a wait policy-violation (the XMPP server keeps the registration)", err)
	}
	if _, err := st.PushDevice(t.Context(), "legacy"); err != nil {
		t.Errorf("device deleted after a push the guard refused: %v", err)
	}
	if strings.Contains(lb.b.String(), "unregistered by its provider") {
		t.Errorf("log blames the provider:\n%s", lb.b.String())
	}
	if !strings.Contains(lb.b.String(), "refused by the address guard") || !strings.Contains(lb.b.String(), "reason=loopback") {
		t.Errorf("log does not say what happened:\n%s", lb.b.String())
	}
	if hits.Load() != 0 {
		t.Fatal("the loopback endpoint was contacted")
	}
	if g.Metrics().Refused("webpush", "send", "loopback") != 1 || g.Metrics().Get("bluetick_push_unregistered_total", "webpush") != 0 {
		t.Fatal("metrics do not say what happened")
	}
}

// webpushServer is a push service on 127.0.0.1 that decrypts what it gets.
func webpushServer(t *testing.T, ua *ecdh.PrivateKey, auth []byte) (*httptest.Server, *atomic.Int32, *atomic.Value) {
	var hits atomic.Int32
	var plain atomic.Value
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		pt, err := Decrypt(body, ua, auth)
		if err != nil {
			t.Errorf("push service cannot decrypt: %v", err)
		}
		plain.Store(string(pt))
		w.WriteHeader(http.StatusCreated)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake TestAllowPrivate fails on purpose
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv, &hits, &plain
}

func webpushCommandAuth(endpoint string, ua *ecdh.PrivateKey, auth []byte) string {
	return strings.Replace(webpushCommand(endpoint, ua), b64.EncodeToString(make([]byte, 16)), b64.EncodeToString(auth), 1)
}

// TestDNSRebindingRefusedAtConnect: a name that resolved to a public
// address at registration and resolves to 127.0.0.1 when the gateway
// connects is refused by the dialer; nothing is contacted, the device and
// the registration stay.
func TestDNSRebindingRefusedAtConnect(t *testing.T) {
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	rand.Read(auth)
	srv, hits, _ := webpushServer(t, ua, auth)
	g, st, lb, dns := pushGateway(t, nil)
	g.MaxRetries = 3
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))
	dns.set("push.rebind.test", "93.184.215.14")
	node, secret, err := registerCmd(t, g, webpushCommandAuth("https://push.rebind.test:"+port+"/sub/1", ua, auth))
	if err != nil {
		t.Fatalf("registration with a public address: %v", err)
	}
	for _, rebound := range []string{"127.0.0.1", "::ffff:127.0.0.1", "10.0.0.1"} {
		dns.set("push.rebind.test", "93.184.215.14", rebound)
		err = g.Publish(t.Context(), publishIQ(node, secret, 1))
		if condition(err) != "policy-violation" {
			t.Errorf("rebound to %s: %v, want policy-violation", rebound, err)
		}
	}
	if hits.Load() != 0 {
		t.Fatal("the rebound name was contacted")
	}
	if _, err := st.PushDevice(t.Context(), node); err != nil {
		t.Fatalf("device deleted: %v", err)
	}
	if g.Metrics().Refused("webpush", "send", "loopback") != 2 || g.Metrics().Refused("webpush", "send", "private") != 1 ||
		g.Metrics().Get("bluetick_push_retries_total", "webpush") != 0 {
		t.Fatalf("metrics: loopback %d, private %d, retries %d", g.Metrics().Refused("webpush", "send", "loopback"),
			g.Metrics().Refused("webpush", "send", "private"), g.Metrics().Get("bluetick_push_retries_total", "webpush"))
	}
	if strings.Contains(lb.b.String(), "unregistered") {
		t.Fatalf("log:\n%s", lb.b.String())
	}
}

// TestGuardControlChecksTheSocketAddress: the dialer's last check sees
// the address the socket connects to.
func TestGuardControlChecksTheSocketAddress(t *testing.T) {
	g, _ := NewGuard([]string{"10.0.0.0/8", "push.internal"})
	ctx := t.Context()
	for addr, want := range map[string]string{"127.0.0.1:443": "loopback", "[::ffff:127.0.0.1]:443": "loopback", "[::1]:443": "loopback",
		"10.1.2.3:443": "", "0.0.0.0:443": "unspecified", "93.184.215.14:443": "", "[fe80::1]:443": "link_local"} {
		err := g.control(ctx, "tcp", addr, nil)
		re, _ := isRefused(err)
		if want == "" && err != nil || want != "" && (re == nil || re.Reason != want) {
			t.Errorf("%s: %v, want %q", addr, err, want)
		}
	}
	byName := context.WithValue(ctx, byNameKey{}, true)
	if err := g.control(byName, "tcp", "127.0.0.1:443", nil); err != nil {
		t.Errorf("allowed host name to loopback: %v", err)
	}
	if err := g.control(byName, "tcp", "0.0.0.0:443", nil); err == nil {
		t.Error("the unspecified address is never allowed")
	}
	// And the real dialer refuses before any connection.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := g.DialContext(ctx, "tcp", ln.Addr().String()); err == nil {
		t.Fatal("dialed loopback")
	} else if re, ok := isRefused(err); !ok || re.Reason != "loopback" {
		t.Fatalf("dial loopback: %v", err)
	}
}

// TestAllowPrivate: push.allow_private lets a test (or a private
// deployment) push to a service on 127.0.0.1, by network or by host name,
// and nothing else.
func TestAllowPrivate(t *testing.T) {
	ua, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	rand.Read(auth)
	srv, hits, plain := webpushServer(t, ua, auth)
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "https://"))

	g, _, _, _ := pushGateway(t, []string{"127.0.0.1/8"})
	node, secret, err := registerCmd(t, g, webpushCommandAuth(srv.URL+"/sub/1", ua, auth))
	if err != nil {
		t.Fatalf("allowed network: %v", err)
	}
	if err := g.Publish(t.Context(), publishIQ(node, secret, 2)); err != nil || hits.Load() != 1 || !strings.Contains(plain.Load().(string), `"count":2`) {
		t.Fatalf("push to the allowed network: %v, %d hits, %v", err, hits.Load(), plain.Load())
	}
	// Only that network.
	if _, _, err := registerCmd(t, g, webpushCommand("https://10.0.0.1/x", ua)); condition(err) != "not-acceptable" {
		t.Errorf("10.0.0.1 with only 127.0.0.0/8 allowed: %v", err)
	}
	if _, _, err := registerCmd(t, g, webpushCommand("https://0.0.0.0/x", ua)); condition(err) != "not-acceptable" {
		t.Errorf("0.0.0.0: %v", err)
	}
	// An allowed network does not make odd spellings acceptable.
	if _, _, err := registerCmd(t, g, webpushCommand("https://127.1:"+port+"/x", ua)); condition(err) != "not-acceptable" {
		t.Errorf("127.1: %v", err)
	}

	// By host name: that name may resolve to loopback; another may not.
	g2, _, _, dns2 := pushGateway(t, []string{"Push.Internal."})
	dns2.set("push.internal", "127.0.0.1")
	dns2.set("other.internal", "127.0.0.1")
	node, secret, err = registerCmd(t, g2, webpushCommandAuth("https://push.internal:"+port+"/sub/2", ua, auth))
	if err != nil {
		t.Fatalf("allowed host name: %v", err)
	}
	if _, _, err := registerCmd(t, g2, webpushCommand("https://other.internal:"+port+"/x", ua)); condition(err) != "not-acceptable" {
		t.Errorf("a name not allowed that resolves to loopback: %v", err)
	}
	// The server's certificate is for 127.0.0.1/example.com, not
	// push.internal: the TLS handshake fails after the guard let the
	// connection through, and that is a delivery failure, not a refusal.
	err = g2.Publish(t.Context(), publishIQ(node, secret, 1))
	if hits.Load() != 1 || condition(err) != "resource-constraint" || g2.Metrics().Get("bluetick_push_refused_total", "webpush") != 1 {
		t.Fatalf("push through an allowed name: %v, hits %d", err, hits.Load())
	}
}

// TestConnectFailuresKeepTheDevice: connection refused is retried within
// the bound, a name that does not exist is not retried; neither deletes
// the device.
func TestConnectFailuresKeepTheDevice(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	g, st, lb, dns := pushGateway(t, []string{"127.0.0.0/8", "gone.internal"}, closed+"/", "http://gone.internal/")
	g.MaxRetries = 2
	dns.set("gone.internal", "127.0.0.1")
	for _, u := range []string{closed + "/hook", "http://gone.internal/hook"} {
		node, secret, err := registerCmd(t, g, webhookCommand(u))
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		if strings.Contains(u, "gone.internal") {
			dns.del("gone.internal") // NXDOMAIN from now on
		}
		before := g.Metrics().Get("bluetick_push_retries_total", "webhook")
		err = g.Publish(t.Context(), publishIQ(node, secret, 1))
		var se *stanza.Error
		if !errors.As(err, &se) || se.Type != "wait" {
			t.Errorf("%s: %v, want a wait error", u, err)
		}
		if _, err := st.PushDevice(t.Context(), node); err != nil {
			t.Errorf("%s: device deleted after a connection failure: %v", u, err)
		}
		retries := g.Metrics().Get("bluetick_push_retries_total", "webhook") - before
		if want := map[bool]uint64{true: 2, false: 0}[u == closed+"/hook"]; retries != want {
			t.Errorf("%s: %d retries, want %d", u, retries, want)
		}
	}
	if strings.Contains(lb.b.String(), "unregistered") || !strings.Contains(lb.b.String(), "device kept") {
		t.Fatalf("log:\n%s", lb.b.String())
	}
	if g.Metrics().Get("bluetick_push_unregistered_total", "webhook") != 0 || g.Metrics().Get("bluetick_push_failed_total", "webhook") != 2 {
		t.Fatal("metrics")
	}
}

func TestClassify(t *testing.T) {
	for a, want := range map[string]string{
		"8.8.8.8": "", "93.184.215.14": "", "2606:4700::1111": "", "64:ff9b::808:808": "", "2002:808:808::1": "",
		"127.0.0.1": "loopback", "127.255.255.254": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"10.1.2.3": "private", "172.16.0.1": "private", "192.168.0.1": "private", "fd00::1": "private", "::ffff:10.0.0.1": "private",
		"169.254.169.254": "link_local", "fe80::1": "link_local",
		"100.64.0.1": "cgnat", "100.127.255.255": "cgnat",
		"0.0.0.0": "unspecified", "::": "unspecified",
		"224.0.0.1": "multicast", "255.255.255.255": "multicast", "ff02::1": "multicast",
		"0.1.2.3": "reserved", "192.0.2.1": "reserved", "198.18.0.1": "reserved", "240.0.0.1": "reserved",
		"::127.0.0.1": "reserved", "fec0::1": "reserved", "2001:db8::1": "reserved", "2001::1": "reserved",
		"64:ff9b::7f00:1": "loopback", "2002:a00:1::1": "private", "64:ff9b::a9fe:a9fe": "link_local",
	} {
		if got := classify(netip.MustParseAddr(a)); got != want {
			t.Errorf("classify(%s) = %q, want %q", a, got, want)
		}
	}
}

func TestIPv4Spellings(t *testing.T) {
	for h, want := range map[string]string{
		"127.1": "127.0.0.1", "0x7f.1": "127.0.0.1", "2130706433": "127.0.0.1", "0177.0.0.1": "127.0.0.1",
		"0x7f000001": "127.0.0.1", "127.0.1": "127.0.0.1", "10.0x10203": "10.1.2.3", "0": "0.0.0.0", "1.2.3.4.": "1.2.3.4",
	} {
		if !endsInNumber(h) {
			t.Errorf("%s does not end in a number", h)
		}
		if ip, ok := parseIPv4Loose(h); !ok || ip.String() != want {
			t.Errorf("parseIPv4Loose(%s) = %v %v, want %s", h, ip, ok, want)
		}
	}
	for _, h := range []string{"256.1.1.1.1", "1.2.3.4.5", "09.1", "0x1g.1", "1.256.1", "4294967296"} {
		if _, ok := parseIPv4Loose(h); ok {
			t.Errorf("%s parsed", h)
		}
	}
	for _, h := range []string{"example.com", "1.example", "x1", "0x7f.example"} {
		if endsInNumber(h) {
			t.Errorf("%s ends in a number", h)
		}
	}
	g, _ := NewGuard(nil)
	if a, err := g.Resolve(t.Context(), "93.184.215.14."); err != nil || len(a) != 1 || a[0].String() != "93.184.215.14" {
		t.Errorf("an address with a trailing dot: %v %v", a, err)
	}
	for _, h := range []string{"127.1", "4294967296", "1.2.3.4.5", "127.0.0.1.", "0x5db8d70e"} {
		if _, err := g.Resolve(t.Context(), h); err == nil {
			t.Errorf("%s resolved", h)
		} else if re, ok := isRefused(err); !ok || re.Reason == "" {
			t.Errorf("%s: %v", h, err)
		}
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		u, allowed string
		ok         bool
	}{
		{"http://127.0.0.1:42105/x", "http://127.0.0.1:42105", true},
		{"http://127.0.0.1:42105", "http://127.0.0.1:42105", true},
		{"http://127.0.0.1:42105@127.0.0.1:42444/pwn", "http://127.0.0.1:42105", false},
		{"http://127.0.0.1:421050/", "http://127.0.0.1:42105", false},
		{"http://127.0.0.1:42105.evil.example/", "http://127.0.0.1:42105", false},
		{"https://relay.example/hooks/1", "https://relay.example/hooks", true},
		{"https://relay.example/hooks", "https://relay.example/hooks", true},
		{"https://relay.example/hooksX", "https://relay.example/hooks", false},
		{"https://relay.example/hooksX", "https://relay.example/hooks/", false},
		{"https://relay.example/hooks/a", "https://relay.example/hooks/", true},
		{"https://RELAY.example.:443/hooks/a", "https://relay.example/hooks/", true},
		{"https://relay.example:8443/hooks/a", "https://relay.example/hooks/", false},
		{"http://relay.example/hooks/a", "https://relay.example/hooks/", false},
		{"http://relay.example:80/a", "http://relay.example/", true},
		{"https://relay.example.evil/a", "https://relay.example/", false},
		{"http://[::1]:8080/a", "http://[0:0::1]:8080/", true},
		{"http://[::ffff:127.0.0.1]:8080/a", "http://127.0.0.1:8080/", true},
		{"http://127.0.0.2:8080/a", "http://127.0.0.1:8080/", false},
	} {
		wh := &Webhook{Allowed: []string{c.allowed}}
		if got := wh.Allows(c.u); got != c.ok {
			t.Errorf("%s within %s: %v, want %v", c.u, c.allowed, got, c.ok)
		}
	}
}

func TestNewGuardEntries(t *testing.T) {
	g, err := NewGuard([]string{"127.0.0.1/8", "::1", "[fd00::1]", "::ffff:10.0.0.0/104", "push.internal", " "})
	if err != nil {
		t.Fatal(err)
	}
	for a, ok := range map[string]bool{"127.9.9.9": true, "::1": true, "fd00::1": true, "fd00::2": false, "10.1.1.1": true, "192.168.0.1": false} {
		if (g.allowedAddr(netip.MustParseAddr(a), false) == "") != ok {
			t.Errorf("%s allowed: %v", a, !ok)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "127.1", "*.internal", "http://x/", "a..b"} {
		if _, err := NewGuard([]string{bad}); err == nil || !strings.Contains(err.Error(), "push.allow_private") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
