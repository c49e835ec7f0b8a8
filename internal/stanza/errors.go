// Package stanza holds the XMPP stanza layer (RFC 6120 §8): views over
// message, presence and iq elements, and the one table that maps Go errors
// to stanza errors (§8.3) and stream errors (§4.9).
package stanza

import (
	"errors"

	"bluetick/internal/xmlstream"
)

// Namespaces of the error vocabularies.
const (
	NSStanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"
	NSStreams = "urn:ietf:params:xml:ns:xmpp-streams"
)

// Error is a stanza error (RFC 6120 §8.3): a defined condition, the error
// type that tells the sender whether to retry, and optional text and
// application-specific child.
type Error struct {
	Type      string // auth, cancel, continue, modify, wait
	Condition string // e.g. "service-unavailable"
	Text      string
	App       *xmlstream.Element // application-specific condition, optional
}

func (e *Error) Error() string {
	if e.Text != "" {
		return e.Condition + ": " + e.Text
	}
	return e.Condition
}

// defaultTypes is the error type RFC 6120 §8.3.3 recommends per condition.
var defaultTypes = map[string]string{
	"bad-request":             "modify",
	"conflict":                "cancel",
	"feature-not-implemented": "cancel",
	"forbidden":               "auth",
	"gone":                    "cancel",
	"internal-server-error":   "cancel",
	"item-not-found":          "cancel",
	"jid-malformed":           "modify",
	"not-acceptable":          "modify",
	"not-allowed":             "cancel",
	"not-authorized":          "auth",
	"policy-violation":        "modify",
	"recipient-unavailable":   "wait",
	"redirect":                "modify",
	"registration-required":   "auth",
	"remote-server-not-found": "cancel",
	"remote-server-timeout":   "wait",
	"resource-constraint":     "wait",
	"service-unavailable":     "cancel",
	"subscription-required":   "auth",
	"undefined-condition":     "cancel",
	"unexpected-request":      "wait",
}

// NewError returns a stanza error with the condition's recommended type.
func NewError(condition, text string) *Error {
	t, ok := defaultTypes[condition]
	if !ok {
		t = "cancel"
	}
	return &Error{Type: t, Condition: condition, Text: text}
}

// Common errors, shared because they carry no per-call text.
var (
	ErrServiceUnavailable = NewError("service-unavailable", "")
	ErrBadRequest         = NewError("bad-request", "")
	ErrItemNotFound       = NewError("item-not-found", "")
	ErrInternal           = NewError("internal-server-error", "")
	ErrOfflineFull        = &Error{Type: "wait", Condition: "resource-constraint", Text: "offline storage full"}
)

// AsError maps any error to a stanza error: a *Error passes through, anything
// else becomes internal-server-error (the detail goes to the log, not the
// wire).
func AsError(err error) *Error {
	var se *Error
	if errors.As(err, &se) {
		return se
	}
	return ErrInternal
}

// Element renders the <error/> child.
func (e *Error) Element(by string) *xmlstream.Element {
	el := xmlstream.New(xmlstream.NSClient, "error", "type", e.Type, "by", by)
	el.Append(xmlstream.New(NSStanzas, e.Condition))
	if e.Text != "" {
		el.Append(xmlstream.New(NSStanzas, "text", "xml:lang", "en").AppendText(e.Text))
	}
	if e.App != nil {
		el.Append(e.App)
	}
	return el
}

// ErrorReply turns the stanza orig into its error bounce (RFC 6120 §8.3.1):
// same name and id, to and from swapped, type='error', the original payload
// kept (servers may include it; it helps clients match), plus the error.
// It returns nil when orig is itself an error, which must never be answered.
func ErrorReply(orig *xmlstream.Element, e *Error) *xmlstream.Element {
	if orig.Attr("type") == "error" {
		return nil
	}
	r := &xmlstream.Element{Space: orig.Space, Name: orig.Name}
	r.SetAttr("id", orig.Attr("id"))
	r.SetAttr("to", orig.Attr("from"))
	r.SetAttr("from", orig.Attr("to"))
	r.SetAttr("type", "error")
	if orig.Name != "iq" {
		for _, n := range orig.Children {
			if n.Elem != nil {
				r.Children = append(r.Children, n)
			}
		}
	} else if q := orig.FirstChild(); q != nil {
		r.Append(q)
	}
	r.Append(e.Element(""))
	return r
}

// StreamError is a stream-level error (RFC 6120 §4.9.3): it ends the stream.
type StreamError struct {
	Condition string // e.g. "not-well-formed", "policy-violation"
	Text      string
	App       *xmlstream.Element // application-specific condition, optional
}

func (e *StreamError) Error() string {
	if e.Text != "" {
		return "stream error " + e.Condition + ": " + e.Text
	}
	return "stream error " + e.Condition
}

// Element renders <stream:error/>.
func (e *StreamError) Element() *xmlstream.Element {
	el := xmlstream.New(xmlstream.NSStream, "error")
	el.Append(xmlstream.New(NSStreams, e.Condition))
	el.Append(e.App)
	if e.Text != "" {
		el.Append(xmlstream.New(NSStreams, "text", "xml:lang", "en").AppendText(e.Text))
	}
	return el
}

// StreamErrorFor maps a decoder error to the stream error RFC 6120 §4.9.3
// names for it.
func StreamErrorFor(err error) *StreamError {
	var se *StreamError
	switch {
	case errors.As(err, &se):
		return se
	case errors.Is(err, xmlstream.ErrRestrictedXML):
		return &StreamError{Condition: "restricted-xml", Text: err.Error()}
	case errors.Is(err, xmlstream.ErrTooLarge):
		return &StreamError{Condition: "policy-violation", Text: err.Error()}
	case errors.Is(err, xmlstream.ErrBadNamespacePrefix):
		return &StreamError{Condition: "bad-namespace-prefix", Text: err.Error()}
	case errors.Is(err, xmlstream.ErrNotWellFormed):
		return &StreamError{Condition: "not-well-formed", Text: err.Error()}
	}
	return &StreamError{Condition: "internal-server-error"}
}
