// Package component accepts XEP-0114 external components: programs
// (gateways to other networks, bots) that connect over TCP, prove a shared
// secret, and then serve a subdomain of the server ("bot.example.com").
// Stanzas users send to that domain, or to any JID in it, are written to
// the component's stream; stanzas the component sends from its domain are
// delivered to users like any other.
//
// Each configured domain is registered on the server's service seam at
// start, so a component that is not connected gets its stanzas bounced
// with service-unavailable instead of "no such server".
package component

import (
	"context"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// NS is the content namespace of a component stream.
const NS = "jabber:component:accept"

// handshakeTimeout bounds the time from accept to a verified handshake.
const handshakeTimeout = 30 * time.Second

// Service accepts the configured components.
type Service struct {
	im  *server.Server
	log *slog.Logger
	lim xmlstream.Limits

	mu  sync.Mutex
	eps map[string]*endpoint // by domain
}

// endpoint is one configured component domain and its current connection.
type endpoint struct {
	svc    *Service
	domain string
	secret string

	mu   sync.Mutex
	conn *conn // nil while the component is not connected
}

// New registers every component of cfg on the server's service seam. Call
// it before sessions bind; Serve then accepts their connections.
func New(cfg config.Config, im *server.Server, log *slog.Logger) *Service {
	s := &Service{im: im, log: log, lim: xmlstream.Limits{MaxElementBytes: cfg.Limits.MaxStanzaBytes}, eps: map[string]*endpoint{}}
	for _, c := range cfg.Components {
		ep := &endpoint{svc: s, domain: c.Domain, secret: c.Secret}
		s.eps[c.Domain] = ep
		im.RegisterService(c.Domain, "Component "+c.Domain, ep)
	}
	return s
}

// Serve accepts component connections on ln until it is closed.
func (s *Service) Serve(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			s.log.Error("component: accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go s.serve(nc)
	}
}

// Handle takes a stanza a user addressed to the component's domain (it
// implements server.Service).
func (ep *endpoint) Handle(ctx context.Context, from jid.JID, el *xmlstream.Element) {
	ep.mu.Lock()
	c := ep.conn
	ep.mu.Unlock()
	if c != nil && c.send(el) == nil {
		return
	}
	if el.Name == "presence" {
		return // presence to an absent component is simply not delivered
	}
	if r := stanza.ErrorReply(el, stanza.NewError("service-unavailable", ep.domain+" is not connected")); r != nil {
		_ = ep.svc.im.Deliver(ctx, from, r)
	}
}

// conn is one authenticated component stream.
type conn struct {
	ep  *endpoint
	nc  net.Conn
	wmu sync.Mutex
}

// send writes a stanza to the component, in the component namespace.
func (c *conn) send(el *xmlstream.Element) error {
	cp := el.Copy()
	renamespace(cp, xmlstream.NSClient, NS)
	b := xmlstream.Append(nil, cp, NS)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.nc.SetWriteDeadline(time.Now().Add(30 * time.Second))
	_, err := c.nc.Write(b)
	return err
}

// renamespace moves el and its descendants from one namespace to another:
// the same stanza is jabber:client on a client stream and
// jabber:component:accept on a component stream.
func renamespace(el *xmlstream.Element, from, to string) {
	if el.Space == from {
		el.Space = to
	}
	for _, c := range el.Children {
		if c.Elem != nil {
			renamespace(c.Elem, from, to)
		}
	}
}

// streamError ends a component stream (RFC 6120 §4.9).
func streamError(nc net.Conn, cond, text string) {
	se := &stanza.StreamError{Condition: cond, Text: text}
	b := []byte("<stream:error>")
	for _, c := range se.Element().Children {
		if c.Elem != nil {
			b = xmlstream.Append(b, c.Elem, NS)
		}
	}
	b = append(b, "</stream:error></stream:stream>"...)
	nc.SetWriteDeadline(time.Now().Add(2 * time.Second))
	nc.Write(b)
}

// handshakeDigest is what XEP-0114 §3 asks the component to send:
// lowercase hex SHA-1 of the stream id followed by the secret.
func handshakeDigest(id, secret string) string {
	sum := sha1.Sum([]byte(id + secret))
	return hex.EncodeToString(sum[:])
}

func (s *Service) serve(nc net.Conn) {
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(handshakeTimeout))
	dec := xmlstream.NewDecoder(nc, s.lim)
	ev, err := dec.Next()
	if err != nil || ev.Kind != xmlstream.StreamStart {
		return
	}
	id := server.NewID()
	to := ev.Elem.Attr("to")
	header := "<?xml version='1.0'?><stream:stream xmlns:stream='" + xmlstream.NSStream + "' xmlns='" + NS + "' id='" + id + "' from='" + xmlEscape(to) + "'>"
	if _, err := nc.Write([]byte(header)); err != nil {
		return
	}
	if ev.DefaultNS != NS {
		streamError(nc, "invalid-namespace", "a component stream is in "+NS)
		return
	}
	s.mu.Lock()
	ep := s.eps[to]
	s.mu.Unlock()
	if ep == nil {
		streamError(nc, "host-unknown", "no component is configured for "+to)
		return
	}
	ev, err = dec.Next()
	if err != nil || ev.Kind != xmlstream.ElementEvent || ev.Elem.Name != "handshake" || ev.Elem.Space != NS {
		streamError(nc, "not-authorized", "expected <handshake/>")
		return
	}
	want := handshakeDigest(id, ep.secret)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(strings.TrimSpace(ev.Elem.Text()))), []byte(want)) != 1 {
		s.log.Warn("component: wrong handshake", "domain", to, "remote", nc.RemoteAddr().String())
		streamError(nc, "not-authorized", "wrong secret")
		return
	}
	c := &conn{ep: ep, nc: nc}
	ep.mu.Lock()
	old := ep.conn
	ep.conn = c
	ep.mu.Unlock()
	if old != nil {
		old.wmu.Lock()
		streamError(old.nc, "conflict", "replaced by a new connection of the component")
		old.wmu.Unlock()
		old.nc.Close()
	}
	if _, err := nc.Write([]byte("<handshake/>")); err != nil {
		return
	}
	nc.SetDeadline(time.Time{})
	s.log.Info("component connected", "domain", to, "remote", nc.RemoteAddr().String())
	defer func() {
		ep.mu.Lock()
		if ep.conn == c {
			ep.conn = nil
		}
		ep.mu.Unlock()
		s.log.Info("component disconnected", "domain", to)
	}()
	for {
		ev, err := dec.Next()
		if err != nil {
			if se := stanza.StreamErrorFor(err); se != nil && !isNetErr(err) {
				c.wmu.Lock()
				streamError(nc, se.Condition, se.Text)
				c.wmu.Unlock()
			}
			return
		}
		if ev.Kind == xmlstream.StreamEnd {
			c.wmu.Lock()
			nc.Write([]byte("</stream:stream>"))
			c.wmu.Unlock()
			return
		}
		if cond, text := s.route(c, ev.Elem); cond != "" {
			c.wmu.Lock()
			streamError(nc, cond, text)
			c.wmu.Unlock()
			return
		}
	}
}

// route delivers one stanza from the component. It returns a stream error
// condition when the component broke the protocol.
func (s *Service) route(c *conn, el *xmlstream.Element) (cond, text string) {
	switch el.Name {
	case "message", "presence", "iq":
	default:
		return "unsupported-stanza-type", "<" + el.Name + "/> is not a stanza"
	}
	renamespace(el, NS, xmlstream.NSClient)
	from, err := jid.Parse(el.Attr("from"))
	if err != nil || from.Domain() != c.ep.domain {
		return "invalid-from", "a component sends from its own domain " + c.ep.domain
	}
	el.SetAttr("from", from.String())
	to, err := jid.Parse(el.Attr("to"))
	if err != nil || to.IsZero() {
		c.bounce(el, stanza.NewError("jid-malformed", "a stanza from a component needs a valid 'to'"))
		return "", ""
	}
	el.SetAttr("to", to.String())
	if to.Domain() != s.im.Domain.Domain() || to.Local() == "" {
		c.bounce(el, stanza.NewError("service-unavailable", "components reach the server's users only"))
		return "", ""
	}
	err = s.im.Deliver(context.Background(), to, el)
	if errors.Is(err, server.ErrNoSession) && el.Name == "message" && !to.IsBare() {
		// RFC 6121 §8.5.3.2.1: a message to a resource that is gone is
		// treated as sent to the bare JID.
		err = s.im.Deliver(context.Background(), to.Bare(), el)
	}
	switch {
	case err == nil || el.Name == "presence":
	case errors.Is(err, server.ErrNoSession):
		c.bounce(el, stanza.ErrServiceUnavailable)
	default:
		c.bounce(el, stanza.AsError(err))
	}
	return "", ""
}

// bounce answers a stanza of the component with an error (never an error
// to an error).
func (c *conn) bounce(el *xmlstream.Element, e *stanza.Error) {
	if r := stanza.ErrorReply(el, e); r != nil {
		_ = c.send(r)
	}
}

func isNetErr(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || errors.As(err, &ne)
}

// xmlEscape makes a client-supplied domain safe inside an attribute.
func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "'", "&apos;", "\"", "&quot;", "<", "&lt;", ">", "&gt;").Replace(s)
}
