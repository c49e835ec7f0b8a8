package auth

import (
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"slices"
	"strings"

	_ "crypto/sha512" // SHA-384 and SHA-512 for tls-server-end-point
)

// Channel binding types (RFC 5056; the names are the prefixes of the IANA
// "Channel-Binding Types" registry) that TLSChannelBinding computes.
// tls-unique (RFC 5929 §3) is absent on purpose: it is undefined for TLS
// 1.3 (RFC 8446 §C.5) and Go does not expose it for TLS 1.2 either.
const (
	// TLSExporter is RFC 9266: 32 bytes exported with the label
	// "EXPORTER-Channel-Binding" and no context. Offered on TLS 1.3 only:
	// on TLS 1.2 it is secure only with the extended master secret, and
	// XEP-0440 clients expect it on 1.3.
	TLSExporter = "tls-exporter"
	// TLSServerEndPoint is RFC 5929 §4: the hash of the server's
	// certificate. It binds to the certificate, not to the connection, so
	// it is weaker (someone holding the key can relay); XEP-0440 makes it
	// mandatory for servers as the common fallback.
	TLSServerEndPoint = "tls-server-end-point"
)

// ChannelBinding is the channel binding input of a SASL exchange: what the
// stream advertised (XEP-0440) and how to get the binding data of the
// connection the exchange runs on. SASL (RFC 6120) and SASL2 (XEP-0388)
// build it the same way, with TLSChannelBinding, and pass it in
// Config.ChannelBinding.
//
// The zero value means "no channel binding": no TLS, TLS terminated by a
// proxy, or a transport that cannot tell (BOSH). Then no SCRAM-*-PLUS
// mechanism is offered or accepted.
type ChannelBinding struct {
	// Types are the channel binding types the stream advertised in
	// <sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'/>, exactly (they go
	// into the XEP-0474 hash), strongest first. A client's p=<type> must
	// name one of them.
	Types []string
	// Data returns the channel binding data of one of Types for this
	// connection (RFC 5056 §2.1 "channel bindings"). It is called at most
	// once per exchange; an error fails the exchange with
	// temporary-auth-failure.
	Data func(typ string) ([]byte, error)
}

// Available reports whether cb can carry a SCRAM-*-PLUS exchange.
func (cb ChannelBinding) Available() bool {
	return len(cb.Types) > 0 && cb.Data != nil
}

// TLSChannelBinding is the channel binding of a TLS connection on the
// server side. state is the connection's state after the handshake (nil:
// no TLS, the zero ChannelBinding); cert is the certificate the server
// presented on it (the leaf), which the server side of crypto/tls does not
// record in the state. tls-exporter is offered on TLS 1.3;
// tls-server-end-point whenever cert is known and RFC 5929 defines a hash
// for its signature algorithm (not for Ed25519 certificates).
func TLSChannelBinding(state *tls.ConnectionState, cert *x509.Certificate) ChannelBinding {
	if state == nil || !state.HandshakeComplete {
		return ChannelBinding{}
	}
	var types []string
	if state.Version == tls.VersionTLS13 {
		types = append(types, TLSExporter)
	}
	endPoint, endPointOK := ServerEndPoint(cert)
	if endPointOK {
		types = append(types, TLSServerEndPoint)
	}
	if len(types) == 0 {
		return ChannelBinding{}
	}
	return ChannelBinding{
		Types: types,
		Data: func(typ string) ([]byte, error) {
			switch {
			case typ == TLSExporter && state.Version == tls.VersionTLS13:
				return state.ExportKeyingMaterial("EXPORTER-Channel-Binding", nil, 32)
			case typ == TLSServerEndPoint && endPointOK:
				return endPoint, nil
			}
			return nil, errors.New("auth: channel binding type " + typ + " not available on this connection")
		},
	}
}

// ServerEndPoint returns the tls-server-end-point channel binding data of
// a server certificate (RFC 5929 §4.1): the certificate hashed with the
// hash of its signature algorithm, SHA-256 when that is MD5 or SHA-1. ok
// is false when the algorithm has no single hash (Ed25519) or is unknown:
// RFC 5929 leaves the binding undefined then.
func ServerEndPoint(cert *x509.Certificate) (data []byte, ok bool) {
	if cert == nil || len(cert.Raw) == 0 {
		return nil, false
	}
	var h crypto.Hash
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.ECDSAWithSHA256, x509.DSAWithSHA256:
		h = crypto.SHA256
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h = crypto.SHA384
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h = crypto.SHA512
	default:
		return nil, false
	}
	d := h.New()
	d.Write(cert.Raw)
	return d.Sum(nil), true
}

// gs2 is a parsed GS2 header (RFC 5802 §7):
//
//	gs2-header     = gs2-cbind-flag "," [ authzid ] ","
//	gs2-cbind-flag = ("p=" cb-name) / "n" / "y"
type gs2 struct {
	flag    byte   // 'n', 'y' or 'p'
	cbName  string // with flag 'p'
	authzid string // unescaped; "" if absent
	header  string // the header as sent, both commas included
}

// parseGS2 splits a client-first-message into its GS2 header and the
// client-first-message-bare.
func parseGS2(msg string) (gs2, string, *Failure) {
	var g gs2
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok {
		return g, "", malformed("missing GS2 header")
	}
	switch {
	case flag == "n", flag == "y":
		g.flag = flag[0]
	case strings.HasPrefix(flag, "p="):
		g.flag = 'p'
		g.cbName = flag[2:]
		if !validCBName(g.cbName) {
			return g, "", malformed("invalid channel binding type name")
		}
	default:
		return g, "", malformed("invalid GS2 channel binding flag")
	}
	az, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return g, "", malformed("missing GS2 header")
	}
	if az != "" {
		v, ok := strings.CutPrefix(az, "a=")
		if !ok {
			return g, "", malformed("invalid GS2 authzid")
		}
		var err error
		if g.authzid, err = unescapeSASLName(v); err != nil {
			return g, "", malformed("invalid authzid: " + err.Error())
		}
	}
	g.header = msg[:len(msg)-len(bare)]
	return g, bare, nil
}

// validCBName reports whether s is a cb-name: 1*(ALPHA / DIGIT / "." /
// "-") (RFC 5802 §7).
func validCBName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// isPlus reports whether mech is a channel-binding (-PLUS) mechanism.
func isPlus(mech string) bool { return strings.HasSuffix(mech, "-PLUS") }

// offersPlus reports whether the stream offered channel binding: a -PLUS
// mechanism in the advertised list, or, when the caller did not say what
// it advertised, usable channel binding.
func offersPlus(cfg Config) bool {
	if cfg.Offered != nil {
		return slices.ContainsFunc(cfg.Offered, isPlus)
	}
	return cfg.ChannelBinding.Available()
}

// checkBinding applies the RFC 5802 §6 rules for the GS2 flag against what
// the stream offered, and returns the channel binding data c= must carry
// after the GS2 header (nil without binding).
//
//   - "n": the client does not do channel binding. Accepted, even with a
//     -PLUS mechanism (then it is the plain exchange under another name;
//     slixmpp 1.8 does this on TLS 1.3, where its tls-unique is missing).
//   - "y": the client does channel binding but saw none offered. If the
//     stream offered -PLUS, someone removed it on the way: refused.
//   - "p=<type>": needs a -PLUS mechanism and one of the advertised types.
//
// These refusals are malformed-request, as Prosody answers them: they come
// before any credential is looked at, so they are protocol errors, not
// failed passwords (c2s neither delays them nor counts them against the
// account), and a client reports them as such, not as a wrong password.
// Binding data that does not match (final) is not-authorized.
func checkBinding(g gs2, mech string, cfg Config) ([]byte, *Failure) {
	switch g.flag {
	case 'n':
		return nil, nil
	case 'y':
		if offersPlus(cfg) && !cfg.TriedPlus {
			return nil, malformed("channel binding downgrade detected: this server offered SCRAM-*-PLUS but the client saw no channel binding")
		}
		return nil, nil
	}
	if !isPlus(mech) {
		return nil, malformed("channel binding (p=) needs a SCRAM-*-PLUS mechanism")
	}
	cb := cfg.ChannelBinding
	if !cb.Available() || !slices.Contains(cb.Types, g.cbName) {
		text := "channel binding type " + g.cbName + " is not supported on this connection"
		if len(cb.Types) > 0 {
			text += " (advertised: " + strings.Join(cb.Types, ", ") + ")"
		}
		f := malformed(text)
		f.UnsupportedBinding = true
		return nil, f
	}
	data, err := cb.Data(g.cbName)
	if err != nil || len(data) == 0 {
		return nil, &Failure{Condition: condTemporary, Text: "channel binding data unavailable"}
	}
	return data, nil
}

// downgradeHash is the XEP-0474 (SSDP) hash the server puts in its
// server-first-message as "h=": the sorted advertised mechanisms joined by
// U+001E, then, if channel binding types were advertised (XEP-0440), U+001F
// and the sorted types joined by U+001E; hashed with the exchange's hash
// and base64 encoded. Sorting is "i;octet" (byte order), which is what
// sorting Go strings does.
func downgradeHash(h *scramHash, mechs, cbTypes []string) string {
	m := slices.Sorted(slices.Values(mechs))
	s := strings.Join(m, "\x1e")
	if len(cbTypes) > 0 {
		s += "\x1f" + strings.Join(slices.Sorted(slices.Values(cbTypes)), "\x1e")
	}
	return base64.StdEncoding.EncodeToString(hashSum(h.new, []byte(s)))
}
