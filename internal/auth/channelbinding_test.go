package auth

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"
)

// fixedCB is a channel binding with fixed data per type.
func fixedCB(data map[string]string, types ...string) ChannelBinding {
	return ChannelBinding{
		Types: types,
		Data: func(typ string) ([]byte, error) {
			d, ok := data[typ]
			if !ok {
				return nil, errors.New("no data for " + typ)
			}
			return []byte(d), nil
		},
	}
}

// TestXEP0474Example replays the example of XEP-0474 §5.3 byte for byte:
// SCRAM-SHA-1-PLUS with tls-exporter (fake binding data), the SSDP hash
// in the server-first-message and an extension in the client-final-message.
// It is the one published vector that covers channel binding.
func TestXEP0474Example(t *testing.T) {
	ctx := context.Background()
	m := newMemStore()
	m.put("user", rfcCredential(t, hashSHA1, "QSXCR+Q6sek8bf92"))
	cfg := m.config()
	cfg.Offered = []string{SCRAMSHA1, SCRAMSHA1Plus}
	cfg.ChannelBinding = fixedCB(map[string]string{TLSExporter: "THIS IS FAKE CB DATA"}, TLSServerEndPoint, TLSExporter)
	n := mustNegotiator(t, SCRAMSHA1Plus, cfg)
	n.(*scram).fixedNonce = "a09117a6-ac50-4f2f-93f1-93799c2bddf6"

	out, done, err := n.Step(ctx, []byte("p=tls-exporter,,n=user,r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6"))
	if err != nil || done {
		t.Fatalf("client-first: done=%v err=%v", done, err)
	}
	const serverFirst = "r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,s=QSXCR+Q6sek8bf92,i=4096,h=G6k/rBLDqgOhRRaCuuatSDFkJ08="
	if string(out) != serverFirst {
		t.Fatalf("server-first = %q, want %q", out, serverFirst)
	}
	out, done, err = n.Step(ctx, []byte("c=cD10bHMtZXhwb3J0ZXIsLFRISVMgSVMgRkFLRSBDQiBEQVRB,r=12C4CD5C-E38E-4A98-8F6D-15C38F51CCC6a09117a6-ac50-4f2f-93f1-93799c2bddf6,x=19C6532F-1CF4-4A27-A18D-DC9CEA41BBB3,p=M/SIDjT+dfcxUh89jZEypRvFxB4="))
	if err != nil || !done {
		t.Fatalf("client-final: done=%v err=%v", done, err)
	}
	if string(out) != "v=MQrMPvv7yv4x4Cq4W4Ih25EqS2c=" {
		t.Fatalf("server-final = %q", out)
	}
	if n.Username() != "user" {
		t.Fatalf("Username = %q", n.Username())
	}
}

func TestDowngradeHash(t *testing.T) {
	// The hash of the XEP-0474 example, whatever the order things were
	// advertised in.
	const want = "G6k/rBLDqgOhRRaCuuatSDFkJ08="
	for _, o := range []offer{
		{[]string{SCRAMSHA1, SCRAMSHA1Plus}, []string{TLSExporter, TLSServerEndPoint}},
		{[]string{SCRAMSHA1Plus, SCRAMSHA1}, []string{TLSServerEndPoint, TLSExporter}},
	} {
		if got := downgradeHash(hashSHA1, o.mechs, o.cbTypes); got != want {
			t.Errorf("%v: %s, want %s", o, got, want)
		}
	}
	// Without XEP-0440 there is no U+001F part; the test client agrees
	// with the server in every case.
	c := newTestClient(SCRAMSHA256, "u", "p")
	for _, o := range []offer{
		{[]string{SCRAMSHA256, SCRAMSHA1}, nil},
		{[]string{"SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "SCRAM-SHA-1-PLUS", "SCRAM-SHA-1", "PLAIN"}, []string{TLSExporter, TLSServerEndPoint}},
		{[]string{"a", "B", "A", "b"}, []string{"z", "Z"}}, // i;octet: upper case first
	} {
		if got, want := downgradeHash(hashSHA256, o.mechs, o.cbTypes), c.ssdpHash(o); got != want {
			t.Errorf("%v: server %s, client %s", o, got, want)
		}
	}
	a := downgradeHash(hashSHA256, []string{SCRAMSHA256}, nil)
	b := downgradeHash(hashSHA256, []string{SCRAMSHA256}, []string{TLSExporter})
	if a == b {
		t.Error("types do not change the hash")
	}
}

// plusSetup is a store with juliet and a config for a stream that offered
// everything with both binding types.
func plusSetup(t *testing.T) (*memStore, Config) {
	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	cfg := m.config()
	cfg.ChannelBinding = fixedCB(map[string]string{TLSExporter: "exporter-A", TLSServerEndPoint: "cert-hash"}, TLSExporter, TLSServerEndPoint)
	cfg.Offered = MechanismsFor(true, cfg.ChannelBinding)
	return m, cfg
}

func TestChannelBindingLogin(t *testing.T) {
	_, cfg := plusSetup(t)
	for _, mech := range []string{SCRAMSHA256Plus, SCRAMSHA1Plus} {
		for _, typ := range []string{TLSExporter, TLSServerEndPoint} {
			t.Run(mech+"/"+typ, func(t *testing.T) {
				data, _ := cfg.ChannelBinding.Data(typ)
				c := newTestClient(mech, "juliet", "romeo")
				c.cbType, c.cbData = typ, data
				c.ssdp = &offer{cfg.Offered, cfg.ChannelBinding.Types}
				n, err := exchange(t, mech, cfg, c)
				if err != nil {
					t.Fatal(err)
				}
				if n.Username() != "juliet" {
					t.Fatalf("Username = %q", n.Username())
				}
			})
		}
	}
	// "n" is accepted with a -PLUS mechanism (and without): the client
	// simply does not bind.
	for _, mech := range []string{SCRAMSHA256Plus, SCRAMSHA256} {
		c := newTestClient(mech, "juliet", "romeo")
		if _, err := exchange(t, mech, cfg, c); err != nil {
			t.Errorf("%s with n: %v", mech, err)
		}
	}
}

func TestChannelBindingRefusals(t *testing.T) {
	ctx := context.Background()
	_, cfg := plusSetup(t)
	noPlus := cfg
	noPlus.Offered = Mechanisms(true)
	noPlus.ChannelBinding = ChannelBinding{}
	onlyEndPoint := cfg
	onlyEndPoint.ChannelBinding = fixedCB(map[string]string{TLSServerEndPoint: "cert-hash"}, TLSServerEndPoint)
	onlyEndPoint.Offered = MechanismsFor(true, onlyEndPoint.ChannelBinding)
	broken := cfg
	broken.ChannelBinding.Data = func(string) ([]byte, error) { return nil, errors.New("gone") }

	cases := []struct {
		name string
		cfg  Config
		mech string
		msg  string
		cond string
		text string
	}{
		{"y when -PLUS offered", cfg, SCRAMSHA256, "y,,n=juliet,r=abc", "malformed-request", "downgrade"},
		{"y with -PLUS", cfg, SCRAMSHA256Plus, "y,,n=juliet,r=abc", "malformed-request", "downgrade"},
		{"p with plain mechanism", cfg, SCRAMSHA256, "p=tls-exporter,,n=juliet,r=abc", "malformed-request", "PLUS"},
		{"tls-unique", cfg, SCRAMSHA256Plus, "p=tls-unique,,n=juliet,r=abc", "malformed-request", "tls-unique"},
		{"type not advertised", onlyEndPoint, SCRAMSHA1Plus, "p=tls-exporter,,n=juliet,r=abc", "malformed-request", "advertised: tls-server-end-point"},
		{"bad type name", cfg, SCRAMSHA256Plus, "p=tls_exporter,,n=juliet,r=abc", "malformed-request", ""},
		{"empty type name", cfg, SCRAMSHA256Plus, "p=,,n=juliet,r=abc", "malformed-request", ""},
		{"data unavailable", broken, SCRAMSHA256Plus, "p=tls-exporter,,n=juliet,r=abc", "temporary-auth-failure", ""},
		{"y, unknown user", cfg, SCRAMSHA256, "y,,n=nobody,r=abc", "malformed-request", "downgrade"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := mustNegotiator(t, tc.mech, tc.cfg)
			out, done, err := n.Step(ctx, []byte(tc.msg))
			checkResult(t, out, done, err)
			f := wantFailure(t, err, tc.cond)
			if !strings.Contains(f.Text, tc.text) {
				t.Errorf("text %q lacks %q", f.Text, tc.text)
			}
		})
	}

	// "y" is fine where nothing was offered: the client is right that
	// this stream has no channel binding.
	c := newTestClient(SCRAMSHA256, "juliet", "romeo")
	c.flag = "y"
	if _, err := exchange(t, SCRAMSHA256, noPlus, c); err != nil {
		t.Errorf("y without -PLUS offered: %v", err)
	}

	// After a refusal for a binding type the connection lacks (slixmpp's
	// tls-unique on TLS 1.3), "y" is that client's fallback: let in.
	n := mustNegotiator(t, SCRAMSHA256Plus, cfg)
	_, _, err := n.Step(ctx, []byte("p=tls-unique,,n=juliet,r=abc"))
	if f := wantFailure(t, err, "malformed-request"); !f.UnsupportedBinding {
		t.Errorf("tls-unique refusal not marked UnsupportedBinding: %+v", f)
	}
	tried := cfg
	tried.TriedPlus = true
	c = newTestClient(SCRAMSHA256, "juliet", "romeo")
	c.flag = "y"
	if _, err := exchange(t, SCRAMSHA256, tried, c); err != nil {
		t.Errorf("y after an unsupported binding type: %v", err)
	}

	// -PLUS is not even started without binding, nor a mechanism the
	// stream did not offer.
	for _, mech := range []string{SCRAMSHA256Plus, SCRAMSHA1Plus} {
		_, err := NewNegotiator(mech, noPlus)
		wantFailure(t, err, "invalid-mechanism")
	}
	limited := cfg
	limited.Offered = []string{SCRAMSHA256Plus}
	_, err = NewNegotiator(SCRAMSHA1, limited)
	wantFailure(t, err, "invalid-mechanism")
}

func TestChannelBindingMismatch(t *testing.T) {
	ctx := context.Background()
	_, cfg := plusSetup(t)
	cases := []struct {
		name   string
		cbType string
		header string // GS2 header the client puts in c= ("" = its own)
		data   string
	}{
		{"other connection's exporter", TLSExporter, "", "exporter-B"},
		{"other certificate", TLSServerEndPoint, "", "other-cert"},
		{"binding data left out", TLSExporter, "", ""},
		{"binding data of the other type", TLSExporter, "", "cert-hash"},
		{"header of no binding", TLSExporter, "n,,", ""},
		{"header of another type", TLSExporter, "p=tls-server-end-point,,", "exporter-A"},
		{"data with a suffix", TLSExporter, "", "exporter-Ax"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			n := mustNegotiator(t, SCRAMSHA256Plus, cfg)
			c := newTestClient(SCRAMSHA256Plus, "juliet", "romeo")
			c.cbType = tc.cbType
			sf, _, err := n.Step(ctx, c.first())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.final(sf); err != nil { // derives the keys
				t.Fatal(err)
			}
			header := tc.header
			if header == "" {
				header = c.gs2
			}
			nonce := strings.Split(string(sf), ",")[0][2:]
			wp := "c=" + b64(header+tc.data) + ",r=" + nonce
			// The proof is right for what is sent: only the binding
			// is wrong.
			_, done, err := n.Step(ctx, c.finalWith(string(sf), wp))
			if f := wantFailure(t, err, "not-authorized"); f.Text != "channel binding does not match" || done {
				t.Fatalf("failure %q done=%v", f.Text, done)
			}
			if n.Username() != "" {
				t.Fatal("Username set")
			}
		})
	}
}

// TestSSDPDetectsStripping plays a man in the middle who removed the -PLUS
// mechanisms (or the strong binding type) from the features: the client,
// checking the server's h= against what it saw, stops before sending its
// proof. Without tampering the same check passes.
func TestSSDPDetectsStripping(t *testing.T) {
	ctx := context.Background()
	_, cfg := plusSetup(t)
	stripped := []struct {
		name string
		saw  offer
	}{
		{"-PLUS removed", offer{Mechanisms(true), nil}},
		{"tls-exporter removed", offer{cfg.Offered, []string{TLSServerEndPoint}}},
		{"SCRAM-SHA-256 removed", offer{[]string{SCRAMSHA1Plus, SCRAMSHA1, Plain}, cfg.ChannelBinding.Types}},
		{"mechanism added", offer{append([]string{"SCRAM-SHA-512"}, cfg.Offered...), cfg.ChannelBinding.Types}},
	}
	for _, mech := range []string{SCRAMSHA256, SCRAMSHA1} {
		for _, s := range stripped {
			t.Run(mech+"/"+s.name, func(t *testing.T) {
				n := mustNegotiator(t, mech, cfg)
				c := newTestClient(mech, "juliet", "romeo")
				c.ssdp = &s.saw
				sf, _, err := n.Step(ctx, c.first())
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.final(sf); !errors.Is(err, errDowngrade) {
					t.Fatalf("client did not detect the tampering: %v", err)
				}
			})
		}
		t.Run(mech+"/untouched", func(t *testing.T) {
			c := newTestClient(mech, "juliet", "romeo")
			c.ssdp = &offer{cfg.Offered, cfg.ChannelBinding.Types}
			if _, err := exchange(t, mech, cfg, c); err != nil {
				t.Fatal(err)
			}
		})
	}

	// A man in the middle who also rewrites h= to match his list breaks
	// the proof: the client signs the server-first-message it got.
	n := mustNegotiator(t, SCRAMSHA256, cfg)
	c := newTestClient(SCRAMSHA256, "juliet", "romeo")
	fake := offer{Mechanisms(true), nil}
	c.ssdp = &fake
	sf, _, err := n.Step(ctx, c.first())
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(sf), ",h=")
	forged := string(sf[:i]) + ",h=" + c.ssdpHash(fake)
	cf, err := c.final([]byte(forged))
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = n.Step(ctx, cf)
	wantFailure(t, err, "not-authorized")

	// No Offered, no h=: nothing is claimed.
	m2, _ := plusSetup(t)
	n = mustNegotiator(t, SCRAMSHA256, m2.config())
	sf, _, _ = n.Step(ctx, newTestClient(SCRAMSHA256, "juliet", "romeo").first())
	if strings.Contains(string(sf), ",h=") {
		t.Errorf("h= without an offer: %q", sf)
	}
}

func TestMechanismsFor(t *testing.T) {
	cb := fixedCB(nil, TLSServerEndPoint)
	if got, want := MechanismsFor(true, cb), []string{SCRAMSHA256Plus, SCRAMSHA1Plus, SCRAMSHA256, SCRAMSHA1, Plain}; !reflect.DeepEqual(got, want) {
		t.Errorf("with binding: %v, want %v", got, want)
	}
	if got := MechanismsFor(true, ChannelBinding{}); !reflect.DeepEqual(got, Mechanisms(true)) {
		t.Errorf("without binding: %v", got)
	}
	if got := MechanismsFor(true, ChannelBinding{Types: []string{TLSExporter}}); len(got) != 3 {
		t.Errorf("types without Data offer -PLUS: %v", got)
	}
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// selfSigned makes a certificate signed with key (its own public key).
func selfSigned(t *testing.T, key crypto.Signer) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

// tlsPair runs one TLS handshake over an in-memory pipe and returns the
// server's and the client's connection states.
func tlsPair(t *testing.T, cert tls.Certificate, maxVersion uint16) (server, client tls.ConnectionState) {
	t.Helper()
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	deadline := time.Now().Add(5 * time.Second)
	a.SetDeadline(deadline)
	b.SetDeadline(deadline)
	sc := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: maxVersion})
	cc := tls.Client(b, &tls.Config{InsecureSkipVerify: true, MaxVersion: maxVersion})
	errc := make(chan error, 1)
	go func() { errc <- sc.Handshake() }()
	if err := cc.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return sc.ConnectionState(), cc.ConnectionState()
}

// TestTLSChannelBinding checks the binding data against what the client
// side of crypto/tls computes, and logs in over one TLS connection with
// another connection's exporter value: refused.
func TestTLSChannelBinding(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert := selfSigned(t, ec)
	s1, c1 := tlsPair(t, cert, 0)
	s2, c2 := tlsPair(t, cert, 0)
	cb1 := TLSChannelBinding(&s1, cert.Leaf)
	cb2 := TLSChannelBinding(&s2, cert.Leaf)
	if want := []string{TLSExporter, TLSServerEndPoint}; !reflect.DeepEqual(cb1.Types, want) {
		t.Fatalf("TLS 1.3 types %v, want %v", cb1.Types, want)
	}
	exp1, err := cb1.Data(TLSExporter)
	if err != nil {
		t.Fatal(err)
	}
	exp2, _ := cb2.Data(TLSExporter)
	clientExp1, _ := c1.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
	clientExp2, _ := c2.ExportKeyingMaterial("EXPORTER-Channel-Binding", []byte{}, 32)
	if len(exp1) != 32 || !bytes.Equal(exp1, clientExp1) || !bytes.Equal(exp2, clientExp2) {
		t.Fatalf("exporter: server %x, client %x", exp1, clientExp1)
	}
	if bytes.Equal(exp1, exp2) {
		t.Fatal("two connections share an exporter value")
	}
	// tls-server-end-point: SHA-256 of the certificate the client got.
	sep, _ := cb1.Data(TLSServerEndPoint)
	if want := sha256.Sum256(c1.PeerCertificates[0].Raw); !bytes.Equal(sep, want[:]) {
		t.Fatalf("tls-server-end-point %x, want %x", sep, want)
	}
	if _, err := cb1.Data("tls-unique"); err == nil {
		t.Error("tls-unique data")
	}

	m := newMemStore()
	m.add(t, "juliet", "romeo", testIterations)
	for _, tc := range []struct {
		name   string
		typ    string
		data   []byte
		wantOK bool
	}{
		{"own exporter", TLSExporter, clientExp2, true},
		{"other connection's exporter", TLSExporter, clientExp1, false},
		{"certificate hash", TLSServerEndPoint, sep, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := m.config()
			cfg.ChannelBinding = cb2 // the exchange runs on connection 2
			cfg.Offered = MechanismsFor(true, cb2)
			c := newTestClient(SCRAMSHA256Plus, "juliet", "romeo")
			c.cbType, c.cbData = tc.typ, tc.data
			c.ssdp = &offer{cfg.Offered, cb2.Types}
			_, err := exchange(t, SCRAMSHA256Plus, cfg, c)
			if tc.wantOK && err != nil {
				t.Fatal(err)
			}
			if !tc.wantOK {
				wantFailure(t, err, "not-authorized")
			}
		})
	}

	// TLS 1.2: no tls-exporter (XEP-0440 expects it on 1.3 only).
	s12, _ := tlsPair(t, cert, tls.VersionTLS12)
	if cb := TLSChannelBinding(&s12, cert.Leaf); !reflect.DeepEqual(cb.Types, []string{TLSServerEndPoint}) {
		t.Errorf("TLS 1.2 types %v", cb.Types)
	}
	// No TLS, or no known certificate on TLS 1.2: nothing.
	if cb := TLSChannelBinding(nil, cert.Leaf); cb.Available() {
		t.Error("binding without TLS")
	}
	if cb := TLSChannelBinding(&s12, nil); cb.Available() {
		t.Errorf("TLS 1.2 without certificate: %v", cb.Types)
	}
}

func TestServerEndPoint(t *testing.T) {
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	tests := []struct {
		name string
		cert *x509.Certificate
		hash crypto.Hash // 0: undefined
	}{
		{"ECDSA P-384 (SHA-384)", selfSigned(t, ec384).Leaf, crypto.SHA384},
		{"RSA (SHA-256)", selfSigned(t, rsaKey).Leaf, crypto.SHA256},
		{"Ed25519 (no hash)", selfSigned(t, edKey).Leaf, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ServerEndPoint(tc.cert)
			if tc.hash == 0 {
				if ok {
					t.Fatalf("defined for %v", tc.cert.SignatureAlgorithm)
				}
				return
			}
			h := tc.hash.New()
			h.Write(tc.cert.Raw)
			if !ok || !bytes.Equal(got, h.Sum(nil)) {
				t.Fatalf("%v: %x ok=%v", tc.cert.SignatureAlgorithm, got, ok)
			}
		})
	}
	// SHA-1 signatures are hashed with SHA-256 (RFC 5929 §4.1).
	sha1Cert := &x509.Certificate{Raw: []byte("der"), SignatureAlgorithm: x509.SHA1WithRSA}
	want := sha256.Sum256([]byte("der"))
	if got, ok := ServerEndPoint(sha1Cert); !ok || !bytes.Equal(got, want[:]) {
		t.Errorf("SHA-1 certificate: %x", got)
	}
	if _, ok := ServerEndPoint(nil); ok {
		t.Error("nil certificate")
	}
}
