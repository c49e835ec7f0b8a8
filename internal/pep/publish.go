package pep

import (
	"context"
	"errors"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// maxNodeName bounds node names (the store keys on them).
const maxNodeName = 1024

// MaxNodes is how many nodes one account may have. Clients use a handful
// (OMEMO 0.3 one per device, plus profile and bookmark nodes); the bound
// keeps one account from filling the store with nodes.
const MaxNodes = 500

// createNode adds a node unless the account has MaxNodes already.
func (s *Service) createNode(ctx context.Context, user, node string, cfg Config) error {
	nodes, err := s.st.PEPNodes(ctx, user)
	if err != nil {
		return err
	}
	if len(nodes) >= MaxNodes {
		return psError("not-allowed", "max-nodes-exceeded", "too many PEP nodes")
	}
	return s.st.CreatePEPNode(ctx, user, store.PEPNode{Node: node, Config: cfg.marshal()})
}

// PubSub answers <pubsub xmlns='http://jabber.org/protocol/pubsub'/> (get
// and set): publish, retract, create and retrieve (retrieve.go).
func (s *Service) PubSub(ctx context.Context, r *Request) (*xmlstream.Element, error) {
	var action, opts *xmlstream.Element
	for _, e := range r.Payload.Elements() {
		if e.Space != NSPubSub {
			continue
		}
		switch e.Name {
		case "publish-options", "configure":
			if opts != nil {
				return nil, stanza.NewError("bad-request", "more than one options element")
			}
			opts = e
		default:
			if action != nil {
				return nil, stanza.NewError("bad-request", "more than one pubsub action")
			}
			action = e
		}
	}
	if action == nil {
		return nil, stanza.NewError("bad-request", "no pubsub action")
	}
	switch r.Type + " " + action.Name {
	case "set publish":
		if opts != nil && opts.Name != "publish-options" {
			return nil, stanza.NewError("bad-request", "publish takes publish-options")
		}
		return s.publish(ctx, r, action, opts)
	case "set retract":
		return nil, s.retract(ctx, r, action)
	case "set create":
		if opts != nil && opts.Name != "configure" {
			return nil, stanza.NewError("bad-request", "create takes configure")
		}
		return s.create(ctx, r, action, opts)
	case "get items":
		return s.items(ctx, r, action)
	case "set subscribe", "set unsubscribe":
		// PEP subscriptions are implicit, from presence and caps.
		return nil, unsupported("subscribe")
	case "get subscriptions", "get options", "set options":
		return nil, unsupported("subscription-options")
	case "get affiliations":
		return s.myAffiliations(ctx, r, action)
	}
	return nil, stanza.NewError("feature-not-implemented", "unknown pubsub request")
}

// nodeName reads and checks the node attribute.
func nodeName(e *xmlstream.Element) (string, error) {
	n := e.Attr("node")
	if n == "" {
		return "", psError("not-acceptable", "nodeid-required", "a node is required (PEP has no instant nodes)")
	}
	if len(n) > maxNodeName {
		return "", stanza.NewError("not-acceptable", "node name too long")
	}
	return n, nil
}

// ownerOnly refuses a write to someone else's PEP service.
func ownerOnly(r *Request) error {
	if !isOwner(r) {
		return stanza.NewError("forbidden", "only the account owner may change its PEP nodes")
	}
	return nil
}

// loadNode returns a node's configuration; item-not-found if absent.
func (s *Service) loadNode(ctx context.Context, r *Request, node string) (Config, error) {
	n, err := s.st.PEPNode(ctx, r.To.Local(), node)
	if errors.Is(err, store.ErrNotFound) {
		return Config{}, stanza.NewError("item-not-found", "no such node")
	}
	if err != nil {
		return Config{}, err
	}
	return unmarshalConfig(n.Config), nil
}

// publish implements XEP-0060 §7.1 with auto-create (§7.1.4) and
// publish-options (§7.1.5).
func (s *Service) publish(ctx context.Context, r *Request, pub, opts *xmlstream.Element) (*xmlstream.Element, error) {
	if err := ownerOnly(r); err != nil {
		return nil, err
	}
	node, err := nodeName(pub)
	if err != nil {
		return nil, err
	}
	var items []*xmlstream.Element
	for _, e := range pub.Elements() {
		if e.Space == NSPubSub && e.Name == "item" {
			items = append(items, e)
		}
	}
	if len(items) == 0 {
		return nil, psError("bad-request", "item-required", "publish needs an item")
	}
	if len(items) > 1 {
		return nil, psError("bad-request", "invalid-payload", "publish one item at a time")
	}
	payloads := items[0].Elements()
	if len(payloads) == 0 {
		return nil, psError("bad-request", "payload-required", "the item needs a payload")
	}
	if len(payloads) > 1 {
		return nil, psError("bad-request", "invalid-payload", "an item carries exactly one payload")
	}
	payload := payloads[0]
	id := items[0].Attr("id")
	if node == NSBookmarks {
		if err := checkBookmark(id, payload); err != nil {
			return nil, err
		}
		if err := s.importLegacyBookmarks(ctx, r.To); err != nil {
			return nil, err
		}
	}
	if id == "" {
		id = newID()
	}
	if len(id) > maxNodeName {
		return nil, stanza.NewError("not-acceptable", "item id too long")
	}
	var pre []setting
	if opts != nil {
		if pre, err = publishOptions(opts); err != nil {
			return nil, err
		}
	}

	user := r.To.Local()
	cfg, err := s.loadNode(ctx, r, node)
	switch {
	case err == nil:
		for _, p := range pre {
			if !p.equal(cfg) {
				return nil, psError("conflict", "precondition-not-met", "the node's configuration differs from the publish-options")
			}
		}
	case stanza.AsError(err).Condition == "item-not-found":
		cfg = defaultConfig()
		for _, p := range pre {
			p.apply(&cfg)
		}
		err := s.createNode(ctx, user, node, cfg)
		if errors.Is(err, store.ErrExists) {
			// Created concurrently by another resource: publish to it
			// only if it matches this one's preconditions.
			if cfg, err = s.loadNode(ctx, r, node); err != nil {
				return nil, err
			}
			for _, p := range pre {
				if !p.equal(cfg) {
					return nil, psError("conflict", "precondition-not-met", "the node's configuration differs from the publish-options")
				}
			}
		} else if err != nil {
			return nil, err
		}
	default:
		return nil, err
	}

	if err := s.commit(ctx, r.To, r.From, node, cfg, id, payload); err != nil {
		return nil, err
	}
	s.published(ctx, r.To, node, payload) // conversions (avatar.go, bookmarks.go)
	res := xmlstream.New(NSPubSub, "pubsub")
	res.Append(xmlstream.New(NSPubSub, "publish", "node", node).Append(xmlstream.New(NSPubSub, "item", "id", id)))
	return res, nil
}

// commit stores an item (if the node persists items) and notifies the
// node's subscribers: the end of every publish, the client's and the ones
// the server makes on the owner's behalf.
func (s *Service) commit(ctx context.Context, owner, publisher jid.JID, node string, cfg Config, id string, payload *xmlstream.Element) error {
	it := store.PEPItem{ID: id, Publisher: publisher.String(), Published: time.Now(), Payload: []byte(payload.String())}
	if cfg.Persist {
		if err := s.st.PublishPEPItem(ctx, owner.Local(), node, it, cfg.keep()); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return stanza.NewError("item-not-found", "the node was deleted")
			}
			return err
		}
	}
	s.notify(ctx, owner, node, cfg, func() *xmlstream.Element {
		return xmlstream.New(NSPubSubEvent, "items", "node", node).Append(
			xmlstream.New(NSPubSubEvent, "item", "id", id, "publisher", publisher.Bare().String()).Append(payload.Copy()))
	})
	return nil
}

// publishAs publishes an item on the owner's behalf (format conversions),
// creating the node with create when it is missing.
func (s *Service) publishAs(ctx context.Context, owner jid.JID, node, id string, payload *xmlstream.Element, create Config) error {
	user := owner.Local()
	n, err := s.st.PEPNode(ctx, user, node)
	cfg := create
	switch {
	case err == nil:
		cfg = unmarshalConfig(n.Config)
	case errors.Is(err, store.ErrNotFound):
		err := s.createNode(ctx, user, node, create)
		if errors.Is(err, store.ErrExists) {
			if n, err = s.st.PEPNode(ctx, user, node); err != nil {
				return err
			}
			cfg = unmarshalConfig(n.Config)
		} else if err != nil {
			return err
		}
	default:
		return err
	}
	return s.commit(ctx, owner, owner, node, cfg, id, payload)
}

// retract implements XEP-0060 §7.2; subscribers are told when the
// request says notify='true' or the node's notify_retract is on.
func (s *Service) retract(ctx context.Context, r *Request, e *xmlstream.Element) error {
	if err := ownerOnly(r); err != nil {
		return err
	}
	node, err := nodeName(e)
	if err != nil {
		return err
	}
	var ids []string
	for _, it := range e.Elements() {
		if it.Space == NSPubSub && it.Name == "item" {
			ids = append(ids, it.Attr("id"))
		}
	}
	if len(ids) != 1 || ids[0] == "" {
		return psError("bad-request", "item-required", "retract names exactly one item id")
	}
	cfg, err := s.loadNode(ctx, r, node)
	if err != nil {
		return err
	}
	if err := s.st.RetractPEPItem(ctx, r.To.Local(), node, ids[0]); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return stanza.NewError("item-not-found", "no such item")
		}
		return err
	}
	notify, _ := parseBool(e.Attr("notify"))
	if notify || cfg.NotifyRetract {
		s.notifyRetract(ctx, r.To, node, cfg, ids[0])
	}
	s.changed(ctx, r.To, node)
	return nil
}

func (s *Service) notifyRetract(ctx context.Context, owner jid.JID, node string, cfg Config, id string) {
	s.notify(ctx, owner, node, cfg, func() *xmlstream.Element {
		return xmlstream.New(NSPubSubEvent, "items", "node", node).Append(xmlstream.New(NSPubSubEvent, "retract", "id", id))
	})
}

// create implements XEP-0060 §8.1 (with §8.1.3 create-and-configure).
func (s *Service) create(ctx context.Context, r *Request, e, conf *xmlstream.Element) (*xmlstream.Element, error) {
	if err := ownerOnly(r); err != nil {
		return nil, err
	}
	node, err := nodeName(e)
	if err != nil {
		return nil, err
	}
	cfg := defaultConfig()
	if conf != nil {
		if x := conf.Child(NSData, "x"); x != nil {
			if cfg, err = configure(cfg, x); err != nil {
				return nil, err
			}
		}
	}
	err = s.createNode(ctx, r.To.Local(), node, cfg)
	if errors.Is(err, store.ErrExists) {
		return nil, stanza.NewError("conflict", "the node exists")
	}
	return nil, err
}
