package interop

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// 28. Channel binding (SCRAM-*-PLUS, XEP-0440, XEP-0474) with a real
// client that does it: github.com/xmppo/go-xmpp v0.4.1 (go-sendxmpp's
// library; Debian's go-sendxmpp 0.5.6 predates its -PLUS support), built
// from clients/goxmpp. Then the same client through a man in the middle
// who ends its TLS and opens his own to bluetick: with a certificate of his
// own, or with bluetick's stolen key, relaying or stripping the offer.
func testChannelBinding(t *testing.T) {
	bin := buildGoXMPP(t)
	s := startServer(t, "alice")
	run := func(t *testing.T, args map[string]any) event {
		t.Helper()
		args["user"] = "alice"
		p := start(t, "go-xmpp", nil, bin, s.config(args))
		evs := p.finish(t)
		for _, e := range evs {
			if e.name() == "login" || e.name() == "login_failed" {
				return e
			}
		}
		t.Fatalf("go-xmpp reported no login outcome: %v", evs)
		return nil
	}
	wantLogin := func(t *testing.T, e event, gs2 string) {
		t.Helper()
		if e.name() != "login" {
			t.Fatalf("go-xmpp did not log in: %s", e)
		}
		if e.str("mechanism") != "SCRAM-SHA-256-PLUS" || e.str("gs2") != gs2 || !e.boolean("h") {
			t.Errorf("login with %s, GS2 %q, h= seen %v; want SCRAM-SHA-256-PLUS, %q and the XEP-0474 hash", e.str("mechanism"), e.str("gs2"), e.boolean("h"), gs2)
		}
		fullJIDOf(t, "alice", e.str("jid"))
	}
	wantRefused := func(t *testing.T, e event, gs2, text string) {
		t.Helper()
		if e.name() != "login_failed" {
			t.Fatalf("go-xmpp logged in through the man in the middle: %s", e)
		}
		if e.str("gs2") != gs2 || !strings.Contains(e.str("error"), text) {
			t.Errorf("GS2 %q, error %q; want %q and %q", e.str("gs2"), e.str("error"), gs2, text)
		}
	}

	t.Run("direct_tls13_exporter", func(t *testing.T) {
		wantLogin(t, run(t, map[string]any{"mode": "direct", "ssdp": true}), "p=tls-exporter")
	})
	t.Run("starttls_tls13_exporter", func(t *testing.T) {
		wantLogin(t, run(t, map[string]any{"mode": "starttls", "ssdp": true}), "p=tls-exporter")
	})
	t.Run("tls12_server_end_point", func(t *testing.T) {
		// No tls-exporter below TLS 1.3: the certificate hash.
		wantLogin(t, run(t, map[string]any{"mode": "direct", "tls_max": 12, "ssdp": true}), "p=tls-server-end-point")
	})

	target := fmt.Sprintf("127.0.0.1:%d", s.tls)
	stolen, err := tls.LoadX509KeyPair(filepath.Join(s.dir, "cert.pem"), filepath.Join(s.dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	own := selfSignedCert(t)

	t.Run("mitm_own_cert_exporter", func(t *testing.T) {
		port := startMITM(t, target, own, 0, nil)
		wantRefused(t, run(t, map[string]any{"mode": "direct", "port": port, "ssdp": true}), "p=tls-exporter", "channel binding does not match")
	})
	t.Run("mitm_own_cert_server_end_point", func(t *testing.T) {
		// TLS 1.2 on both sides: only tls-server-end-point is offered.
		port := startMITM(t, target, own, tls.VersionTLS12, nil)
		wantRefused(t, run(t, map[string]any{"mode": "direct", "port": port, "tls_max": 12, "ssdp": true}), "p=tls-server-end-point", "channel binding does not match")
	})
	t.Run("mitm_stolen_key_exporter", func(t *testing.T) {
		// The certificate is bluetick's own, but the TLS connection is
		// not: tls-exporter tells.
		port := startMITM(t, target, stolen, 0, nil)
		wantRefused(t, run(t, map[string]any{"mode": "direct", "port": port, "ssdp": true}), "p=tls-exporter", "channel binding does not match")
	})

	// With the stolen key, tls-server-end-point would pass the man in the
	// middle: he removes tls-exporter from the offer to make the client
	// fall back to it. XEP-0474 catches that; a client not checking the
	// hash is fooled (shown to prove the stripping works).
	noExporter := regexp.MustCompile(`<channel-binding type=['"]tls-exporter['"]/>`)
	stripExporter := func(s string) string { return noExporter.ReplaceAllString(s, "") }
	t.Run("mitm_strips_tls_exporter_ssdp", func(t *testing.T) {
		port := startMITM(t, target, stolen, 0, stripExporter)
		wantRefused(t, run(t, map[string]any{"mode": "direct", "port": port, "ssdp": true}), "p=tls-server-end-point", "downgrade protection hash mismatch")
	})
	t.Run("mitm_strips_tls_exporter_no_ssdp", func(t *testing.T) {
		port := startMITM(t, target, stolen, 0, stripExporter)
		e := run(t, map[string]any{"mode": "direct", "port": port})
		if e.name() != "login" || e.str("gs2") != "p=tls-server-end-point" {
			t.Fatalf("the stripping did not work as expected: %s", e)
		}
	})

	// Without any -PLUS or binding type the client that does channel
	// binding says "y"; bluetick offered -PLUS, so it refuses.
	noPlus := regexp.MustCompile(`<mechanism>[A-Z0-9-]+-PLUS</mechanism>|<sasl-channel-binding .*?</sasl-channel-binding>`)
	t.Run("mitm_strips_plus_y_refused", func(t *testing.T) {
		port := startMITM(t, target, own, 0, func(s string) string { return noPlus.ReplaceAllString(s, "") })
		wantRefused(t, run(t, map[string]any{"mode": "direct", "port": port}), "y", "downgrade detected")
	})
}

// buildGoXMPP builds clients/goxmpp, its own module so that its dependency
// stays out of bluetick's go.mod (the Go build cache makes it quick after
// the first time).
func buildGoXMPP(t *testing.T) string {
	t.Helper()
	if skipAll() {
		t.Skip("BLUETICK_INTEROP_SKIP=1")
	}
	goTool := "go"
	if _, err := exec.LookPath(goTool); err != nil {
		goTool = "/usr/local/go/bin/go"
	}
	bin := filepath.Join(t.TempDir(), "goxmpp")
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(clientsDir, "goxmpp")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build in clients/goxmpp (it needs github.com/xmppo/go-xmpp from the Go module proxy or the module cache): %v\n%s", err, out)
	}
	return bin
}

// selfSignedCert is a certificate for localhost that is not bluetick's.
func selfSignedCert(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: domain},
		DNSNames:     []string{domain},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// startMITM listens on a loopback port in front of bluetick's direct-TLS
// port target: it ends each client's TLS with cert, opens its own TLS to
// bluetick and relays both ways, passing what bluetick sends up to its
// first </stream:features> through rewrite (nil: unchanged). Connections
// live at most 25 s; everything stops at the end of the test. upMax caps
// the TLS version towards bluetick (0: TLS 1.3).
func startMITM(t *testing.T, target string, cert tls.Certificate, upMax uint16, rewrite func(string) string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	serverCfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				relay(c, target, serverCfg, upMax, rewrite)
			}()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func relay(c net.Conn, target string, serverCfg *tls.Config, upMax uint16, rewrite func(string) string) {
	defer c.Close()
	deadline := time.Now().Add(25 * time.Second)
	c.SetDeadline(deadline)
	client := tls.Server(c, serverCfg)
	if err := client.Handshake(); err != nil {
		return
	}
	up, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", target, &tls.Config{InsecureSkipVerify: true, ServerName: domain, MaxVersion: upMax})
	if err != nil {
		return
	}
	defer up.Close()
	up.SetDeadline(deadline)
	done := make(chan struct{}, 2)
	go func() { io.Copy(up, client); up.CloseWrite(); done <- struct{}{} }()
	go func() {
		defer func() { client.CloseWrite(); done <- struct{}{} }()
		if rewrite != nil {
			// Hold bluetick's bytes until the first features are
			// complete (64 KiB at most), rewrite them, then relay.
			var buf bytes.Buffer
			b := make([]byte, 4096)
			for !bytes.Contains(buf.Bytes(), []byte("</stream:features>")) && buf.Len() < 64<<10 {
				n, err := up.Read(b)
				buf.Write(b[:n])
				if err != nil {
					break
				}
			}
			if _, err := io.WriteString(client, rewrite(buf.String())); err != nil {
				return
			}
		}
		if _, err := io.Copy(client, up); err != nil && !errors.Is(err, net.ErrClosed) {
			return
		}
	}()
	<-done
	<-done
}
