package xmlstream

import (
	"errors"
	"strconv"
	"unicode/utf8"
)

// The sentinel error kinds. Every syntax or policy error the Decoder and
// Parse return wraps exactly one of them, so the stream layer can pick the
// RFC 6120 §4.9.3 condition with errors.Is without parsing messages.
var (
	// ErrNotWellFormed: the input is not well-formed XML (or not
	// namespace-well-formed), maps to <not-well-formed/>.
	ErrNotWellFormed = errors.New("not well-formed")
	// ErrRestrictedXML: the input uses XML features RFC 6120 §11.1 forbids
	// (comments, processing instructions other than the XML declaration,
	// DTDs, entity references other than the five predefined ones), maps to
	// <restricted-xml/>.
	ErrRestrictedXML = errors.New("restricted XML")
	// ErrTooLarge: an element exceeded Limits.MaxElementBytes or
	// Limits.MaxDepth, or declared an unreasonable number of namespace
	// prefixes, maps to <policy-violation/>.
	ErrTooLarge = errors.New("element too large")
	// ErrBadNamespacePrefix: an element used a prefix that is not declared,
	// maps to <bad-namespace-prefix/>.
	ErrBadNamespacePrefix = errors.New("bad namespace prefix")
)

// errCode narrows an error within its kind. Callers never see it; the
// differential fuzz test uses it to tell deliberate strictness (where this
// package rejects what encoding/xml accepts) from real disagreements.
type errCode uint8

const (
	codeOther      errCode = iota
	codeNameChar           // a non-ASCII character the XML 1.0 5th edition name rules reject
	codeQName              // a name that is not a valid namespace QName (":a", "a:", "a:b:c")
	codeNSDecl             // an invalid namespace declaration (xmlns:p='', rebinding xml or xmlns)
	codeDupAttr            // duplicate attribute
	codeAttrSpace          // no whitespace between attributes
	codeCharRef            // a character reference to a character XML does not allow
	codeRootText           // character data directly inside the stream root
	codeUndeclared         // an undeclared element prefix
)

// syntaxError is the concrete error type. Its message goes to the peer as the
// text of the stream error, so it names the problem and the byte offset in
// the stream (useful when reading a client's log) and nothing else.
type syntaxError struct {
	kind error
	code errCode
	msg  string
	off  int64
}

func (e *syntaxError) Error() string {
	s := "xmlstream: " + e.kind.Error()
	if e.msg != "" {
		s += ": " + e.msg
	}
	if e.off >= 0 {
		s += " at byte " + strconv.FormatInt(e.off, 10)
	}
	return s
}

func (e *syntaxError) Unwrap() error { return e.kind }

func errAt(kind error, code errCode, off int64, msg string) error {
	return &syntaxError{kind: kind, code: code, msg: msg, off: off}
}

// codeOf returns the errCode of err, or codeOther.
func codeOf(err error) errCode {
	var se *syntaxError
	if errors.As(err, &se) {
		return se.code
	}
	return codeOther
}

// clip shortens a name quoted in an error message: the message goes back to
// the peer and into logs, and a hostile name can be as long as the element
// limit.
func clip(name []byte) string {
	const max = 64
	if len(name) <= max {
		return string(name)
	}
	// Cut at a rune boundary so the message stays valid UTF-8.
	n := max
	for n > 0 && !utf8.RuneStart(name[n]) {
		n--
	}
	return string(name[:n]) + "..."
}
