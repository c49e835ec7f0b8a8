// Package jid implements XMPP addresses (JIDs) as defined by RFC 7622.
//
// Every JID held by the server is kept in canonical form: the localpart has
// been prepared with the PRECIS UsernameCaseMapped rules (RFC 8265), the
// domainpart has been case-folded, NFC-normalised and checked label by label,
// and the resourcepart has been prepared with the PRECIS OpaqueString rules.
// Because preparation happens once, at the edge (Parse or New), the rest of
// the server can compare addresses with == and use them as map keys without
// ever thinking about case or Unicode normalisation again.
//
// Parse sits on the hot path: every stanza carries a "to" and usually a
// "from". The overwhelmingly common input is short, all-ASCII and already
// canonical, so each part first goes through an ASCII-only check that
// returns a substring of the input without allocating; only non-ASCII parts
// pay for PRECIS. The ASCII shortcut must give exactly the result PRECIS
// would give; the tests and FuzzParse compare the two paths on every input.
package jid

import (
	"errors"
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/bidirule"
	"golang.org/x/text/secure/precis"
	"golang.org/x/text/unicode/bidi"
	"golang.org/x/text/unicode/norm"
)

// maxPartBytes is the RFC 7622 limit for each of the three parts, counted in
// octets of the UTF-8 encoding after preparation.
const maxPartBytes = 1023

// maxRawPartBytes bounds the length of a part before preparation, so that a
// hostile peer cannot make us run PRECIS over megabytes of text. Preparation
// shrinks a string by at most a factor of three (a full-width or Kelvin-sign
// character of three octets becomes one ASCII octet; Hangul jamo triples
// compose into one syllable), so anything longer than 4×1023 octets could
// never prepare into an acceptable part. The bound therefore rejects nothing
// that would otherwise be valid.
const maxRawPartBytes = 4 * maxPartBytes

// maxLabelBytes is the DNS limit on one label of the domainpart. We count the
// octets of the prepared (U-label) form; without IDNA's Punycode step this is
// the closest check available.
const maxLabelBytes = 63

// ErrMalformed is wrapped by every error this package returns, so that a
// caller can answer with the jid-malformed stanza error using errors.Is
// without caring which rule was broken.
var ErrMalformed = errors.New("jid: malformed")

// malformedError says which part of the address was rejected and why, while
// still matching ErrMalformed.
type malformedError struct {
	part   string
	reason string
}

func (e *malformedError) Error() string {
	return "jid: malformed " + e.part + ": " + e.reason
}

func (e *malformedError) Unwrap() error { return ErrMalformed }

// The common failures are preallocated: a peer sending garbage addresses
// should not cost us an allocation per stanza just to say no.
var (
	errLocalEmpty      = &malformedError{"localpart", "empty"}
	errLocalTooLong    = &malformedError{"localpart", "longer than 1023 bytes"}
	errLocalForbidden  = &malformedError{"localpart", `contains one of " & ' / : < > @`}
	errLocalDisallowed = &malformedError{"localpart", "contains a disallowed character"}
	errLocalBidi       = &malformedError{"localpart", "violates the Bidi rule"}
	errLocalUnstable   = &malformedError{"localpart", "preparation is not stable"}

	errDomainEmpty      = &malformedError{"domainpart", "empty"}
	errDomainTooLong    = &malformedError{"domainpart", "longer than 1023 bytes"}
	errDomainLabel      = &malformedError{"domainpart", "empty label or label longer than 63 bytes"}
	errDomainChar       = &malformedError{"domainpart", "contains a character not allowed in a host name"}
	errDomainHyphen     = &malformedError{"domainpart", "label begins or ends with a hyphen"}
	errDomainMark       = &malformedError{"domainpart", "label begins with a combining mark"}
	errDomainBidi       = &malformedError{"domainpart", "violates the Bidi rule"}
	errDomainIP         = &malformedError{"domainpart", "invalid IPv6 literal"}
	errDomainDisallowed = &malformedError{"domainpart", "contains a disallowed character"}
	errDomainUnstable   = &malformedError{"domainpart", "preparation is not stable"}

	errResourceEmpty      = &malformedError{"resourcepart", "empty"}
	errResourceTooLong    = &malformedError{"resourcepart", "longer than 1023 bytes"}
	errResourceDisallowed = &malformedError{"resourcepart", "contains a disallowed character"}
	errResourceUnstable   = &malformedError{"resourcepart", "preparation is not stable"}
)

// Profiles.
//
// The localpart uses the rules of precis.UsernameCaseMapped (width folding,
// lower-casing, NFC, IdentifierClass) but applies the Bidi rule ourselves.
// RFC 8265 §3.3 applies the Bidi rule only to strings that contain
// right-to-left characters, whereas x/text applies it to every non-ASCII
// string and so rejects ordinary left-to-right names such as "1é" or "_é"
// (while accepting "1e", which takes its ASCII shortcut). That inconsistency
// would also make our own ASCII shortcut disagree with the full path.
//
// Domain labels use the same rules. IDNA2008's derived properties (RFC 5892)
// and PRECIS's IdentifierClass (RFC 8264) come from the same derivation —
// letters, digits and marks allowed; symbols, punctuation, compatibility and
// unstable code points disallowed; the same CONTEXTJ/CONTEXTO rules — so
// applying IdentifierClass per label, plus the LDH restriction on ASCII, is a
// faithful stand-in for IDNA2008 without importing golang.org/x/net/idna.
var (
	identProfile    = precis.NewIdentifier(precis.FoldWidth, precis.LowerCase(), precis.Norm(norm.NFC))
	resourceProfile = precis.OpaqueString
)

// JID is an XMPP address (RFC 7622), always stored in canonical
// (PRECIS-prepared) form. The zero value is the empty JID. Comparable: usable
// as a map key; == compares canonical forms.
type JID struct {
	local, domain, resource string
}

// Parse splits s into localpart, domainpart and resourcepart as RFC 7622 §3.1
// describes — the resourcepart starts after the first '/', and the localpart
// ends at the first '@' before that '/' — then prepares and validates each
// part. "a@b/c/d" therefore has resource "c/d", and "a/b@c" is the domain
// "a" with resource "b@c". Errors wrap ErrMalformed.
func Parse(s string) (JID, error) {
	return parse(s, true)
}

// parse is Parse with the ASCII shortcuts switchable, so that the tests can
// check that the shortcuts never change the outcome.
func parse(s string, fast bool) (JID, error) {
	head, res, hasRes := strings.Cut(s, "/")
	local, dom, hasLocal := strings.Cut(head, "@")
	if !hasLocal {
		local, dom = "", head
	}

	var j JID
	var err error
	if hasLocal {
		// An '@' announces a localpart, so it must not be empty: "@example.com"
		// is malformed rather than equal to "example.com".
		if j.local, err = prepareLocal(local, fast); err != nil {
			return JID{}, err
		}
	}
	if j.domain, err = prepareDomain(dom, fast); err != nil {
		return JID{}, err
	}
	if hasRes {
		if j.resource, err = prepareResource(res, fast); err != nil {
			return JID{}, err
		}
	}
	return j, nil
}

// MustParse is Parse for addresses known to be valid, such as constants and
// test fixtures; it panics on error.
func MustParse(s string) JID {
	j, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return j
}

// New builds a JID from separate parts, preparing and validating each. An
// empty local or resource means that part is absent; the domain is
// required. Unlike Parse, no splitting happens: a resource may contain '/'
// or '@', while a local or domain containing them is rejected.
func New(local, domain, resource string) (JID, error) {
	var j JID
	var err error
	if local != "" {
		if j.local, err = prepareLocal(local, true); err != nil {
			return JID{}, err
		}
	}
	if j.domain, err = prepareDomain(domain, true); err != nil {
		return JID{}, err
	}
	if resource != "" {
		if j.resource, err = prepareResource(resource, true); err != nil {
			return JID{}, err
		}
	}
	return j, nil
}

// PrepareLocal applies the localpart profile to a bare username (for the CLI
// "user add" and the SASL authcid), so that account names are stored in the
// same canonical form as the localparts of parsed JIDs. Errors wrap
// ErrMalformed.
func PrepareLocal(s string) (string, error) {
	return prepareLocal(s, true)
}

// Local returns the canonical localpart, or "" if there is none.
func (j JID) Local() string { return j.local }

// Domain returns the canonical domainpart.
func (j JID) Domain() string { return j.domain }

// Resource returns the canonical resourcepart, or "" if there is none.
func (j JID) Resource() string { return j.resource }

// Bare returns j without its resource: the account address used for rosters,
// subscriptions and offline storage.
func (j JID) Bare() JID { return JID{local: j.local, domain: j.domain} }

// Domainpart returns the JID consisting of j's domain alone, i.e. the server
// (or component) that j belongs to.
func (j JID) Domainpart() JID { return JID{domain: j.domain} }

// WithResource returns j with its resource replaced by r, prepared with the
// resourcepart profile; this is what resource binding needs. An empty r
// yields the bare JID, in line with New. It fails on the zero JID, which has
// no domain to attach a resource to.
func (j JID) WithResource(r string) (JID, error) {
	if j.domain == "" {
		return JID{}, errDomainEmpty
	}
	if r == "" {
		return j.Bare(), nil
	}
	res, err := prepareResource(r, true)
	if err != nil {
		return JID{}, err
	}
	return JID{local: j.local, domain: j.domain, resource: res}, nil
}

// IsBare reports whether j has no resource.
func (j JID) IsBare() bool { return j.resource == "" }

// IsZero reports whether j is the zero (empty) JID, e.g. an absent "from".
func (j JID) IsZero() bool { return j == JID{} }

// String returns local@domain/resource, omitting the parts that are absent.
// The result parses back to j. A domain-only JID costs no allocation.
func (j JID) String() string {
	switch {
	case j.local == "" && j.resource == "":
		return j.domain
	case j.resource == "":
		return j.local + "@" + j.domain
	case j.local == "":
		return j.domain + "/" + j.resource
	default:
		return j.local + "@" + j.domain + "/" + j.resource
	}
}

// BareString returns the string form of j.Bare() without building it.
func (j JID) BareString() string {
	if j.local == "" {
		return j.domain
	}
	return j.local + "@" + j.domain
}

// prepareLocal prepares and validates a localpart (RFC 7622 §3.3).
func prepareLocal(s string, fast bool) (string, error) {
	if s == "" {
		return "", errLocalEmpty
	}
	if len(s) > maxRawPartBytes {
		return "", errLocalTooLong
	}
	if fast {
		if out, handled, err := asciiLocal(s); handled {
			return out, err
		}
	}
	out, err := stable(identProfile, s)
	switch {
	case err == errUnstable:
		return "", errLocalUnstable
	case err != nil:
		return "", errLocalDisallowed
	case out == "":
		return "", errLocalEmpty
	case len(out) > maxPartBytes:
		return "", errLocalTooLong
	case strings.ContainsAny(out, localForbidden):
		// Checked after preparation: width folding turns U+FF20 into '@'.
		return "", errLocalForbidden
	case !bidiOK(out):
		return "", errLocalBidi
	}
	return out, nil
}

// localForbidden lists the ASCII characters RFC 7622 §3.3.1 excludes from
// localparts even though IdentifierClass allows them; '@' and '/' would also
// break parsing.
const localForbidden = `"&'/:<>@`

// asciiLocal is the localpart shortcut. For a string that is entirely ASCII,
// the UsernameCaseMapped rules reduce to: printable characters other than
// space (IdentifierClass), upper case mapped to lower case, no Bidi check
// (ASCII has no right-to-left characters). handled is false if s is not all
// ASCII;
// the whole string is scanned before deciding, because a later combining
// character could change an earlier ASCII one under NFC ("<" + U+0338 → "≮").
func asciiLocal(s string) (out string, handled bool, err error) {
	upper, bad, forbidden := false, false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return "", false, nil
		case c <= ' ' || c == 0x7f:
			bad = true
		case 'A' <= c && c <= 'Z':
			upper = true
		case c == '"' || c == '&' || c == '\'' || c == '/' || c == ':' || c == '<' || c == '>' || c == '@':
			forbidden = true
		}
	}
	switch {
	case bad:
		return "", true, errLocalDisallowed
	case len(s) > maxPartBytes:
		return "", true, errLocalTooLong
	case forbidden:
		return "", true, errLocalForbidden
	case upper:
		return asciiLower(s), true, nil
	}
	return s, true, nil
}

// prepareResource prepares and validates a resourcepart (RFC 7622 §3.4).
func prepareResource(s string, fast bool) (string, error) {
	if s == "" {
		return "", errResourceEmpty
	}
	if len(s) > maxRawPartBytes {
		return "", errResourceTooLong
	}
	if fast {
		if out, handled, err := asciiResource(s); handled {
			return out, err
		}
	}
	out, err := stable(resourceProfile, s)
	switch {
	case err == errUnstable:
		return "", errResourceUnstable
	case err != nil:
		return "", errResourceDisallowed
	case out == "":
		return "", errResourceEmpty
	case len(out) > maxPartBytes:
		return "", errResourceTooLong
	}
	return out, nil
}

// asciiResource is the resourcepart shortcut: for ASCII, OpaqueString
// (FreeformClass, no case mapping, only non-ASCII spaces mapped) accepts
// exactly the printable characters including space, unchanged.
func asciiResource(s string) (out string, handled bool, err error) {
	bad := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= utf8.RuneSelf:
			return "", false, nil
		case c < ' ' || c == 0x7f:
			bad = true
		}
	}
	switch {
	case bad:
		return "", true, errResourceDisallowed
	case len(s) > maxPartBytes:
		return "", true, errResourceTooLong
	}
	return s, true, nil
}

// prepareDomain prepares and validates a domainpart (RFC 7622 §3.2).
//
// Steps: map the ideographic and full-width full stops to '.', as UTS #46
// does; strip one trailing '.', which RFC 7622 requires before any other
// canonicalisation; accept a bracketed IPv6 literal in its canonical text
// form; otherwise prepare each label (ASCII labels are simply lower-cased)
// and check the host-name rules on the result.
//
// A-labels ("xn--…") are not converted to U-labels: that needs Punycode and
// IDNA tables we do not carry. They are accepted as ordinary LDH labels, so
// "xn--bcher-kva.example" and "bücher.example" are distinct domains here.
func prepareDomain(s string, fast bool) (string, error) {
	if s == "" {
		return "", errDomainEmpty
	}
	if len(s) > maxRawPartBytes {
		return "", errDomainTooLong
	}
	ascii := isASCII(s)
	if !ascii {
		s = mapDots(s)
	}
	s = strings.TrimSuffix(s, ".")
	if s == "" {
		return "", errDomainEmpty
	}
	if s[0] == '[' {
		return ipLiteral(s)
	}

	if ascii && fast {
		// Whole-domain shortcut: for ASCII, per-label preparation is plain
		// lower-casing, so it can be done (or skipped) in one go.
		if hasUpper(s) {
			s = asciiLower(s)
		}
		if err := checkDomain(s); err != nil {
			return "", err
		}
		return s, nil
	}

	var b strings.Builder
	b.Grow(len(s))
	rest := s
	for {
		label, tail, more := strings.Cut(rest, ".")
		if label != "" {
			if fast && isASCII(label) {
				b.WriteString(label)
			} else {
				l, err := stable(identProfile, label)
				if err == errUnstable {
					return "", errDomainUnstable
				}
				if err != nil {
					return "", errDomainDisallowed
				}
				b.WriteString(l)
			}
		}
		if !more {
			break
		}
		b.WriteByte('.')
		rest = tail
	}
	out := b.String()
	if hasUpper(out) {
		// Only reachable from ASCII labels copied above in fast mode;
		// PRECIS output is already lower case.
		out = asciiLower(out)
	}
	if err := checkDomain(out); err != nil {
		return "", err
	}
	return out, nil
}

// checkDomain enforces the host-name rules on a prepared domainpart: total
// length, label lengths, LDH for ASCII characters, no leading or trailing
// hyphen, no leading combining mark (RFC 5891 §4.2.3), and the Bidi rule on
// every label if any label is right-to-left (RFC 5893 §2).
func checkDomain(s string) error {
	if s == "" {
		return errDomainEmpty
	}
	if len(s) > maxPartBytes {
		return errDomainTooLong
	}
	rtl := false
	for rest := s; ; {
		label, tail, more := strings.Cut(rest, ".")
		if label == "" || len(label) > maxLabelBytes {
			return errDomainLabel
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return errDomainHyphen
		}
		ascii := true
		for i := 0; i < len(label); i++ {
			c := label[i]
			if c >= utf8.RuneSelf {
				ascii = false
				continue
			}
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
				return errDomainChar
			}
		}
		if label[0] >= utf8.RuneSelf {
			r, _ := utf8.DecodeRuneInString(label)
			if unicode.Is(unicode.M, r) {
				return errDomainMark
			}
		}
		if !rtl && !ascii && bidirule.DirectionString(label) == bidi.RightToLeft {
			rtl = true
		}
		if !more {
			break
		}
		rest = tail
	}
	if rtl {
		for rest := s; ; {
			label, tail, more := strings.Cut(rest, ".")
			if !bidirule.ValidString(label) {
				return errDomainBidi
			}
			if !more {
				break
			}
			rest = tail
		}
	}
	return nil
}

// ipLiteral accepts "[IPv6]" and returns it in the canonical text form of
// RFC 5952 (as produced by net/netip), so that different spellings of one
// address compare equal. Zones are rejected: they are meaningless to peers.
func ipLiteral(s string) (string, error) {
	if len(s) < 2 || s[len(s)-1] != ']' {
		return "", errDomainIP
	}
	inner := s[1 : len(s)-1]
	addr, err := netip.ParseAddr(inner)
	if err != nil || !addr.Is6() || addr.Zone() != "" {
		return "", errDomainIP
	}
	if c := addr.String(); c != inner {
		return "[" + c + "]", nil
	}
	return s, nil
}

// mapDots replaces the dot-like label separators that UTS #46 maps to '.'
// (U+3002 IDEOGRAPHIC FULL STOP, U+FF0E FULLWIDTH FULL STOP, U+FF61
// HALFWIDTH IDEOGRAPHIC FULL STOP). It works on bytes, so invalid UTF-8 is
// left for the profile to reject rather than silently repaired.
func mapDots(s string) string {
	for _, d := range [...]string{"\u3002", "\uff0e", "\uff61"} {
		if strings.Contains(s, d) {
			s = strings.ReplaceAll(s, d, ".")
		}
	}
	return s
}

// errInvalidUTF8 is mapped to the "disallowed character" error of each part.
var errInvalidUTF8 = errors.New("jid: invalid UTF-8")

// errUnstable reports that repeated preparation did not converge.
var errUnstable = errors.New("jid: unstable preparation")

// stable applies p until the output stops changing, as RFC 8264 §7
// recommends, so that a prepared part is a fixed point and
// Parse(j.String()) == j holds. If the first application changes nothing the
// result is trivially stable and no second pass is made.
//
// Invalid UTF-8 is rejected up front: some x/text transformers would
// silently replace it with U+FFFD, turning garbage into a valid address.
func stable(p *precis.Profile, s string) (string, error) {
	if !utf8.ValidString(s) {
		return "", errInvalidUTF8
	}
	out, err := p.String(s)
	if err != nil {
		return "", err
	}
	if out == s {
		return s, nil
	}
	for range 3 {
		next, err := p.String(out)
		if err != nil {
			return "", err
		}
		if next == out {
			return out, nil
		}
		out = next
	}
	return "", errUnstable
}

// bidiOK applies the Bidi rule (RFC 5893) to strings with right-to-left
// characters, as RFC 8265 §3.3 step 4 specifies.
func bidiOK(s string) bool {
	if isASCII(s) || bidirule.DirectionString(s) != bidi.RightToLeft {
		return true
	}
	return bidirule.ValidString(s)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func hasUpper(s string) bool {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			return true
		}
	}
	return false
}

// asciiLower lower-cases the ASCII letters of s and leaves every other byte
// alone (unlike strings.ToLower, which would touch non-ASCII text too).
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
