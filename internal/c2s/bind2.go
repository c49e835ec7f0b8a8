package c2s

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"bluetick/internal/auth"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// XEP-0386 Bind 2: a resource bound inside the SASL2 <authenticate/>, with
// session features enabled at once: carbons (XEP-0280), the client state
// (XEP-0352) and stream management (XEP-0198), so a client is online,
// acking and copied on its other devices' messages after one round trip.
//
// The server picks the resource: the client's <tag/> (its name, as-is),
// a dot, and 8 hex digits of SHA-256 over the account and the SASL2
// user-agent id. The same installation thus gets the same resource at
// every login, which replaces its previous session like any bind of a
// resource in use (<conflict/>), while the id itself is not revealed: 32
// bits of a hash of a 122-bit random UUID give nothing back, and the
// account in the hash keeps two accounts of one device unlinkable. Without
// an id the suffix is random.
//
// Offline messages are delivered when the client sends its initial
// presence, as after RFC 6120 binding, not dropped for the archive as
// XEP-0386 §2.2 suggests: the archive is optional (archive.mode) and a
// stored message is never lost. They carry their <stanza-id/>, so a
// client that also syncs the archive recognises them. When the archive is
// on, <bound/> holds its XEP-0313 <metadata/> at the time of binding.

// nsCarbons2 is XEP-0280's namespace.
const nsCarbons2 = "urn:xmpp:carbons:2"

// bind2Request is a parsed Bind2 <bind/>.
type bind2Request struct {
	tag     string             // validated resourcepart prefix, "" if none
	carbons bool               // <enable xmlns='urn:xmpp:carbons:2'/>
	csi     string             // "active", "inactive", or "" (none)
	sm      *xmlstream.Element // XEP-0198 <enable/>, nil: none
}

// bind2Feature is Bind2's entry in the SASL2 <inline/>, with the session
// features it can enable inline.
func bind2Feature() *xmlstream.Element {
	in := xmlstream.New(nsBind2, "inline")
	for _, v := range []string{nsCarbons2, nsCSI, nsSM} {
		in.Append(xmlstream.New(nsBind2, "feature", "var", v))
	}
	return xmlstream.New(nsBind2, "bind").Append(in)
}

// parseBind2 checks a <bind/> of an <authenticate/>.
func parseBind2(el *xmlstream.Element, domain string) (*bind2Request, *auth.Failure) {
	b := &bind2Request{}
	seenTag := false
	for _, c := range el.Elements() {
		switch {
		case c.Space == nsBind2 && c.Name == "tag":
			if seenTag {
				return nil, malformed("more than one <tag/> in <bind/>")
			}
			seenTag = true
			tag := strings.TrimSpace(c.Text())
			if !validTag(tag, domain) {
				return nil, malformed("the <bind/> tag must be a short name usable in a resource (at most 64 bytes)")
			}
			b.tag = strings.Clone(tag)
		case c.Space == nsCarbons2 && c.Name == "enable":
			b.carbons = true
		case c.Space == nsCSI && (c.Name == "active" || c.Name == "inactive"):
			if b.csi != "" {
				return nil, malformed("more than one client state in <bind/>")
			}
			b.csi = c.Name
		case c.Space == nsSM && c.Name == "enable":
			if b.sm != nil {
				return nil, malformed("more than one <enable/> in <bind/>")
			}
			b.sm = c
		}
		// Anything else was not offered in <inline/>: ignored.
	}
	return b, nil
}

// bind2Resource is the resource for a Bind2 request of user (see above).
func bind2Resource(tag, user string, ua *userAgent) string {
	var suffix string
	if ua != nil && ua.id != "" {
		sum := sha256.Sum256([]byte("bluetick bind2 resource\x00" + user + "\x00" + ua.id))
		suffix = hex.EncodeToString(sum[:4])
	} else {
		suffix = strings.ToLower(server.NewID()[:8])
	}
	if tag == "" {
		return suffix
	}
	return tag + "." + suffix
}

// bind2 makes the session of a Bind2 request (XEP-0386 §2.2) and returns
// it with its <bound/>. The caller writes <success/>, then attaches the
// session and announces it with Server.Bound, in that order: nothing is
// routed to it before the client has its <success/>, and a session it
// replaces is kicked only once it has a connection to kick in turn.
func (st *stream) bind2(ctx context.Context, req *bind2Request, ua *userAgent) (*session.Session, *xmlstream.Element, error) {
	full, err := jid.New(st.user, st.svc.cfg.Domain, bind2Resource(req.tag, st.user, ua))
	if err != nil {
		// The tag was checked with the request: not the client's fault.
		st.log.Error("bind2: resource", "tag", req.tag, "err", err)
		return nil, nil, &stanza.StreamError{Condition: "internal-server-error", Text: "no resource could be bound"}
	}
	s := session.New(server.NewID(), full, st.svc.cfg.Limits.MaxQueue, st.hooks())
	if ua != nil {
		s.SetUserAgentID(ua.id) // a revoked device is logged out by it
	}
	bound := xmlstream.New(nsBind2, "bound")
	if a := st.svc.im.Archive(); a != nil {
		// Before the session is bound: whatever arrives later is either
		// routed to it or after <end/> in the archive.
		if md, err := a.Metadata(ctx, full.Bare()); err == nil {
			bound.Append(md)
		} else {
			st.log.Warn("bind2: archive metadata", "err", err)
		}
	}
	s.SetCarbons(req.carbons)
	if req.csi == "inactive" {
		s.SetInactive(true)
	}
	if req.sm != nil {
		bound.Append(st.enableSM(s, req.sm))
	}
	st.adopt(s)
	st.log = st.log.With("jid", full.String())
	return s, bound, nil
}
