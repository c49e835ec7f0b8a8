package certs

import (
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestReloadKeepsOldOnError: Reload swaps in new files and keeps serving
// the old certificate when the new ones do not load.
func TestReloadKeepsOldOnError(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFiles("", "", dir, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	first := f.Leaf()
	// A new self-signed pair in place of the old one.
	os.Remove(filepath.Join(dir, "cert.pem"))
	if err := generate(filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), "b.example"); err != nil {
		t.Fatal(err)
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	second := f.Leaf()
	if second.Subject.CommonName != "b.example" || second.SerialNumber.Cmp(first.SerialNumber) == 0 {
		t.Fatalf("after reload: %v", second.Subject)
	}
	os.WriteFile(filepath.Join(dir, "cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nMIIB\n"), 0o644)
	if err := f.Reload(); err == nil {
		t.Fatal("broken file reloaded")
	}
	c, _ := f.GetCertificate(&tls.ClientHelloInfo{ServerName: "b.example"})
	if c.Leaf != second {
		t.Fatal("broken file replaced the certificate")
	}
}

// TestACMEFallback: before a certificate is obtained, handshakes get the
// fallback (the self-signed certificate) instead of failing.
func TestACMEFallback(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFiles("", "", dir, "chat.example.com")
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewACME(ACMEOptions{Names: []string{"chat.example.com"}, Storage: filepath.Join(dir, "acme"), HTTPListen: "127.0.0.1:0", Fallback: f})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	for _, hello := range []*tls.ClientHelloInfo{{ServerName: "chat.example.com", Conn: c1}, {ServerName: "chat.example.com"}, {}} {
		c, err := a.GetCertificate(hello)
		if err != nil || c.Leaf != f.Leaf() {
			t.Fatalf("%+v: %v, %v", hello, c, err)
		}
	}
	if _, err := NewACME(ACMEOptions{Names: []string{"chat.example.com"}, CARoot: filepath.Join(dir, "cert.pem~")}); err == nil {
		t.Fatal("a missing acme_ca_root was accepted")
	}
}

// TestNoResumptionAcrossReload: a session ticket from before a reload is
// not resumed (a full handshake sends the new certificate), so a resumed
// session always carries the certificate served now.
func TestNoResumptionAcrossReload(t *testing.T) {
	dir := t.TempDir()
	f, err := OpenFiles("", "", dir, "a.example")
	if err != nil {
		t.Fatal(err)
	}
	srv := f.TLSConfig()
	cli := &tls.Config{InsecureSkipVerify: true, ServerName: "a.example", MaxVersion: tls.VersionTLS12,
		ClientSessionCache: tls.NewLRUClientSessionCache(4)}
	handshake := func() bool {
		t.Helper()
		c1, c2 := net.Pipe()
		defer c1.Close()
		defer c2.Close()
		errc := make(chan error, 1)
		go func() { errc <- tls.Server(c1, srv).Handshake() }()
		tc := tls.Client(c2, cli)
		if err := tc.Handshake(); err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		return tc.ConnectionState().DidResume
	}
	if handshake() {
		t.Fatal("first handshake resumed")
	}
	if !handshake() {
		t.Fatal("second handshake not resumed")
	}
	if err := f.Reload(); err != nil {
		t.Fatal(err)
	}
	if handshake() {
		t.Fatal("a ticket from before the reload was resumed")
	}
}
