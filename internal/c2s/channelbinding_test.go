package c2s

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"bluetick/internal/config"
	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

var (
	plusMechs = []string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}
	cbTypes13 = []string{"tls-exporter", "tls-server-end-point"}
)

// startCBServer is startServer with the per-account login throttle out of
// the way: these tests fail (and abort) many exchanges on purpose.
func startCBServer(t *testing.T) *testServer {
	return startServer(t, func(c *config.Config) { c.Limits.AccountLoginFailures = 1000 })
}

func insecureTLS(max uint16) *tls.Config {
	return &tls.Config{InsecureSkipVerify: true, ServerName: "localhost", MaxVersion: max}
}

// exporter is the client's tls-exporter value (RFC 9266).
func exporter(t *testing.T, cs tls.ConnectionState) []byte {
	t.Helper()
	b, err := cs.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// endPoint is tls-server-end-point as the client computes it: the
// certificate it got, hashed with SHA-256 (the test certificate is
// ECDSA with SHA-256).
func endPoint(cs tls.ConnectionState) []byte {
	h := sha256.Sum256(cs.PeerCertificates[0].Raw)
	return h[:]
}

// plusLogin authenticates c with SCRAM-SHA-256-PLUS and the given binding,
// checking the XEP-0474 hash against the features f it saw.
func plusLogin(c *client, f *xmlstream.Element, typ string, data []byte) *xmlstream.Element {
	c.t.Helper()
	mechs, types := xmpptest.Offer(f)
	s := &xmpptest.SCRAM{Mechanism: "SCRAM-SHA-256-PLUS", User: "alice", Password: "pw", Flag: "p=" + typ, CBData: data, SawMechs: mechs, SawCBTypes: types}
	el, err := c.SASL(s)
	if err != nil {
		c.t.Fatalf("SCRAM client: %v", err)
	}
	return el
}

func wantSASLFailure(t *testing.T, el *xmlstream.Element, cond, text string) {
	t.Helper()
	if el.Name != "failure" || el.Child(nsSASL, cond) == nil || !strings.Contains(el.ChildText(nsSASL, "text"), text) {
		t.Fatalf("want <failure><%s/> with text %q, got %v", cond, text, el)
	}
}

func TestChannelBindingFeatures(t *testing.T) {
	srv := startCBServer(t)
	c := dial(t, srv.addr)
	f := c.open()
	if mechs, types := xmpptest.Offer(f); types != nil || !reflect.DeepEqual(mechs, []string{"SCRAM-SHA-256", "SCRAM-SHA-1"}) {
		t.Fatalf("before TLS: mechanisms %v, channel binding %v", mechs, types)
	}
	f = dial(t, srv.addr).StartTLS(insecureTLS(0))
	if mechs, types := xmpptest.Offer(f); !reflect.DeepEqual(mechs, plusMechs) || !reflect.DeepEqual(types, cbTypes13) {
		t.Fatalf("TLS 1.3: mechanisms %v, channel binding %v", mechs, types)
	}

	// TLS 1.2: no tls-exporter, tls-server-end-point still.
	c12 := dial(t, srv.addr)
	f = c12.StartTLS(insecureTLS(tls.VersionTLS12))
	if mechs, types := xmpptest.Offer(f); !reflect.DeepEqual(mechs, plusMechs) || !reflect.DeepEqual(types, []string{"tls-server-end-point"}) {
		t.Fatalf("TLS 1.2: mechanisms %v, channel binding %v", mechs, types)
	}
	el := plusLogin(c12, f, "tls-exporter", []byte("x"))
	wantSASLFailure(t, el, "malformed-request", "tls-exporter is not supported")
	el = plusLogin(c12, f, "tls-server-end-point", endPoint(c12.TLSState()))
	if el.Name != "success" {
		t.Fatalf("tls-server-end-point on TLS 1.2: %v", el)
	}
}

// TestChannelBindingBothWays: a -PLUS login succeeds with the connection's
// own binding data, for both types, and fails with the exporter value of
// another TLS connection — what a client behind a TLS-terminating man in
// the middle would send.
func TestChannelBindingBothWays(t *testing.T) {
	srv := startCBServer(t)
	a, b := dial(t, srv.addr), dial(t, srv.addr)
	fa := a.StartTLS(insecureTLS(0))
	fb := b.StartTLS(insecureTLS(0))
	expA, expB := exporter(t, a.TLSState()), exporter(t, b.TLSState())
	if string(expA) == string(expB) {
		t.Fatal("two connections with one exporter value")
	}

	el := plusLogin(b, fb, "tls-exporter", expA)
	wantSASLFailure(t, el, "not-authorized", "channel binding does not match")
	el = plusLogin(b, fb, "tls-exporter", expB)
	if el.Name != "success" {
		t.Fatalf("own exporter: %v", el)
	}
	if f := b.Open(); f.Child(nsBind, "bind") == nil {
		t.Fatalf("after -PLUS login: %v", f)
	}

	el = plusLogin(a, fa, "tls-server-end-point", endPoint(a.TLSState()))
	if el.Name != "success" {
		t.Fatalf("tls-server-end-point: %v", el)
	}

	// A certificate the client did not get (a man in the middle's).
	c := dial(t, srv.addr)
	fc := c.StartTLS(insecureTLS(0))
	other := sha256.Sum256([]byte("another certificate"))
	wantSASLFailure(t, plusLogin(c, fc, "tls-server-end-point", other[:]), "not-authorized", "channel binding does not match")
	// tls-unique does not exist on TLS 1.3.
	wantSASLFailure(t, plusLogin(c, fc, "tls-unique", []byte("x")), "malformed-request", "tls-unique is not supported")
}

// TestChannelBindingDowngradeRefused: "y" says the client binds but saw no
// -PLUS; this stream offered -PLUS, so someone removed it.
func TestChannelBindingDowngradeRefused(t *testing.T) {
	srv := startCBServer(t)
	c := dial(t, srv.addr)
	c.StartTLS(insecureTLS(0))
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1"} {
		el, err := c.SASL(&xmpptest.SCRAM{Mechanism: mech, User: "alice", Password: "pw", Flag: "y"})
		if err != nil {
			t.Fatal(err)
		}
		wantSASLFailure(t, el, "malformed-request", "downgrade")
	}
	// "n" is the client that does not bind: fine.
	el, err := c.SASL(&xmpptest.SCRAM{Mechanism: "SCRAM-SHA-256", User: "alice", Password: "pw"})
	if err != nil || el.Name != "success" {
		t.Fatalf("n: %v %v", el, err)
	}

	// Without TLS nothing is offered, and "y" is the truth.
	p := dial(t, srv.addr)
	p.open()
	el, err = p.SASL(&xmpptest.SCRAM{Mechanism: "SCRAM-SHA-256", User: "alice", Password: "pw", Flag: "y"})
	if err != nil || el.Name != "success" {
		t.Fatalf("y without TLS: %v %v", el, err)
	}
	// And -PLUS cannot be used there.
	q := dial(t, srv.addr)
	q.open()
	el, _ = q.SASL(&xmpptest.SCRAM{Mechanism: "SCRAM-SHA-256-PLUS", User: "alice", Password: "pw", Flag: "p=tls-exporter"})
	wantSASLFailure(t, el, "invalid-mechanism", "")
}

// TestSSDP: the client checks the server's XEP-0474 hash against the
// features it saw. The real features match; features a man in the middle
// stripped (no -PLUS, no channel binding types, or no SCRAM-SHA-256) do
// not, and the client stops before sending a proof.
func TestSSDP(t *testing.T) {
	srv := startCBServer(t)
	c := dial(t, srv.addr)
	f := c.StartTLS(insecureTLS(0))
	mechs, types := xmpptest.Offer(f)
	stripped := []struct {
		name         string
		mechs, types []string
	}{
		{"no -PLUS", []string{"SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN"}, nil},
		{"no XEP-0440", mechs, nil},
		{"no tls-exporter", mechs, []string{"tls-server-end-point"}},
		{"only SCRAM-SHA-1", []string{"SCRAM-SHA-1-PLUS", "SCRAM-SHA-1"}, types},
	}
	for _, s := range stripped {
		// A connection per case: aborted exchanges count toward the
		// stream's failure limit.
		c := dial(t, srv.addr)
		c.StartTLS(insecureTLS(0))
		for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-1"} {
			_, err := c.SASL(&xmpptest.SCRAM{Mechanism: mech, User: "alice", Password: "pw", SawMechs: s.mechs, SawCBTypes: s.types})
			if !errors.Is(err, xmpptest.ErrDowngrade) {
				t.Errorf("%s with %s: client did not detect it (err %v)", s.name, mech, err)
			}
		}
	}
	el, err := c.SASL(&xmpptest.SCRAM{Mechanism: "SCRAM-SHA-1", User: "alice", Password: "pw", SawMechs: mechs, SawCBTypes: types})
	if err != nil || el.Name != "success" {
		t.Fatalf("untouched features: %v %v", el, err)
	}

	// Without TLS the hash covers the plain list and no types.
	p := dial(t, srv.addr)
	pm, pt := xmpptest.Offer(p.open())
	el, err = p.SASL(&xmpptest.SCRAM{Mechanism: "SCRAM-SHA-256", User: "alice", Password: "pw", SawMechs: pm, SawCBTypes: pt})
	if err != nil || el.Name != "success" || pt != nil {
		t.Fatalf("plain stream: %v %v (types %v)", el, err, pt)
	}
}

func TestChannelBindingDirectTLS(t *testing.T) {
	srv := startCBServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.svc.ServeTCP(ln, true)
	t.Cleanup(func() { ln.Close() })

	a := &client{Client: xmpptest.DialTLS(t, ln.Addr().String(), "localhost", insecureTLS(0)), t: t}
	b := &client{Client: xmpptest.DialTLS(t, ln.Addr().String(), "localhost", insecureTLS(0)), t: t}
	fa, fb := a.open(), b.open()
	if mechs, types := xmpptest.Offer(fa); !reflect.DeepEqual(mechs, plusMechs) || !reflect.DeepEqual(types, cbTypes13) {
		t.Fatalf("direct TLS: mechanisms %v, channel binding %v", mechs, types)
	}
	wantSASLFailure(t, plusLogin(a, fa, "tls-exporter", exporter(t, b.TLSState())), "not-authorized", "channel binding does not match")
	if el := plusLogin(a, fa, "tls-exporter", exporter(t, a.TLSState())); el.Name != "success" {
		t.Fatalf("direct TLS, own exporter: %v", el)
	}
	if el := plusLogin(b, fb, "tls-server-end-point", endPoint(b.TLSState())); el.Name != "success" {
		t.Fatalf("direct TLS, tls-server-end-point: %v", el)
	}
}

// wsSCRAM runs s over the RFC 7395 endpoint and returns the last element.
func (w *wsClient) sasl(s *xmpptest.SCRAM) *xmlstream.Element {
	w.t.Helper()
	w.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + s.Mechanism + "'>" + base64.StdEncoding.EncodeToString(s.First()) + "</auth>")
	el := w.next()
	if el.Name != "challenge" {
		return el
	}
	sf, _ := base64.StdEncoding.DecodeString(el.Text())
	cf, err := s.Final(sf)
	if err != nil {
		w.t.Fatal(err)
	}
	w.send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(cf) + "</response>")
	return w.next()
}

// TestChannelBindingWebSocket: over HTTPS the WebSocket stream binds to
// the HTTPS connection; over plain HTTP (or behind a TLS proxy) there is
// nothing to bind to and no -PLUS.
func TestChannelBindingWebSocket(t *testing.T) {
	srv := startCBServer(t)
	hs := httptest.NewUnstartedServer(srv.svc.WebSocketHandler())
	hs.TLS = srv.svc.tls.Clone() // as serve does for listen.https
	hs.TLS.NextProtos = []string{"http/1.1"}
	hs.StartTLS()
	t.Cleanup(hs.Close)

	// dialWS connects over HTTPS and returns the client and its TLS state.
	dialWS := func() (*wsClient, tls.ConnectionState) {
		var conn *tls.Conn
		tr := &http.Transport{DialTLSContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := &tls.Dialer{Config: insecureTLS(0)}
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				conn = c.(*tls.Conn)
			}
			return c, err
		}}
		t.Cleanup(tr.CloseIdleConnections)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		url := "wss://" + strings.TrimPrefix(hs.URL, "https://") + "/xmpp-websocket"
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		return &wsClient{t: t, c: c}, conn.ConnectionState()
	}

	a, csA := dialWS()
	b, csB := dialWS()
	fa := a.open()
	b.open()
	mechs, types := xmpptest.Offer(fa)
	if !reflect.DeepEqual(mechs, plusMechs) || !reflect.DeepEqual(types, cbTypes13) {
		t.Fatalf("WebSocket over HTTPS: mechanisms %v, channel binding %v", mechs, types)
	}
	scram := func(data []byte) *xmpptest.SCRAM {
		return &xmpptest.SCRAM{Mechanism: "SCRAM-SHA-256-PLUS", User: "alice", Password: "pw", Flag: "p=tls-exporter", CBData: data, SawMechs: mechs, SawCBTypes: types}
	}
	if el := b.sasl(scram(exporter(t, csA))); el.Name != "failure" || el.Child(nsSASL, "not-authorized") == nil {
		t.Fatalf("other connection's exporter over WebSocket: %v", el)
	}
	if el := a.sasl(scram(exporter(t, csA))); el.Name != "success" {
		t.Fatalf("own exporter over WebSocket: %v", el)
	}
	s := scram(endPoint(csB))
	s.Flag = "p=tls-server-end-point"
	if el := b.sasl(s); el.Name != "success" {
		t.Fatalf("tls-server-end-point over WebSocket: %v", el)
	}

	// Plain HTTP: no channel binding.
	plain := httptest.NewServer(srv.svc.WebSocketHandler())
	t.Cleanup(plain.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+strings.TrimPrefix(plain.URL, "http://")+"/xmpp-websocket", &websocket.DialOptions{Subprotocols: []string{"xmpp"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	w := &wsClient{t: t, c: c}
	if mechs, types := xmpptest.Offer(w.open()); types != nil || !reflect.DeepEqual(mechs, []string{"SCRAM-SHA-256", "SCRAM-SHA-1"}) {
		t.Fatalf("plain WebSocket: mechanisms %v, channel binding %v", mechs, types)
	}
}

// TestChannelBindingResumed: a resumed TLS session sends no certificate,
// so none is recorded at its handshake; tls-server-end-point is still
// offered and matches the certificate the client holds from its first
// handshake, on TLS 1.2 and 1.3.
func TestChannelBindingResumed(t *testing.T) {
	srv := startCBServer(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		cfg := insecureTLS(v)
		cfg.ClientSessionCache = tls.NewLRUClientSessionCache(4)
		first := dial(t, srv.addr)
		first.StartTLS(cfg)
		first.Send("</stream:stream>")
		var c *client
		var f *xmlstream.Element
		for i := 0; i < 5; i++ { // a TLS 1.3 ticket may come after the features
			c = dial(t, srv.addr)
			if f = c.StartTLS(cfg); c.TLSState().DidResume {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if !c.TLSState().DidResume {
			t.Fatalf("TLS %x: the session was not resumed", v)
		}
		if _, types := xmpptest.Offer(f); !slices.Contains(types, "tls-server-end-point") {
			t.Fatalf("TLS %x resumed: channel binding types %v", v, types)
		}
		if el := plusLogin(c, f, "tls-server-end-point", endPoint(c.TLSState())); el.Name != "success" {
			t.Fatalf("TLS %x resumed, tls-server-end-point: %v", v, el)
		}
	}
}
