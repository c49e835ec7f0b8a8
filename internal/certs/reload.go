package certs

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// Files is the certificate of a pair of PEM files, served through
// tls.Config.GetCertificate so that Reload can replace it for new
// connections while the server runs (SIGHUP). Connections already
// established keep the certificate they were handshaken with.
type Files struct {
	certFile, keyFile string
	cur               atomic.Pointer[tls.Certificate]
	changed           atomic.Int64 // Unix nanoseconds of the last Reload that changed cur
}

// OpenFiles loads certFile/keyFile, or, when both are empty, the
// self-signed certificate for domain kept in dir (created on first use),
// as Load does.
func OpenFiles(certFile, keyFile, dir, domain string) (*Files, error) {
	if certFile == "" {
		certFile = filepath.Join(dir, "cert.pem")
		keyFile = filepath.Join(dir, "key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := generate(certFile, keyFile, domain); err != nil {
				return nil, fmt.Errorf("generating self-signed certificate in %s: %w", dir, err)
			}
		}
	}
	f := &Files{certFile: certFile, keyFile: keyFile}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// Reload reads the files again and, only if they hold a valid key pair,
// serves the new certificate to new connections; on error the old one
// stays.
func (f *Files) Reload() error {
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		return fmt.Errorf("tls: %v (check tls.cert_file and tls.key_file)", err)
	}
	// LoadX509KeyPair fills Leaf (Go 1.23+); parse it if not, for the
	// log line and channel binding.
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return fmt.Errorf("tls: %s: %v", f.certFile, err)
		}
	}
	if f.cur.Swap(&cert) != nil {
		f.changed.Store(time.Now().UnixNano())
	}
	return nil
}

// Leaf is the certificate served now.
func (f *Files) Leaf() *x509.Certificate { return f.cur.Load().Leaf }

// GetCertificate is the tls.Config callback: the current certificate,
// whatever name the client asked for.
func (f *Files) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return f.cur.Load(), nil
}

// TLSConfig is the server configuration for c2s (STARTTLS and direct TLS)
// serving the current certificate.
func (f *Files) TLSConfig() *tls.Config {
	return serverConfig(f.GetCertificate, &f.changed)
}

// serverConfig is Bluetick's TLS server configuration around a
// certificate callback. changed holds when the certificates last changed
// (Unix nanoseconds): a session ticket issued before that (or within a
// second after) is not resumed, so a resumed connection always carries
// the certificate served now, which channel binding (tls-server-end-point)
// relies on; the client falls back to a full handshake.
func serverConfig(get func(*tls.ClientHelloInfo) (*tls.Certificate, error), changed *atomic.Int64) *tls.Config {
	c := &tls.Config{
		GetCertificate: get,
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"xmpp-client"}, // XEP-0368 ALPN
	}
	c.WrapSession = func(cs tls.ConnectionState, ss *tls.SessionState) ([]byte, error) {
		ss.Extra = append(ss.Extra, binary.BigEndian.AppendUint64([]byte(ticketIssued), uint64(time.Now().UnixNano())))
		return c.EncryptTicket(cs, ss)
	}
	c.UnwrapSession = func(identity []byte, cs tls.ConnectionState) (*tls.SessionState, error) {
		ss, err := c.DecryptTicket(identity, cs)
		if err != nil || ss == nil {
			return nil, err
		}
		for _, e := range ss.Extra {
			if v, ok := bytes.CutPrefix(e, []byte(ticketIssued)); ok && len(v) == 8 &&
				int64(binary.BigEndian.Uint64(v)) > changed.Load()+int64(time.Second) {
				return ss, nil
			}
		}
		return nil, nil // a full handshake
	}
	return c
}

// ticketIssued prefixes the issue time in a session ticket's Extra.
const ticketIssued = "bluetick-issued:"
