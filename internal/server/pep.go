package server

import (
	"context"

	"bluetick/internal/pep"
	"bluetick/internal/xmlstream"
)

// registerPEP puts the personal eventing service (package pep) on the mux:
// PEP itself (XEP-0163/0060) at the account's bare JID, private XML
// storage (XEP-0049) and vcard-temp (XEP-0054). Presence hooks into it from
// presence.go; disco from features.go.
func (s *Server) registerPEP() {
	lim := xmlstream.Limits{MaxElementBytes: s.cfg.Limits.MaxStanzaBytes}
	s.pep = pep.New(s.Domain, s.store, s.Router, lim, s.Query, s.log)
	m := s.mux
	acct := ToSelf | ToAccount
	for _, typ := range []string{"get", "set"} {
		m.Handle(typ, pep.NSPubSub, "pubsub", acct, "", pepIQ(s.pep.PubSub))
		// Owner-only requests reach the handlers from other accounts too,
		// so they get forbidden (XEP-0060 §8, XEP-0049 §3), not
		// service-unavailable.
		m.Handle(typ, pep.NSPubSubOwner, "pubsub", acct, "", pepIQ(s.pep.PubSubOwner))
		m.Handle(typ, pep.NSPrivate, "query", acct, "", pepIQ(s.pep.Private))
	}
	m.Handle("get", pep.NSVCard, "vCard", ToServer|acct, "", pepIQ(s.pep.VCard))
	m.Handle("set", pep.NSVCard, "vCard", acct, "", pepIQ(s.pep.VCard))
	for _, f := range pep.Features() {
		m.Feature(acct, f)
	}
	m.Feature(ToSelf, pep.NSPrivate)
	// Conversions the service performs (pep/avatar.go, pep/bookmarks.go).
	m.Feature(acct, pep.NSVCardConversion) // XEP-0398
	m.Feature(acct, pep.NSBookmarksCompat) // XEP-0402 §5.3
	m.Feature(ToServer|acct, pep.NSVCard)
	// Some clients (profanity) look for publish-options on the server's
	// own disco before they ask for open access to their OMEMO keys; every
	// account's PEP service supports it, so the server says so too.
	m.Feature(ToServer, pep.NSPubSub+"#publish-options")
}

func pepIQ(h func(context.Context, *pep.Request) (*xmlstream.Element, error)) IQHandler {
	return func(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
		return h(ctx, &pep.Request{From: iq.From, To: iq.To, Type: iq.Type, Payload: iq.Payload})
	}
}
