// Package pep is the personal eventing service every account has (XEP-0163):
// a small XEP-0060 publish-subscribe service at the account's bare JID. It
// carries what the server must hold for end-to-end encryption and profiles
// without understanding any of it: OMEMO device lists and key bundles
// (XEP-0384), avatars (XEP-0084), nicknames (XEP-0172), vCard4 (XEP-0292),
// bookmarks (XEP-0402) and other private data (XEP-0223). It also answers
// the two older storage protocols clients still use for profiles and
// bookmarks, vcard-temp (XEP-0054) and private XML (XEP-0049).
//
// Subscriptions are implicit, as XEP-0163 prescribes: a contact who receives
// the owner's presence (subscription from or both) and whose client
// advertises "<node>+notify" in its entity capabilities (XEP-0115) gets the
// node's notifications; so do the owner's own resources. Capabilities are
// learnt from presence and verified by hash (caps.go), so nothing the client
// claims is trusted unverified.
//
// All state lives in the store (nodes, items, the verified caps cache) and
// all delivery goes through the router, so a cluster of nodes behaves like
// one server; the only node-local state is an in-memory copy of the caps
// cache and which caps each local session last announced.
//
// The package does not depend on package server: the server adapts its IQ
// mux to the handlers here (Request in, payload or stanza error out) and
// calls Presence and Gone from its presence handling.
package pep

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"

	"bluetick/internal/jid"
	"bluetick/internal/router"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Namespaces.
const (
	NSPubSub      = "http://jabber.org/protocol/pubsub"
	NSPubSubOwner = "http://jabber.org/protocol/pubsub#owner"
	NSPubSubEvent = "http://jabber.org/protocol/pubsub#event"
	NSPubSubErrs  = "http://jabber.org/protocol/pubsub#errors"
	NSPublishOpts = "http://jabber.org/protocol/pubsub#publish-options"
	NSNodeConfig  = "http://jabber.org/protocol/pubsub#node_config"
	NSData        = "jabber:x:data"                   // XEP-0004
	NSCaps        = "http://jabber.org/protocol/caps" // XEP-0115
	NSDiscoInfo   = "http://jabber.org/protocol/disco#info"
	NSDiscoItems  = "http://jabber.org/protocol/disco#items"
	NSPrivate     = "jabber:iq:private" // XEP-0049
	NSVCard       = "vcard-temp"        // XEP-0054
)

// Store is what the service needs of the store: its own data and the
// owner's roster, which decides who may see the presence access model.
type Store interface {
	store.PEP
	RosterItem(ctx context.Context, user, contact string) (store.RosterItem, error)
	Roster(ctx context.Context, user string) ([]store.RosterItem, int64, error)
}

// Request is one IQ addressed to an account's PEP service.
type Request struct {
	From    jid.JID // full JID of the requester
	To      jid.JID // bare JID of the account (the owner)
	Type    string  // get or set
	Payload *xmlstream.Element
}

// QueryFunc sends an IQ get with payload to a full JID and waits for its
// answer: the result's payload, or the error the entity answered. The
// server provides it (it owns the IQ ids and the wait).
type QueryFunc func(ctx context.Context, to jid.JID, payload *xmlstream.Element) (*xmlstream.Element, error)

// Service is the PEP service of every account of one domain.
type Service struct {
	domain jid.JID
	st     Store
	router *router.Router
	log    *slog.Logger
	limits xmlstream.Limits
	query  QueryFunc
	caps   *capsCache

	// sessions is what is known of each local session (notify.go).
	mu       sync.Mutex
	sessions map[jid.JID]*sessState

	// convMu serializes the format conversions (avatar.go,
	// bookmarks.go) on this node, so two resources saving at once do not
	// interleave the steps of a copy.
	convMu sync.Mutex
}

// New returns the PEP service of domain. query may be nil (then unknown
// capabilities are never learnt, and only clients whose caps another node
// verified get notifications).
func New(domain jid.JID, st Store, r *router.Router, lim xmlstream.Limits, query QueryFunc, log *slog.Logger) *Service {
	return &Service{domain: domain, st: st, router: r, log: log, limits: lim, query: query, caps: newCapsCache(st), sessions: map[jid.JID]*sessState{}}
}

// Features lists what the PEP service supports, for the account's
// disco#info: only what this package implements.
func Features() []string {
	f := []string{NSPubSub}
	for _, s := range []string{
		"access-open", "access-presence", "access-roster", "access-whitelist",
		"auto-create", "auto-subscribe", "config-node", "config-node-max", "create-and-configure",
		"create-nodes", "delete-items", "delete-nodes", "filtered-notifications",
		"item-ids", "last-published", "modify-affiliations", "multi-items", "persistent-items",
		"presence-notifications", "publish", "publish-options", "purge-nodes",
		"retract-items", "retrieve-affiliations", "retrieve-default", "retrieve-items",
	} {
		f = append(f, NSPubSub+"#"+s)
	}
	return f
}

// Identity is the disco#info identity of an account's PEP service.
func Identity() *xmlstream.Element {
	return xmlstream.New(NSDiscoInfo, "identity", "category", "pubsub", "type", "pep")
}

// newID returns a random item id (128 bits, hex): ids the service invents
// must not collide with ones clients choose.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// psError is a stanza error with a pubsub#errors application condition
// (XEP-0060 §7-8 name one for most failures).
func psError(condition, app, text string) *stanza.Error {
	e := stanza.NewError(condition, text)
	if app != "" {
		e.App = xmlstream.New(NSPubSubErrs, app)
	}
	return e
}

// unsupported is feature-not-implemented with <unsupported feature=…/>.
func unsupported(feature string) *stanza.Error {
	e := stanza.NewError("feature-not-implemented", feature+" is not supported by this PEP service")
	e.App = xmlstream.New(NSPubSubErrs, "unsupported", "feature", feature)
	return e
}

func isOwner(r *Request) bool { return r.From.Bare() == r.To }

// parse turns stored XML back into an element.
func (s *Service) parse(b []byte) (*xmlstream.Element, error) {
	return xmlstream.Parse(b, s.limits)
}
