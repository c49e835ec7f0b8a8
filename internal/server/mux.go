package server

import (
	"context"
	"sort"

	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// IQ is one request the server answers itself.
type IQ struct {
	Sess    *session.Session
	From    jid.JID // full JID of the requester
	To      jid.JID // the server's domain, or a bare JID the server answers for
	Type    string  // get or set
	Payload *xmlstream.Element
	El      *xmlstream.Element
}

// IQHandler answers one IQ: the result payload (nil for an empty result), or
// an error that becomes the stanza error (a non-stanza error becomes
// internal-server-error).
type IQHandler func(ctx context.Context, iq *IQ) (*xmlstream.Element, error)

// Targets of a handler: where the IQ may be addressed.
const (
	ToServer  = 1 << iota // the domain itself
	ToSelf                // the requester's own bare JID (or no 'to')
	ToAccount             // another account's bare JID
)

type route struct {
	h       IQHandler
	targets int
}

type muxKey struct{ typ, space, name string }

// Mux dispatches IQs by (type, payload namespace, payload name), like
// net/http's ServeMux, and computes disco#info from what is registered, so
// the server advertises exactly what it handles (XEP-0030).
type Mux struct {
	routes         map[muxKey]route
	serverFeatures map[string]bool
	accountFeats   map[string]bool
	// serverInfo holds extra disco#info children of the domain registered
	// by services that live on it: identities (XEP-0030) and extension
	// forms (XEP-0128), e.g. HTTP upload's store/file identity and its
	// max-file-size form, which clients read before asking for a slot.
	serverInfo []*xmlstream.Element
	commands   []command // XEP-0050 commands on the domain (commands.go)
}

func newMux() *Mux {
	return &Mux{routes: map[muxKey]route{}, serverFeatures: map[string]bool{}, accountFeats: map[string]bool{}}
}

// Handle registers h for IQs of type typ whose payload is <name xmlns=space/>
// sent to targets, and advertises feature (if not empty) on the server
// and/or account disco.
func (m *Mux) Handle(typ, space, name string, targets int, feature string, h IQHandler) {
	m.routes[muxKey{typ, space, name}] = route{h: h, targets: targets}
	if feature != "" {
		m.Feature(targets, feature)
	}
}

// Feature advertises a feature handled outside the mux (stream features
// and message semantics such as XEP-0359 stanza ids).
func (m *Mux) Feature(targets int, feature string) {
	if targets&ToServer != 0 {
		m.serverFeatures[feature] = true
	}
	if targets&(ToSelf|ToAccount) != 0 {
		m.accountFeats[feature] = true
	}
}

// ServerInfo adds identity or XEP-0128 form elements (in the disco#info
// namespace or jabber:x:data) to the domain's disco#info answer. Register
// them together with the handler of the service they describe.
func (m *Mux) ServerInfo(els ...*xmlstream.Element) {
	m.serverInfo = append(m.serverInfo, els...)
}

func (m *Mux) features(server bool) []string {
	set := m.accountFeats
	if server {
		set = m.serverFeatures
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	sort.Strings(out)
	return out
}

// handleIQ routes or answers an IQ from a bound session (RFC 6121 §8.5).
func (s *Server) handleIQ(ctx context.Context, sess *session.Session, to jid.JID, el *xmlstream.Element) {
	typ := el.Attr("type")
	if s.blockedIQ(ctx, sess, to, el) { // mam branch: XEP-0191
		return
	}
	switch typ {
	case "get", "set":
	case "result", "error":
		// A response: to a full JID it goes to that resource; to us it
		// answers one of our queries (iqwait.go) or is consumed.
		if (to.IsZero() || to == s.Domain) && s.answered(sess.JID(), el) {
			return
		}
		if !to.IsZero() && !to.IsBare() && s.local(to) {
			if t := s.Router.Session(to); t != nil {
				_ = t.Send(el)
			}
		}
		return
	default:
		s.reply(sess, el, stanza.NewError("bad-request", "iq type must be get, set, result or error"))
		return
	}
	if el.Attr("id") == "" {
		s.reply(sess, el, stanza.NewError("bad-request", "iq needs an id"))
		return
	}
	payloads := el.Elements()
	if len(payloads) != 1 {
		s.reply(sess, el, stanza.NewError("bad-request", "an iq get or set carries exactly one payload"))
		return
	}
	payload := payloads[0]

	var target int
	switch {
	case to.IsZero() || to == sess.JID().Bare():
		target = ToSelf
		if to.IsZero() {
			to = sess.JID().Bare()
		}
	case to == s.Domain:
		target = ToServer
	case to.Domain() != s.Domain.Domain():
		s.reply(sess, el, stanza.NewError("remote-server-not-found", "this server does not federate with other domains"))
		return
	case to.Local() == "":
		// A resource on the domain itself: nothing is there.
		s.reply(sess, el, stanza.ErrServiceUnavailable)
		return
	case !to.IsBare():
		// To a full JID: the resource answers, if it exists.
		if t := s.Router.Session(to); t != nil {
			if err := t.Send(el); err == nil {
				return
			}
		}
		s.reply(sess, el, stanza.ErrServiceUnavailable)
		return
	default:
		target = ToAccount
		ok, err := s.store.UserExists(ctx, to.Local())
		if err != nil || !ok {
			s.reply(sess, el, stanza.ErrServiceUnavailable)
			return
		}
	}

	r, ok := s.mux.routes[muxKey{typ, payload.Space, payload.Name}]
	if !ok || r.targets&target == 0 {
		s.reply(sess, el, stanza.ErrServiceUnavailable)
		return
	}
	res, err := r.h(ctx, &IQ{Sess: sess, From: sess.JID(), To: to, Type: typ, Payload: payload, El: el})
	if err != nil {
		se := stanza.AsError(err)
		if se == stanza.ErrInternal {
			s.log.Error("iq handler failed", "ns", payload.Space, "from", sess.JID().String(), "err", err)
		}
		s.reply(sess, el, se)
		return
	}
	out := xmlstream.New(xmlstream.NSClient, "iq", "type", "result", "id", el.Attr("id"), "to", sess.JID().String())
	if el.Attr("to") != "" {
		out.SetAttr("from", el.Attr("to"))
	}
	out.Append(res)
	_ = sess.Send(out)
}
