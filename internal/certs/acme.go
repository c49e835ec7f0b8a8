package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/caddyserver/certmagic"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// ACMEOptions configure automatic certificates (tls.acme).
type ACMEOptions struct {
	// Names get a certificate each; the first (the XMPP domain) is also
	// served to clients that send no SNI.
	Names []string
	// Email is the ACME account's contact (expiry warnings from the CA).
	Email string
	// CA is the ACME directory URL; empty is Let's Encrypt production.
	CA string
	// CARoot is a PEM file of roots to trust for the CA's HTTPS (a
	// private CA, Pebble in tests); empty trusts the system roots.
	CARoot string
	// Storage is the directory of certificates, keys and the account
	// (certmagic's file storage); shared between nodes it also shares
	// the challenge answers and the locks, so one node orders.
	Storage string
	// HTTPListen is listen.http: the HTTP-01 challenge is answered by the
	// server's HTTP mux there (HandleHTTPChallenge); knowing the address
	// keeps certmagic from opening a listener of its own.
	HTTPListen string
	// RenewCheck is how often the certificates' expiry is checked
	// (certmagic's default, 10 minutes, when zero).
	RenewCheck time.Duration
	// Fallback is served until a name has its first certificate.
	Fallback *Files
	Log      *slog.Logger
}

// ACME obtains and renews certificates from an ACME CA with certmagic
// and serves them through GetCertificate.
type ACME struct {
	magic    *certmagic.Config
	issuer   *certmagic.ACMEIssuer
	cache    *certmagic.Cache
	names    []string
	fallback *Files
	log      *slog.Logger
	changed  atomic.Int64 // Unix nanoseconds of the last certificate obtained
}

// NewACME prepares certificate management; Start begins it.
func NewACME(o ACMEOptions) (*ACME, error) {
	if len(o.Names) == 0 {
		return nil, errors.New("acme: no names")
	}
	log := o.Log
	if log == nil {
		log = slog.Default()
	}
	log = log.With("component", "acme")
	zl := zap.New(slogCore{log: log})
	a := &ACME{names: o.Names, fallback: o.Fallback, log: log}
	a.cache = certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert:   func(certmagic.Certificate) (*certmagic.Config, error) { return a.magic, nil },
		RenewCheckInterval: o.RenewCheck,
		Logger:             zl,
	})
	a.magic = certmagic.New(a.cache, certmagic.Config{
		Storage:           &certmagic.FileStorage{Path: o.Storage},
		DefaultServerName: o.Names[0],
		// A client asking for another name (a CNAME, an address) gets
		// the domain's certificate, as with files.
		FallbackServerName: o.Names[0],
		Logger:             zl,
		OnEvent:            a.event,
		// Only these: with OnEvent alone certmagic would build an event
		// for every handshake.
		ShouldEmitFunc: func(event string) bool {
			return event == "cert_obtained" || event == "cert_failed" || event == "cached_managed_cert"
		},
	})
	tmpl := certmagic.ACMEIssuer{
		CA:     o.CA,
		Email:  o.Email,
		Agreed: true,
		// HTTP-01 only: the CA fetches
		// http://<name>/.well-known/acme-challenge/<token> on port 80,
		// which must reach listen.http. TLS-ALPN-01 would need the
		// direct-TLS or HTTPS listener on port 443.
		DisableTLSALPNChallenge: true,
		Logger:                  zl,
	}
	if tmpl.CA == "" {
		tmpl.CA = certmagic.LetsEncryptProductionCA
	}
	if o.HTTPListen != "" {
		host, port, err := net.SplitHostPort(o.HTTPListen)
		if err != nil {
			return nil, fmt.Errorf("acme: listen.http %q: %v", o.HTTPListen, err)
		}
		p, _ := strconv.Atoi(port)
		tmpl.ListenHost, tmpl.AltHTTPPort = host, p
	}
	if o.CARoot != "" {
		b, err := os.ReadFile(o.CARoot)
		if err != nil {
			return nil, fmt.Errorf("tls.acme_ca_root: %v", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return nil, fmt.Errorf("tls.acme_ca_root %s: no PEM certificate in it", o.CARoot)
		}
		tmpl.TrustedRoots = pool
	}
	a.issuer = certmagic.NewACMEIssuer(a.magic, tmpl)
	a.magic.Issuers = []certmagic.Issuer{a.issuer}
	return a, nil
}

// Start loads what storage holds and orders what is missing, in the
// background (the HTTP listener must be serving HandleHTTPChallenge by
// then); certmagic renews from then on until Stop. A name whose order
// fails is retried with backoff and logged; the others are not held up.
func (a *ACME) Start(ctx context.Context) error {
	a.log.Info("managing certificates", "names", a.names, "ca", a.issuer.CA)
	return a.magic.ManageAsync(ctx, a.names)
}

// Stop ends renewal.
func (a *ACME) Stop() { a.cache.Stop() }

// HandleHTTPChallenge answers the CA's HTTP-01 request and reports
// whether r was one.
func (a *ACME) HandleHTTPChallenge(w http.ResponseWriter, r *http.Request) bool {
	return a.issuer.HandleHTTPChallenge(w, r)
}

// GetCertificate is the tls.Config callback: the managed certificate for
// the name the client asked for (the domain's without SNI or for another
// name), or the fallback before the first one is obtained.
func (a *ACME) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	if hello.Conn == nil {
		// Not a handshake (channel binding asking what is served now):
		// certmagic's lookup wants a connection, so ask the cache.
		name := hello.ServerName
		if name == "" {
			name = a.names[0]
		}
		for _, n := range []string{name, a.names[0]} {
			if cs := a.cache.AllMatchingCertificates(n); len(cs) > 0 {
				return &cs[0].Certificate, nil
			}
		}
	} else if c, err := a.magic.GetCertificate(hello); err == nil && c != nil && len(c.Certificate) > 0 {
		return c, nil
	}
	if a.fallback == nil {
		return nil, fmt.Errorf("acme: no certificate for %q yet", hello.ServerName)
	}
	return a.fallback.GetCertificate(hello)
}

// TLSConfig is the server configuration for c2s with these certificates.
func (a *ACME) TLSConfig() *tls.Config { return serverConfig(a.GetCertificate, &a.changed) }

func (a *ACME) event(_ context.Context, event string, data map[string]any) error {
	switch event {
	case "cached_managed_cert":
		// New in the cache (obtained, renewed, or loaded from a storage
		// another node wrote): tickets from before it are not resumed.
		a.changed.Store(time.Now().UnixNano())
	case "cert_obtained":
		a.changed.Store(time.Now().UnixNano())
		a.log.Info("certificate obtained", "identifier", data["identifier"], "renewal", data["renewal"],
			"path", data["certificate_path"])
	case "cert_failed":
		a.log.Error("certificate not obtained, will retry", "identifier", data["identifier"],
			"renewal", data["renewal"], "err", data["error"])
	}
	return nil
}

// slogCore sends certmagic's zap logs to the server's slog logger.
type slogCore struct {
	log    *slog.Logger
	fields []zapcore.Field
}

func slogLevel(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		// certmagic's debug lines (every HTTP request to the CA, every
		// handshake's lookup) stay below even --log-level debug.
		return slog.LevelDebug - 4
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	}
	return slog.LevelError
}

func (c slogCore) Enabled(l zapcore.Level) bool {
	return c.log.Enabled(context.Background(), slogLevel(l))
}

func (c slogCore) With(fs []zapcore.Field) zapcore.Core {
	return slogCore{log: c.log, fields: append(c.fields[:len(c.fields):len(c.fields)], fs...)}
}

func (c slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c slogCore) Write(e zapcore.Entry, fs []zapcore.Field) error {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range c.fields {
		f.AddTo(enc)
	}
	for _, f := range fs {
		f.AddTo(enc)
	}
	keys := make([]string, 0, len(enc.Fields))
	for k := range enc.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	args := make([]any, 0, 2*len(keys)+2)
	if e.LoggerName != "" {
		args = append(args, "logger", e.LoggerName)
	}
	for _, k := range keys {
		args = append(args, k, enc.Fields[k])
	}
	c.log.Log(context.Background(), slogLevel(e.Level), e.Message, args...)
	return nil
}

func (c slogCore) Sync() error { return nil }
