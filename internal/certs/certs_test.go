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
