package fault_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"bluetick/internal/xmpptest"
)

// writeCert writes a self-signed certificate for localhost named cn to
// certFile/keyFile, replacing them as an operator's renewal script would
// (a new file renamed over the old one).
func writeCert(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	replaceFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}))
	replaceFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}

// servedCN opens a STARTTLS connection to the server and returns the
// common name of the certificate it presents.
func servedCN(t *testing.T, s *server) string {
	t.Helper()
	c := xmpptest.Dial(t, s.c2s, "localhost")
	c.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: "localhost"})
	cn := c.TLSState().PeerCertificates[0].Subject.CommonName
	c.Conn.Close()
	return cn
}

// TestCertificateReloadOnSIGHUP: an operator who brings certificate files
// replaces them and sends SIGHUP; new connections get the new certificate
// without a restart, one already open keeps working, and a broken file
// is logged and leaves the previous certificate in place.
func TestCertificateReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "fullchain.pem"), filepath.Join(dir, "privkey.pem")
	writeCert(t, certFile, keyFile, "first")
	s := startServer(t, "[tls]\ncert_file = \""+certFile+"\"\nkey_file = \""+keyFile+"\"\n")
	if cn := servedCN(t, s); cn != "first" {
		t.Fatalf("served %q at start, want first", cn)
	}
	open := xmpptest.Dial(t, s.c2s, "localhost")
	open.Login(senderName(0), password, "before")

	hups := 0
	hup := func(want string) {
		t.Helper()
		if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, _ := os.ReadFile(s.logPath)
			if strings.Count(string(b), "SIGHUP: certificate") >= hups+1 && strings.Contains(lastLines(string(b), 5), want) {
				hups++
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %q in the log 5 s after SIGHUP:\n%s", want, lastLines(string(b), 10))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	writeCert(t, certFile, keyFile, "second")
	hup("certificate reloaded")
	if cn := servedCN(t, s); cn != "second" {
		t.Fatalf("served %q after replacing the files and SIGHUP, want second", cn)
	}
	// The session opened before the reload goes on over its connection.
	open.Send("<iq type='get' id='ping1'><ping xmlns='urn:xmpp:ping'/></iq>")
	if el := open.Expect("iq"); el.Attr("type") != "result" {
		t.Fatalf("ping on the connection opened before the reload: %v", el)
	}

	// A truncated certificate (a copy caught half-way) is refused and
	// the server keeps serving the one it has.
	replaceFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nMIIB\n"))
	hup("certificate not reloaded")
	if cn := servedCN(t, s); cn != "second" {
		t.Fatalf("served %q after a broken file and SIGHUP, want the previous one (second)", cn)
	}
	// And the process did not die of the signal.
	select {
	case <-s.exited:
		t.Fatal("bluetick exited after SIGHUP")
	default:
	}
}
