// Package muc is Bluetick's group chat service: WhatsApp groups carried by
// XEP-0045 multi-user chat rooms on their own domain (groups.<domain>).
//
// Why MUC: every XMPP client already speaks it. WhatsApp semantics map onto
// it as members-only, persistent, non-anonymous rooms: the creator is the
// owner (WhatsApp's first admin), admins add and remove members, the
// member list is the room's affiliation list (not who is online), and a
// member who was offline catches up from the room archive (XEP-0313 on the
// room JID), because a MUC room itself only delivers to present occupants.
//
// Structure: Service receives every stanza addressed to its domain through
// one method, Handle (registered on the IM core with
// server.RegisterService). A room's live state — its occupants — lives in
// one Room value guarded by one mutex, so the order in which messages are
// archived is the order in which every occupant receives them. Everything
// leaves through a Deliverer (the IM core's router), which reaches sessions
// on any node of a cluster.
//
// Cluster seam: set Service.Home and Service.Forward. Handle calls
// Forward for a stanza whose room is not homed on this node, and
// HandleLocal otherwise; HandleLocal is what the home node runs for a
// forwarded stanza.
package muc

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"sync"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Namespaces.
const (
	NS           = "http://jabber.org/protocol/muc"
	NSUser       = "http://jabber.org/protocol/muc#user"
	NSAdmin      = "http://jabber.org/protocol/muc#admin"
	NSOwner      = "http://jabber.org/protocol/muc#owner"
	NSRoomConfig = "http://jabber.org/protocol/muc#roomconfig"
	NSRoomInfo   = "http://jabber.org/protocol/muc#roominfo"
	NSDiscoInfo  = "http://jabber.org/protocol/disco#info"
	NSDiscoItems = "http://jabber.org/protocol/disco#items"
	NSData       = "jabber:x:data"                  // XEP-0004
	NSMAM        = "urn:xmpp:mam:2"                 // XEP-0313
	NSRSM        = "http://jabber.org/protocol/rsm" // XEP-0059
	NSForward    = "urn:xmpp:forward:0"             // XEP-0297
	NSDelay      = "urn:xmpp:delay"                 // XEP-0203
	NSSID        = "urn:xmpp:sid:0"                 // XEP-0359
	NSOccupantID = "urn:xmpp:occupant-id:0"         // XEP-0421
	NSPing       = "urn:xmpp:ping"                  // XEP-0199, XEP-0410
	NSConference = "jabber:x:conference"            // XEP-0249
	NSChatStates = "http://jabber.org/protocol/chatstates"
	// NSInvite is Bluetick's invite-link protocol (docs/groups.md).
	NSInvite = "urn:bluetick:muc:invite:0"
)

// Deliverer sends what the service produces to users (server.Server.Deliver
// implements it). To a full JID it reaches exactly that session or fails
// (the occupant is then forgotten); a message to a bare JID takes the
// normal route, offline storage included.
type Deliverer interface {
	Deliver(ctx context.Context, to jid.JID, el *xmlstream.Element) error
}

// PushHook is told about every message posted in a room, with the bare
// JIDs of the members that have no session in the room and so did not get
// it live: the push feature (XEP-0357) wakes their phones. msg is the
// message as archived (from room/nick, with its stanza-id, no 'to'); it is
// shared, do not modify it. The hook runs after the sender's message is
// durably archived and fanned out, on the sender's goroutine: it must not
// block (queue the work).
type PushHook func(room jid.JID, msg *xmlstream.Element, offline []jid.JID)

// Service is the MUC service of one domain.
type Service struct {
	domain jid.JID
	cfg    config.MUC
	st     store.Rooms
	out    Deliverer
	log    *slog.Logger
	secret []byte
	now    func() time.Time

	// Push, when set, is called for every archived room message.
	Push PushHook
	// Home reports whether a room's live state belongs to this node; nil
	// means every room is local (a single node).
	Home func(room jid.JID) bool
	// Forward hands a stanza for a room homed elsewhere to its home node,
	// which calls HandleLocal with the same arguments.
	Forward func(ctx context.Context, room, from jid.JID, el *xmlstream.Element) error

	mu    sync.Mutex // guards rooms
	rooms map[jid.JID]*Room

	relays relays // IQs relayed between occupants, see relay.go
}

// New returns the service for cfg's domain over a store. It reads (or
// creates) the service secret that keeps XEP-0421 occupant ids stable
// across restarts and nodes.
func New(ctx context.Context, domain string, cfg config.MUC, st store.Rooms, out Deliverer, log *slog.Logger) (*Service, error) {
	d, err := jid.New("", domain, "")
	if err != nil {
		return nil, err
	}
	secret, err := st.MUCSecret(ctx)
	if err != nil {
		return nil, err
	}
	return &Service{domain: d, cfg: cfg, st: st, out: out, log: log, secret: secret, now: time.Now, rooms: map[jid.JID]*Room{}}, nil
}

// Domain is the service's domain.
func (s *Service) Domain() jid.JID { return s.domain }

// Handle takes one stanza addressed to the service's domain or a JID in
// it, from a user's full JID. It returns when the stanza is handled. It
// implements server.Service.
func (s *Service) Handle(ctx context.Context, from jid.JID, el *xmlstream.Element) {
	to, _ := jid.Parse(el.Attr("to"))
	if to.Local() != "" && s.Home != nil && s.Forward != nil && !s.Home(to.Bare()) {
		if err := s.Forward(ctx, to.Bare(), from, el); err != nil {
			s.log.Error("muc: forwarding to the room's home node", "room", to.Bare().String(), "err", err)
			s.bounce(ctx, el, stanza.NewError("remote-server-timeout", "the group's home node did not answer"))
		}
		return
	}
	s.HandleLocal(ctx, from, el)
}

// HandleLocal handles a stanza on this node, which must be the room's home.
func (s *Service) HandleLocal(ctx context.Context, from jid.JID, el *xmlstream.Element) {
	to, err := jid.Parse(el.Attr("to"))
	if err != nil || to.Domain() != s.domain.Domain() {
		s.bounce(ctx, el, stanza.NewError("jid-malformed", "not an address of this service"))
		return
	}
	el.SetAttr("from", from.String())
	switch {
	case to.Local() == "":
		s.handleService(ctx, from, to, el)
	case el.Name == "presence":
		s.handlePresence(ctx, from, to, el)
	case el.Name == "message":
		s.handleMessage(ctx, from, to, el)
	case el.Name == "iq":
		s.handleIQ(ctx, from, to, el)
	}
}

// handleService answers stanzas to the service domain itself.
func (s *Service) handleService(ctx context.Context, from, to jid.JID, el *xmlstream.Element) {
	if el.Name != "iq" {
		if el.Name == "message" {
			s.bounce(ctx, el, stanza.ErrServiceUnavailable)
		}
		return
	}
	s.serveIQ(ctx, el, func(iq *iqReq) (*xmlstream.Element, error) {
		switch {
		case iq.typ == "get" && iq.is(NSDiscoInfo, "query"):
			return s.serviceInfo(iq)
		case iq.typ == "get" && iq.is(NSDiscoItems, "query"):
			return s.serviceItems(ctx, iq)
		case iq.typ == "get" && iq.is(NSPing, "ping"):
			return nil, nil
		}
		return nil, stanza.ErrServiceUnavailable
	})
}

// occupantID is the XEP-0421 id of a user in a room: a keyed hash of the
// room and the bare JID, stable across sessions, restarts and nodes, that
// reveals neither.
func (s *Service) occupantID(room, bare jid.JID) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(room.String()))
	m.Write([]byte{0})
	m.Write([]byte(bare.String()))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil)[:18])
}

// send delivers one stanza; errors are the caller's to judge.
func (s *Service) send(ctx context.Context, to jid.JID, el *xmlstream.Element) error {
	return s.out.Deliver(ctx, to, el)
}

// bounce answers orig with a stanza error from the address it was sent to.
func (s *Service) bounce(ctx context.Context, orig *xmlstream.Element, e *stanza.Error) {
	r := stanza.ErrorReply(orig, e)
	if r == nil {
		return
	}
	to, err := jid.Parse(r.Attr("to"))
	if err != nil {
		return
	}
	_ = s.send(ctx, to, r)
}

// Expire deletes archived messages older than the retention, if one is
// set, now and then every interval until ctx ends.
func (s *Service) Expire(ctx context.Context, interval time.Duration) {
	if s.cfg.ArchiveRetention.Duration <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.st.ExpireRoomMessages(ctx, s.now().Add(-s.cfg.ArchiveRetention.Duration))
		if err != nil && ctx.Err() == nil {
			s.log.Error("muc: archive expiry", "err", err)
		} else if n > 0 {
			s.log.Info("muc: expired archived group messages", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func parseJID(s string) (jid.JID, error) { return jid.Parse(s) }
