// Package c2s accepts client connections — TCP with STARTTLS (RFC 6120),
// direct TLS (XEP-0368) and WebSocket (RFC 7395) — and runs one stream
// loop for all of them: negotiation (TLS, SASL, binding, stream
// management), then stanzas handed to the IM core (package server).
package c2s

import (
	"crypto/tls"
	"net/netip"

	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// transport is what the stream loop needs from a connection, whatever its
// framing. Writes are safe from any goroutine: before binding the stream
// loop writes, afterwards the session's writer does, and anyone may Close.
type transport interface {
	// Next returns the next stream event: a stream header (StreamStart,
	// or <open/> on WebSocket), a complete element, or the stream's end.
	Next() (xmlstream.Event, error)
	// Restart prepares for a new stream header after STARTTLS or SASL.
	Restart()
	// SendHeader answers a stream header (ids and names are ours: safe to
	// write unescaped).
	SendHeader(from, id, lang string) error
	// Write sends top-level elements in order (implements session.Writer).
	Write(els []*xmlstream.Element) error
	// Close writes the stream error (if any) and the stream end, then
	// closes the connection. Safe to call more than once.
	Close(se *stanza.StreamError)
	// StartTLS upgrades the connection (TCP only).
	StartTLS(cfg *tls.Config) error
	// Secure reports whether the connection is encrypted.
	Secure() bool
	// CanStartTLS reports whether STARTTLS may be offered.
	CanStartTLS() bool
	// Remote is the client's address.
	Remote() netip.Addr
	// Kind names the transport in logs and metrics.
	Kind() string
}

// streamNS returns the element's namespace, treating an unqualified
// top-level element as jabber:client (WebSocket clients may omit it).
func streamNS(el *xmlstream.Element) string {
	if el.Space == "" {
		return xmlstream.NSClient
	}
	return el.Space
}
