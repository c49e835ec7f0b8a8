package xmpptest

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"bluetick/internal/xmlstream"
)

// NSSASLCB is XEP-0440 SASL Channel-Binding Type Capability.
const NSSASLCB = "urn:xmpp:sasl-cb:0"

// SCRAM is a SCRAM client (RFC 5802, RFC 7677) with channel binding and
// the XEP-0474 check, written from the specifications apart from package
// auth, so tests of the server do not check it against itself.
type SCRAM struct {
	// Mechanism is SCRAM-SHA-1 or SCRAM-SHA-256, with or without -PLUS.
	Mechanism      string
	User, Password string
	// Flag is the GS2 channel binding flag: "n" (default), "y" or
	// "p=<type>".
	Flag string
	// CBData is the channel binding data c= carries after the GS2 header.
	CBData []byte
	// SawMechs and SawCBTypes are what the client saw in the features.
	// When SawMechs is set, Final checks the server's XEP-0474 h= against
	// them and fails with ErrDowngrade on a mismatch or a missing h=.
	SawMechs, SawCBTypes []string

	gs2, bare, authMessage string
	cnonce                 string
	salted                 []byte
}

// ErrDowngrade is XEP-0474's verdict: what the client saw offered is not
// what the server says it offered.
var ErrDowngrade = errors.New("xmpptest: SSDP hash mismatch, the offer was tampered with")

func (s *SCRAM) newHash() func() hash.Hash {
	if strings.HasPrefix(s.Mechanism, "SCRAM-SHA-256") {
		return sha256.New
	}
	return sha1.New
}

// SSDPHash is the XEP-0474 hash of an offer for the hash of mechanism.
func SSDPHash(mechanism string, mechs, cbTypes []string) string {
	m := slices.Clone(mechs)
	slices.Sort(m)
	str := strings.Join(m, "\x1e")
	if len(cbTypes) > 0 {
		t := slices.Clone(cbTypes)
		slices.Sort(t)
		str += "\x1f" + strings.Join(t, "\x1e")
	}
	h := (&SCRAM{Mechanism: mechanism}).newHash()()
	h.Write([]byte(str))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// First returns the client-first-message.
func (s *SCRAM) First() []byte {
	flag := s.Flag
	if flag == "" {
		flag = "n"
	}
	s.cnonce = strconv.FormatInt(time.Now().UnixNano(), 36) + "x" + strconv.Itoa(len(s.User))
	s.gs2 = flag + ",,"
	s.bare = "n=" + strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s.User) + ",r=" + s.cnonce
	return []byte(s.gs2 + s.bare)
}

// Final answers the server-first-message.
func (s *SCRAM) Final(serverFirst []byte) ([]byte, error) {
	attrs := map[string]string{}
	for _, a := range strings.Split(string(serverFirst), ",") {
		k, v, ok := strings.Cut(a, "=")
		if !ok || len(k) != 1 {
			return nil, fmt.Errorf("xmpptest: bad server-first-message %q", serverFirst)
		}
		attrs[k] = v
	}
	nonce := attrs["r"]
	if !strings.HasPrefix(nonce, s.cnonce) || nonce == s.cnonce {
		return nil, fmt.Errorf("xmpptest: server nonce %q", nonce)
	}
	if s.SawMechs != nil {
		if want := SSDPHash(s.Mechanism, s.SawMechs, s.SawCBTypes); attrs["h"] != want {
			return nil, fmt.Errorf("%w: h=%q, what we saw hashes to %q", ErrDowngrade, attrs["h"], want)
		}
	}
	salt, err := base64.StdEncoding.DecodeString(attrs["s"])
	if err != nil {
		return nil, err
	}
	iter, err := strconv.Atoi(attrs["i"])
	if err != nil {
		return nil, err
	}
	nh := s.newHash()
	s.salted, err = pbkdf2.Key(nh, s.Password, salt, iter, nh().Size())
	if err != nil {
		return nil, err
	}
	withoutProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(s.gs2), s.CBData...)) + ",r=" + nonce
	s.authMessage = s.bare + "," + string(serverFirst) + "," + withoutProof
	clientKey := s.mac(s.salted, "Client Key")
	h := nh()
	h.Write(clientKey)
	sig := s.mac(h.Sum(nil), s.authMessage)
	for i := range sig {
		sig[i] ^= clientKey[i]
	}
	return []byte(withoutProof + ",p=" + base64.StdEncoding.EncodeToString(sig)), nil
}

// Verify checks the server-final-message (the server knows the password).
func (s *SCRAM) Verify(serverFinal []byte) error {
	want := "v=" + base64.StdEncoding.EncodeToString(s.mac(s.mac(s.salted, "Server Key"), s.authMessage))
	if string(serverFinal) != want {
		return fmt.Errorf("xmpptest: server-final %q, want %q", serverFinal, want)
	}
	return nil
}

func (s *SCRAM) mac(key []byte, msg string) []byte {
	m := hmac.New(s.newHash(), key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// StartTLS upgrades the stream on the c2s port and returns the features of
// the new stream.
func (c *Client) StartTLS(cfg *tls.Config) *xmlstream.Element {
	c.T.Helper()
	if f := c.Open(); f.Child(NSTLS, "starttls") == nil {
		c.T.Fatalf("no starttls offered: %v", f)
	}
	c.Send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
	if el := c.Next(); el.Name != "proceed" {
		c.T.Fatalf("starttls: %v", el)
	}
	tc := tls.Client(c.Conn, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		c.T.Fatal(err)
	}
	tc.SetDeadline(time.Time{})
	c.Conn = tc
	c.dec = xmlstream.NewDecoder(tc, xmlstream.Limits{MaxElementBytes: 1 << 20})
	return c.Open()
}

// TLSState is the client's TLS state (the test fails without TLS).
func (c *Client) TLSState() tls.ConnectionState {
	c.T.Helper()
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		c.T.Fatal("not a TLS connection")
	}
	return tc.ConnectionState()
}

// SASL runs s over RFC 6120 SASL and returns the server's last element:
// <success/> (whose data s has verified) or <failure/>. A client-side
// failure (ErrDowngrade) is returned after sending <abort/>.
func (c *Client) SASL(s *SCRAM) (*xmlstream.Element, error) {
	c.T.Helper()
	c.Send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='" + s.Mechanism + "'>" + base64.StdEncoding.EncodeToString(s.First()) + "</auth>")
	el := c.Next()
	if el.Name != "challenge" {
		return el, nil
	}
	sf, err := base64.StdEncoding.DecodeString(el.Text())
	if err != nil {
		return el, err
	}
	cf, err := s.Final(sf)
	if err != nil {
		c.Send("<abort xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>")
		c.Next()
		return nil, err
	}
	c.Send("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" + base64.StdEncoding.EncodeToString(cf) + "</response>")
	el = c.Next()
	if el.Name == "success" {
		sfinal, err := base64.StdEncoding.DecodeString(el.Text())
		if err != nil {
			return el, err
		}
		return el, s.Verify(sfinal)
	}
	return el, nil
}

// Offer returns the SASL mechanisms and the XEP-0440 channel binding types
// a features element lists, in order.
func Offer(features *xmlstream.Element) (mechs, cbTypes []string) {
	if m := features.Child(NSSASL, "mechanisms"); m != nil {
		for _, el := range m.Elements() {
			mechs = append(mechs, el.Text())
		}
	}
	if cb := features.Child(NSSASLCB, "sasl-channel-binding"); cb != nil {
		for _, el := range cb.Elements() {
			cbTypes = append(cbTypes, el.Attr("type"))
		}
	}
	return mechs, cbTypes
}

// DialTLS connects to a direct-TLS port (XEP-0368) for domain.
func DialTLS(t testing.TB, addr, domain string, cfg *tls.Config) *Client {
	t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{T: t, Conn: c, Domain: domain, dec: xmlstream.NewDecoder(c, xmlstream.Limits{MaxElementBytes: 1 << 20})}
}

// NewSCRAM returns the client of one SCRAM-SHA-256 exchange without
// channel binding.
func NewSCRAM(user, pass string) *SCRAM {
	return &SCRAM{Mechanism: "SCRAM-SHA-256", User: user, Password: pass}
}
