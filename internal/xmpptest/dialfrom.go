package xmpptest

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"bluetick/internal/xmlstream"
)

// DialFrom connects to addr from the local address src, e.g. "127.0.0.7":
// on Linux every 127.0.0.0/8 address is the loopback interface's, so one
// test can play clients on many addresses.
func DialFrom(t testing.TB, addr, domain, src string) *Client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{T: t, Conn: c, Domain: domain, dec: xmlstream.NewDecoder(c, xmlstream.Limits{MaxElementBytes: 1 << 20})}
}

// Guesser is a raw client for password-guessing loops on goroutines other
// than the test's: its methods return errors instead of failing the test.
type Guesser struct {
	Conn   net.Conn
	dec    *xmlstream.Decoder
	domain string
}

// DialGuesser connects to addr from the local address src ("" = any) and
// does STARTTLS, so PLAIN is offered.
func DialGuesser(addr, domain, src string) (*Guesser, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	g := &Guesser{Conn: c, domain: domain}
	fail := func(err error) (*Guesser, error) { c.Close(); return nil, err }
	if err := g.Open(); err != nil {
		return fail(err)
	}
	if err := g.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"); err != nil {
		return fail(err)
	}
	if el, err := g.next(); err != nil || el.Name != "proceed" {
		return fail(fmt.Errorf("starttls: %v %v", el, err))
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, ServerName: domain})
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		return fail(err)
	}
	tc.SetDeadline(time.Time{})
	g.Conn = tc
	if err := g.Open(); err != nil {
		return fail(err)
	}
	return g, nil
}

// NewGuesser wraps a connection that is ready for a stream header (direct
// TLS, say).
func NewGuesser(c net.Conn, domain string) *Guesser { return &Guesser{Conn: c, domain: domain} }

func (g *Guesser) send(s string) error {
	g.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := io.WriteString(g.Conn, s)
	return err
}

func (g *Guesser) next() (*xmlstream.Element, error) {
	g.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	ev, err := g.dec.Next()
	if err != nil {
		return nil, err
	}
	if ev.Kind != xmlstream.ElementEvent {
		return nil, fmt.Errorf("unexpected stream event %v", ev.Kind)
	}
	return ev.Elem, nil
}

// Open starts a stream and reads the header and the features.
func (g *Guesser) Open() error {
	g.dec = xmlstream.NewDecoder(g.Conn, xmlstream.Limits{MaxElementBytes: 1 << 20})
	if err := g.send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + g.domain + "' version='1.0'>"); err != nil {
		return err
	}
	g.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if ev, err := g.dec.Next(); err != nil || ev.Kind != xmlstream.StreamStart {
		return fmt.Errorf("stream header: %v", err)
	}
	_, err := g.next()
	return err
}

// Plain tries one password with PLAIN and returns "success", or the
// <failure/>'s condition and text.
func (g *Guesser) Plain(user, password string) (cond, text string, err error) {
	if err := g.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" +
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password)) + "</auth>"); err != nil {
		return "", "", err
	}
	el, err := g.next()
	if err != nil {
		return "", "", err
	}
	if el.Name == "success" {
		return "success", "", nil
	}
	if el.Name != "failure" || len(el.Elements()) == 0 {
		return "", "", fmt.Errorf("answer to <auth/>: %v", el)
	}
	return el.Elements()[0].Name, el.ChildText(NSSASL, "text"), nil
}

// Close closes the connection.
func (g *Guesser) Close() error { return g.Conn.Close() }
