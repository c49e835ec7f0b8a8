// Package xmpptest is a minimal raw XMPP client for tests: STARTTLS, PLAIN,
// bind, and direct access to the element stream, so a test can assert the
// exact XML a server sends.
package xmpptest

import (
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"bluetick/internal/xmlstream"
)

// Namespaces tests look at.
const (
	NSTLS  = "urn:ietf:params:xml:ns:xmpp-tls"
	NSSASL = "urn:ietf:params:xml:ns:xmpp-sasl"
	NSBind = "urn:ietf:params:xml:ns:xmpp-bind"
	NSSM   = "urn:xmpp:sm:3"
)

// Client is one raw client connection. Methods fail the test on error.
type Client struct {
	T      testing.TB
	Conn   net.Conn
	dec    *xmlstream.Decoder
	JID    string
	Domain string
}

// Dial connects to addr for domain.
func Dial(t testing.TB, addr, domain string) *Client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{T: t, Conn: c, Domain: domain, dec: xmlstream.NewDecoder(c, xmlstream.Limits{MaxElementBytes: 1 << 20})}
}

// Send writes raw XML.
func (c *Client) Send(s string) {
	c.T.Helper()
	c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c.Conn, s); err != nil {
		c.T.Fatalf("write: %v", err)
	}
}

// Open starts a stream and returns the server's features.
func (c *Client) Open() *xmlstream.Element {
	c.T.Helper()
	c.dec.Reset(c.Conn) // every stream starts a new document
	c.Send("<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='" + c.Domain + "' version='1.0'>")
	ev := c.Event()
	if ev.Kind != xmlstream.StreamStart {
		c.T.Fatalf("expected stream header, got %v", ev.Kind)
	}
	return c.Next()
}

// Event returns the next stream event (5 s timeout).
func (c *Client) Event() xmlstream.Event {
	c.T.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	ev, err := c.dec.Next()
	if err != nil {
		c.T.Fatalf("read: %v", err)
	}
	return ev
}

// TryNext returns the next element other than an SM ack request, or the
// read error.
func (c *Client) TryNext(timeout time.Duration) (*xmlstream.Element, error) {
	for {
		el, err := c.Read(timeout)
		if err != nil || el.Space != NSSM || el.Name != "r" {
			return el, err
		}
	}
}

// Next returns the next element, skipping SM ack requests.
func (c *Client) Next() *xmlstream.Element {
	c.T.Helper()
	for {
		ev := c.Event()
		if ev.Kind != xmlstream.ElementEvent {
			c.T.Fatalf("expected element, got event %v", ev.Kind)
		}
		if ev.Elem.Space == NSSM && ev.Elem.Name == "r" {
			continue
		}
		return ev.Elem
	}
}

// Expect reads until an element named name arrives and returns it.
func (c *Client) Expect(name string) *xmlstream.Element {
	c.T.Helper()
	for i := 0; i < 100; i++ {
		if el := c.Next(); el.Name == name {
			return el
		}
	}
	c.T.Fatalf("no <%s/> in 100 elements", name)
	return nil
}

// Auth does STARTTLS and PLAIN and reopens the stream.
func (c *Client) Auth(user, password string) {
	c.T.Helper()
	c.StartTLS(&tls.Config{InsecureSkipVerify: true, ServerName: c.Domain})
	c.Send(fmt.Sprintf("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>%s</auth>",
		base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+password))))
	if el := c.Next(); el.Name != "success" {
		c.T.Fatalf("auth: %v", el)
	}
	if f := c.Open(); f.Child(NSBind, "bind") == nil {
		c.T.Fatalf("post-auth features: %v", f)
	}
}

// Login authenticates and binds resource res.
func (c *Client) Login(user, password, res string) {
	c.T.Helper()
	c.Auth(user, password)
	c.Send(fmt.Sprintf("<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>%s</resource></bind></iq>", res))
	el := c.Expect("iq")
	c.JID = el.Child(NSBind, "bind").ChildText(NSBind, "jid")
	if !strings.HasPrefix(c.JID, user+"@") {
		c.T.Fatalf("bound %q", c.JID)
	}
}

// Read returns the next element, SM requests included, or the read error;
// a timeout (net.Error with Timeout()) leaves the stream usable.
func (c *Client) Read(timeout time.Duration) (*xmlstream.Element, error) {
	c.Conn.SetReadDeadline(time.Now().Add(timeout))
	ev, err := c.dec.Next()
	if err != nil {
		return nil, err
	}
	if ev.Kind != xmlstream.ElementEvent {
		return nil, io.EOF
	}
	return ev.Elem, nil
}
