package pep

import (
	"context"
	"errors"
	"slices"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// PubSubOwner answers <pubsub xmlns='…#owner'/> (XEP-0060 §8): node
// configuration, default configuration, deletion, purge and the member
// list (affiliations) of whitelist nodes. Only the owner may use it.
func (s *Service) PubSubOwner(ctx context.Context, r *Request) (*xmlstream.Element, error) {
	if err := ownerOnly(r); err != nil {
		return nil, err
	}
	var action *xmlstream.Element
	for _, e := range r.Payload.Elements() {
		if e.Space == NSPubSubOwner {
			if action != nil {
				return nil, stanza.NewError("bad-request", "more than one pubsub#owner action")
			}
			action = e
		}
	}
	if action == nil {
		return nil, stanza.NewError("bad-request", "no pubsub#owner action")
	}
	switch r.Type + " " + action.Name {
	case "get default":
		return owned(xmlstream.New(NSPubSubOwner, "default").Append(defaultConfig().form("form"))), nil
	case "get configure":
		node, err := nodeName(action)
		if err != nil {
			return nil, err
		}
		cfg, err := s.loadNode(ctx, r, node)
		if err != nil {
			return nil, err
		}
		return owned(xmlstream.New(NSPubSubOwner, "configure", "node", node).Append(cfg.form("form"))), nil
	case "set configure":
		return nil, s.configureNode(ctx, r, action)
	case "set delete":
		return nil, s.deleteNode(ctx, r, action)
	case "set purge":
		return nil, s.purge(ctx, r, action)
	case "get affiliations":
		return s.affiliations(ctx, r, action)
	case "set affiliations":
		return nil, s.setAffiliations(ctx, r, action)
	case "get subscriptions", "set subscriptions":
		return nil, unsupported("manage-subscriptions")
	}
	return nil, stanza.NewError("feature-not-implemented", "unknown pubsub#owner request")
}

func owned(e *xmlstream.Element) *xmlstream.Element {
	return xmlstream.New(NSPubSubOwner, "pubsub").Append(e)
}

// configureNode implements §8.2.4: a submitted form changes the node; a
// cancelled one changes nothing. Lowering max_items drops the oldest items.
func (s *Service) configureNode(ctx context.Context, r *Request, e *xmlstream.Element) error {
	node, err := nodeName(e)
	if err != nil {
		return err
	}
	x := e.Child(NSData, "x")
	if x == nil {
		return stanza.NewError("bad-request", "configure needs a data form")
	}
	if x.Attr("type") == "cancel" {
		return nil
	}
	cfg, err := s.loadNode(ctx, r, node)
	if err != nil {
		return err
	}
	if cfg, err = configure(cfg, x); err != nil {
		return err
	}
	return s.saveConfig(ctx, r, node, cfg)
}

func (s *Service) saveConfig(ctx context.Context, r *Request, node string, cfg Config) error {
	err := s.st.SetPEPNodeConfig(ctx, r.To.Local(), node, cfg.marshal(), cfg.keep())
	if errors.Is(err, store.ErrNotFound) {
		return stanza.NewError("item-not-found", "no such node")
	}
	return err
}

// deleteNode implements §8.4, telling those notified of the node.
func (s *Service) deleteNode(ctx context.Context, r *Request, e *xmlstream.Element) error {
	return s.clearNode(ctx, r, e, "delete", s.st.DeletePEPNode)
}

// purge implements §8.5.
func (s *Service) purge(ctx context.Context, r *Request, e *xmlstream.Element) error {
	return s.clearNode(ctx, r, e, "purge", s.st.PurgePEPItems)
}

// clearNode deletes a node or its items with op, then sends the <delete/>
// or <purge/> event (event) to those notified of the node.
func (s *Service) clearNode(ctx context.Context, r *Request, e *xmlstream.Element, event string, op func(ctx context.Context, user, node string) error) error {
	node, err := nodeName(e)
	if err != nil {
		return err
	}
	cfg, err := s.loadNode(ctx, r, node)
	if err != nil {
		return err
	}
	if err := op(ctx, r.To.Local(), node); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return stanza.NewError("item-not-found", "no such node")
		}
		return err
	}
	s.notify(ctx, r.To, node, cfg, func() *xmlstream.Element {
		return xmlstream.New(NSPubSubEvent, event, "node", node)
	})
	s.changed(ctx, r.To, node)
	return nil
}

// affiliations implements §8.9.1: the owner and the members.
func (s *Service) affiliations(ctx context.Context, r *Request, e *xmlstream.Element) (*xmlstream.Element, error) {
	node, err := nodeName(e)
	if err != nil {
		return nil, err
	}
	cfg, err := s.loadNode(ctx, r, node)
	if err != nil {
		return nil, err
	}
	out := xmlstream.New(NSPubSubOwner, "affiliations", "node", node)
	out.Append(xmlstream.New(NSPubSubOwner, "affiliation", "jid", r.To.String(), "affiliation", "owner"))
	for _, m := range cfg.Members {
		out.Append(xmlstream.New(NSPubSubOwner, "affiliation", "jid", m, "affiliation", "member"))
	}
	return owned(out), nil
}

// setAffiliations implements §8.9.2 for the affiliations a PEP node has:
// member (may see a whitelist node) and none. The owner's own affiliation
// cannot change; publisher and outcast are not offered.
func (s *Service) setAffiliations(ctx context.Context, r *Request, e *xmlstream.Element) error {
	node, err := nodeName(e)
	if err != nil {
		return err
	}
	cfg, err := s.loadNode(ctx, r, node)
	if err != nil {
		return err
	}
	for _, a := range e.Elements() {
		if a.Space != NSPubSubOwner || a.Name != "affiliation" {
			continue
		}
		j, err := jid.Parse(a.Attr("jid"))
		if err != nil {
			return stanza.NewError("jid-malformed", "affiliation jid is not a valid JID")
		}
		j = j.Bare()
		if j == r.To {
			return stanza.NewError("not-acceptable", "the owner's affiliation cannot change")
		}
		i := slices.Index(cfg.Members, j.String())
		switch a.Attr("affiliation") {
		case "member":
			if i < 0 {
				cfg.Members = append(cfg.Members, j.String())
			}
		case "none":
			if i >= 0 {
				cfg.Members = slices.Delete(cfg.Members, i, i+1)
			}
		default:
			return stanza.NewError("not-acceptable", "only member and none affiliations are supported")
		}
	}
	return s.saveConfig(ctx, r, node, cfg)
}
