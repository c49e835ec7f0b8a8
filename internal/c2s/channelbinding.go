package c2s

import (
	"crypto/tls"
	"crypto/x509"
	"slices"

	"bluetick/internal/auth"
	"bluetick/internal/xmlstream"
)

// nsSASLCB is XEP-0440 SASL Channel-Binding Type Capability.
const nsSASLCB = "urn:xmpp:sasl-cb:0"

// tlsStater is a transport that knows the TLS state of its connection:
// TCP after STARTTLS or direct TLS, and WebSocket over HTTPS. BOSH and
// WebSocket behind a TLS-terminating proxy do not, so they get no channel
// binding: the TLS the client sees is not one this process can bind to.
type tlsStater interface {
	// tlsState returns the state after the handshake, nil without TLS.
	tlsState() *tls.ConnectionState
}

func (t *tcpTransport) tlsState() *tls.ConnectionState {
	t.wmu.Lock()
	tc, ok := t.conn.(*tls.Conn)
	t.wmu.Unlock()
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	return &cs
}

// tlsState of a WebSocket is that of the HTTPS connection it upgraded
// (read when asked rather than kept: an idle session holds no copy).
func (t *wsTransport) tlsState() *tls.ConnectionState {
	tc, ok := t.conn.(*tls.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	return &cs
}

// channelBinding is what SASL on this stream can bind to (see
// auth.ChannelBinding). It depends only on the connection, so the features
// and the exchange that follows them always agree on it; SASL2 takes it
// from here too.
func (st *stream) channelBinding() auth.ChannelBinding {
	ts, ok := st.t.(tlsStater)
	if !ok {
		return auth.ChannelBinding{}
	}
	return auth.TLSChannelBinding(ts.tlsState(), st.serverCert())
}

// saslMechanisms is the mechanism list this stream advertises and accepts:
// PLAIN only inside TLS, the -PLUS mechanisms only where channel binding
// works, SCRAM-SHA-256 unless sasl.scram_sha256 is off (accounts imported
// with only SCRAM-SHA-1 credentials). It is also the Offered list of
// auth.Config, which XEP-0474 hashes.
func (st *stream) saslMechanisms() []string {
	m := auth.MechanismsFor(st.t.Secure(), st.channelBinding())
	if !st.svc.cfg.SASL.SCRAMSHA256 {
		m = slices.DeleteFunc(m, func(s string) bool { return s == auth.SCRAMSHA256 || s == auth.SCRAMSHA256Plus })
	}
	return m
}

// channelBindingFeature is the XEP-0440 stream feature listing the
// channel binding types of this connection, or nil when there are none
// (the feature must not be empty).
func (st *stream) channelBindingFeature() *xmlstream.Element {
	cb := st.channelBinding()
	if !cb.Available() {
		return nil
	}
	f := xmlstream.New(nsSASLCB, "sasl-channel-binding")
	for _, typ := range cb.Types {
		f.Append(xmlstream.New(nsSASLCB, "channel-binding", "type", typ))
	}
	return f
}

// recordServed wraps a configuration whose certificate comes from
// GetCertificate (files reloaded on SIGHUP, ACME) so that each TCP
// connection remembers the certificate its handshake sent: crypto/tls
// does not record it on the server side, and tls-server-end-point must
// hash exactly that one even if the certificate was replaced since.
func recordServed(c *tls.Config) *tls.Config {
	if c == nil || c.GetCertificate == nil {
		return c
	}
	c = c.Clone()
	get := c.GetCertificate
	c.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		cert, err := get(hello)
		if cc, ok := hello.Conn.(*countingConn); ok && err == nil {
			cc.served.Store(cert)
		}
		return cert, err
	}
	return c
}

// serverCert is the certificate this stream's TLS presented, for
// tls-server-end-point, or nil when it is not known (then
// tls-server-end-point is not offered). With one fixed certificate it is
// that one; with GetCertificate, on TCP the one recorded at the handshake
// (recordServed), and on a resumed TLS session or WebSocket over HTTPS
// the one served now for the name the client asked for (on WebSocket a
// reload between the handshake and SASL makes a -PLUS login with
// tls-server-end-point fail once; tls-exporter, the TLS 1.3 default, is
// unaffected).
func (st *stream) serverCert() *x509.Certificate {
	s := st.svc
	if s.tls == nil || s.tls.GetConfigForClient != nil {
		return nil
	}
	var c *tls.Certificate
	switch {
	case s.tls.GetCertificate != nil:
		if t, ok := st.t.(*tcpTransport); ok {
			c = t.cw.served.Load()
		}
		if c == nil {
			// WebSocket, or a resumed TLS session (no certificate is
			// sent, so none was recorded): the one served now, which
			// is the one of the session's first handshake since certs
			// does not resume tickets from before a change.
			if ts, ok := st.t.(tlsStater); ok {
				if cs := ts.tlsState(); cs != nil {
					c, _ = s.tls.GetCertificate(&tls.ClientHelloInfo{ServerName: cs.ServerName})
				}
			}
		}
	case len(s.tls.Certificates) == 1:
		c = &s.tls.Certificates[0]
	}
	if c == nil {
		return nil
	}
	if c.Leaf != nil {
		return c.Leaf
	}
	if len(c.Certificate) == 0 {
		return nil
	}
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		return nil
	}
	return leaf
}
