package fault_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"bluetick/internal/natstest"
	"bluetick/internal/xmpptest"
)

// The ACME test runs Let's Encrypt's test CA, Pebble (go.mod's tool
// section: go get -tool github.com/letsencrypt/pebble/v2/cmd/pebble), on
// loopback, with real HTTP-01 validation: Pebble resolves the test domain
// through a DNS responder in this test (every name is 127.0.0.1) and
// fetches the challenge from the server's HTTP listener (its httpPort).
const acmeDomain = "bluetick.test"

// pebbleCA is a running Pebble.
type pebbleCA struct {
	dir    string // ACME directory URL
	mgmt   string // management API base URL (roots)
	rootCA string // PEM file of the root Pebble's HTTPS is signed by
	client *http.Client
}

// startPebble builds and starts Pebble. Its validation requests go to
// httpPort on 127.0.0.1, names resolve through dnsAddr; certificates live
// validity seconds.
func startPebble(t *testing.T, httpPort, dnsAddr string, validity int) *pebbleCA {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "pebble")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/letsencrypt/pebble/v2/cmd/pebble").CombinedOutput(); err != nil {
		t.Fatalf("building Pebble, the ACME test CA: %v\n%s\nfix: it is a tool of go.mod (go get -tool github.com/letsencrypt/pebble/v2/cmd/pebble@v2.10.3); run go mod download with the module proxy reachable", err, out)
	}
	// Pebble's own HTTPS certificate, from a root the server is told to
	// trust with tls.acme_ca_root.
	rootPEM, certPEM, keyPEM := loopbackPKI(t)
	p := &pebbleCA{rootCA: filepath.Join(dir, "root.pem")}
	for name, b := range map[string][]byte{"root.pem": rootPEM, "cert.pem": certPEM, "key.pem": keyPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	listen := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	mgmt := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	hp, _ := strconv.Atoi(httpPort)
	conf := map[string]any{"pebble": map[string]any{
		"listenAddress":                  listen,
		"managementListenAddress":        mgmt,
		"certificate":                    filepath.Join(dir, "cert.pem"),
		"privateKey":                     filepath.Join(dir, "key.pem"),
		"httpPort":                       hp,
		"tlsPort":                        natstest.FreePort(t), // TLS-ALPN-01 is not used
		"ocspResponderURL":               "",
		"externalAccountBindingRequired": false,
		"retryAfter":                     map[string]int{"authz": 1, "order": 1},
		"keyAlgorithm":                   "ecdsa",
		"profiles": map[string]any{"default": map[string]any{
			"description": "short-lived, so that a renewal happens within the test", "validityPeriod": validity,
		}},
	}}
	b, _ := json.Marshal(conf)
	if err := os.WriteFile(filepath.Join(dir, "pebble.json"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "pebble.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-config", filepath.Join(dir, "pebble.json"), "-dnsserver", dnsAddr)
	// No random sleep before validating, no rejected nonces: real
	// validation, just fast.
	cmd.Env = append(os.Environ(), "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0")
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting Pebble: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(filepath.Join(dir, "pebble.log"))
			t.Logf("=== end of Pebble log ===\n%s", lastLines(string(b), 30))
		}
	})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(rootPEM)
	p.client = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	p.dir, p.mgmt = "https://"+listen+"/dir", "https://"+mgmt
	deadline := time.Now().Add(15 * time.Second)
	for {
		if r, err := p.client.Get(p.dir); err == nil {
			r.Body.Close()
			if r.StatusCode == 200 {
				return p
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(filepath.Join(dir, "pebble.log"))
			t.Fatalf("Pebble exited at start:\n%s", b)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("Pebble not serving its directory after 15 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// issuingRoots is the pool of Pebble's issuing root (a new one per run).
func (p *pebbleCA) issuingRoots(t *testing.T) *x509.CertPool {
	t.Helper()
	r, err := p.client.Get(p.mgmt + "/roots/0")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Body.Close()
	b, _ := io.ReadAll(r.Body)
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		t.Fatalf("Pebble's root: %s", b)
	}
	return pool
}

// loopbackPKI makes a root and a certificate for 127.0.0.1 and localhost
// signed by it.
func loopbackPKI(t *testing.T) (rootPEM, certPEM, keyPEM []byte) {
	t.Helper()
	rootKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	root := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Pebble HTTPS test root"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, &rootKey.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	root, _ = x509.ParseCertificate(rootDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, leaf, root, &key.PublicKey, rootKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalPKCS8PrivateKey(key)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: rootDER}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb})
}

// startDNS answers every A query with 127.0.0.1 (and nothing else), on
// UDP and TCP of one loopback port, for Pebble's -dnsserver.
func startDNS(t *testing.T) string {
	t.Helper()
	h := dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		m.Authoritative = true
		for _, q := range r.Question {
			if q.Qtype == dns.TypeA {
				m.Answer = append(m.Answer, &dns.A{
					Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60},
					A:   net.IPv4(127, 0, 0, 1).To4(),
				})
			}
		}
		w.WriteMsg(m)
	})
	// The kernel picks a free UDP port; the same number may be taken on
	// TCP by another test's listener, so try again with a new one.
	var pc net.PacketConn
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		p, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("tcp", p.LocalAddr().String())
		if err != nil {
			p.Close()
			if attempt == 50 {
				t.Fatal(err)
			}
			continue
		}
		pc, ln = p, l
	}
	udp, tcp := &dns.Server{PacketConn: pc, Handler: h}, &dns.Server{Listener: ln, Handler: h}
	go udp.ActivateAndServe()
	go tcp.ActivateAndServe()
	t.Cleanup(func() { udp.Shutdown(); tcp.Shutdown() })
	return pc.LocalAddr().String()
}

// acmeServed dials the direct-TLS port for name and returns the leaf the
// server presents if it verifies against roots, else nil and why.
func acmeServed(addr, name string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: name, RootCAs: roots, NextProtos: []string{"xmpp-client"}})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0], nil
}

// TestACMEWithPebble: with tls.acme the server obtains its certificate
// from the CA (HTTP-01 answered on its HTTP listener), serves it on the
// direct-TLS port, and renews it in the background: a later connection
// gets a new certificate from the same process.
func TestACMEWithPebble(t *testing.T) {
	start := time.Now()
	dnsAddr := startDNS(t)
	s := newServer(t, "", 0)
	s.c2sTLS = fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	_, httpPort, _ := net.SplitHostPort(s.http)
	// 30 s certificates: certmagic renews a third of the lifetime before
	// the end, so about 20 s after issue; it checks every second.
	ca := startPebble(t, httpPort, dnsAddr, 30)
	s.config = filepath.Join(s.dir, "bluetick.toml")
	https := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	conf := fmt.Sprintf(`domain = %q
[listen]
https = %q
[tls]
acme = true
acme_email = "ops@example.com"
acme_ca = %q
acme_ca_root = %q
acme_renew_check = "1s"
`, acmeDomain, https, ca.dir, ca.rootCA)
	if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.start()
	roots := ca.issuingRoots(t)

	waitCert := func(name string, unlike *x509.Certificate, within time.Duration) *x509.Certificate {
		t.Helper()
		deadline := time.Now().Add(within)
		var last error
		for time.Now().Before(deadline) {
			select {
			case <-s.exited:
				t.Fatal("bluetick exited")
			default:
			}
			leaf, err := acmeServed(s.c2sTLS, name, roots)
			if err == nil && (unlike == nil || leaf.SerialNumber.Cmp(unlike.SerialNumber) != 0) {
				return leaf
			}
			last = err
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatalf("%s: no new certificate from Pebble on the direct-TLS port within %v (last: %v)", name, within, last)
		return nil
	}
	first := waitCert(acmeDomain, nil, 20*time.Second)
	t.Logf("obtained %v after %v: serial %x, %v to %v", first.DNSNames, time.Since(start).Round(time.Millisecond),
		first.SerialNumber, first.NotBefore.Format(time.TimeOnly), first.NotAfter.Format(time.TimeOnly))
	if err := first.VerifyHostname(acmeDomain); err != nil {
		t.Fatal(err)
	}
	// The HTTPS listener serves Pebble's certificate too.
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: acmeDomain},
	}}
	r, err := hc.Get("https://" + https + "/healthz")
	if err != nil {
		t.Fatalf("HTTPS with the ACME certificate: %v", err)
	}
	r.Body.Close()
	// (Verified against Pebble's root by the handshake. Not compared by
	// serial: with 30-second certificates a renewal may fall in between.)
	if err := r.TLS.PeerCertificates[0].VerifyHostname(acmeDomain); err != nil {
		t.Fatalf("HTTPS: %v", err)
	}
	// And STARTTLS on the c2s port.
	xc := xmpptest.Dial(t, s.c2s, acmeDomain)
	xc.StartTLS(&tls.Config{RootCAs: roots, ServerName: acmeDomain})
	if err := xc.TLSState().PeerCertificates[0].VerifyHostname(acmeDomain); err != nil {
		t.Fatalf("STARTTLS: %v", err)
	}
	xc.Conn.Close()
	// The group chat domain has its own.
	if g := waitCert("groups."+acmeDomain, nil, 10*time.Second); g.VerifyHostname("groups."+acmeDomain) != nil {
		t.Fatalf("groups.%s served %v", acmeDomain, g.DNSNames)
	}
	// Stored under the data directory.
	if m, _ := filepath.Glob(filepath.Join(s.dir, "acme", "certificates", "*", acmeDomain, acmeDomain+".crt")); len(m) != 1 {
		t.Fatalf("no certificate for %s under data_dir/acme: %v", acmeDomain, m)
	}

	renewed := waitCert(acmeDomain, first, 35*time.Second)
	t.Logf("renewed after %v: serial %x, %v to %v", time.Since(start).Round(time.Millisecond),
		renewed.SerialNumber, renewed.NotBefore.Format(time.TimeOnly), renewed.NotAfter.Format(time.TimeOnly))
	if !renewed.NotAfter.After(first.NotAfter) {
		t.Fatalf("renewed certificate ends %v, not after the first's %v", renewed.NotAfter, first.NotAfter)
	}
	if s.starts != 1 {
		t.Fatalf("server started %d times", s.starts)
	}
	b, _ := os.ReadFile(s.logPath)
	if !strings.Contains(string(b), "certificate obtained") || !strings.Contains(string(b), "renewal=true") {
		t.Errorf("no \"certificate obtained\" with renewal=true in the server log")
	}
}

// TestACMESharedStorage: two servers for one domain share
// tls.acme_storage, as cluster nodes on a shared file system would, and
// the CA's HTTP-01 requests reach only the first, a (the balancer's
// pick). The domain's certificate is ordered once and both serve it; b
// alone has groups on, so it orders groups.<domain> itself, and a answers
// that challenge from the token b left in the shared storage.
func TestACMESharedStorage(t *testing.T) {
	dnsAddr := startDNS(t)
	shared := t.TempDir()
	a, b := newServer(t, "", 0), newServer(t, "", 0)
	_, httpPort, _ := net.SplitHostPort(a.http)
	ca := startPebble(t, httpPort, dnsAddr, 3600)
	for _, s := range []*server{a, b} {
		s.c2sTLS = fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
		s.config = filepath.Join(s.dir, "bluetick.toml")
		conf := fmt.Sprintf(`domain = %q
[muc]
enabled = %v
[tls]
acme = true
acme_ca = %q
acme_ca_root = %q
acme_storage = %q
`, acmeDomain, s == b, ca.dir, ca.rootCA, shared)
		if err := os.WriteFile(s.config, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a.start()
	b.start()
	roots := ca.issuingRoots(t)
	served := func(s *server, name string) *x509.Certificate {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			leaf, err := acmeServed(s.c2sTLS, name, roots)
			if err == nil {
				return leaf
			}
			if time.Now().After(deadline) {
				t.Fatalf("server on %s: no certificate for %s from Pebble within 20 s: %v", s.c2sTLS, name, err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	ca1, cb1 := served(a, acmeDomain), served(b, acmeDomain)
	if ca1.SerialNumber.Cmp(cb1.SerialNumber) != 0 {
		t.Fatalf("the two servers serve different certificates for %s (%x, %x), want the one ordered once", acmeDomain, ca1.SerialNumber, cb1.SerialNumber)
	}
	if g := served(b, "groups."+acmeDomain); g.VerifyHostname("groups."+acmeDomain) != nil {
		t.Fatalf("groups: %v", g.DNSNames)
	}
	logA, _ := os.ReadFile(a.logPath)
	logB, _ := os.ReadFile(b.logPath)
	orders := strings.Count(string(logA)+string(logB), "msg=\"certificate obtained\" component=acme identifier="+acmeDomain+" ")
	if orders != 1 {
		t.Fatalf("%s ordered %d times by two servers sharing acme_storage, want 1", acmeDomain, orders)
	}
	if !strings.Contains(string(logB), "msg=\"certificate obtained\" component=acme identifier=groups."+acmeDomain) {
		t.Fatalf("b did not order groups.%s", acmeDomain)
	}
	answered := false
	for _, l := range strings.Split(string(logA), "\n") {
		answered = answered || strings.Contains(l, "served key authentication") &&
			strings.Contains(l, "distributed=true") && strings.Contains(l, "identifier=groups."+acmeDomain)
	}
	if !answered {
		t.Fatalf("a did not answer b's challenge for groups.%s from the shared storage", acmeDomain)
	}
}
