package pep

import (
	"context"
	"errors"
	"strconv"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// items implements XEP-0060 §6.5: all items, the max_items newest, or the
// ones named by id; access is checked against the node's model.
func (s *Service) items(ctx context.Context, r *Request, e *xmlstream.Element) (*xmlstream.Element, error) {
	node, err := nodeName(e)
	if err != nil {
		return nil, err
	}
	max := 0
	if m := e.Attr("max_items"); m != "" {
		if max, err = strconv.Atoi(m); err != nil || max < 1 {
			return nil, stanza.NewError("bad-request", "max_items must be a positive integer")
		}
	}
	var ids []string
	for _, it := range e.Elements() {
		if it.Space == NSPubSub && it.Name == "item" {
			if it.Attr("id") == "" {
				return nil, stanza.NewError("bad-request", "item without id")
			}
			ids = append(ids, it.Attr("id"))
		}
	}
	if node == NSBookmarks && isOwner(r) {
		if err := s.importLegacyBookmarks(ctx, r.To); err != nil {
			return nil, err
		}
	}
	cfg, err := s.loadNode(ctx, r, node)
	if err != nil {
		return nil, err
	}
	if err := s.mayAccess(ctx, r.To, cfg, r.From); err != nil {
		return nil, err
	}
	items, err := s.st.PEPItems(ctx, r.To.Local(), node, ids, max)
	if errors.Is(err, store.ErrNotFound) {
		return nil, stanza.NewError("item-not-found", "no such node")
	}
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 && len(items) == 0 {
		return nil, stanza.NewError("item-not-found", "no such item")
	}
	out := xmlstream.New(NSPubSub, "items", "node", node)
	for _, it := range items {
		el, err := s.itemElement(NSPubSub, it)
		if err != nil {
			return nil, err
		}
		out.Append(el)
	}
	return xmlstream.New(NSPubSub, "pubsub").Append(out), nil
}

// itemElement renders a stored item in namespace ns (pubsub for
// retrieval, pubsub#event for notifications).
func (s *Service) itemElement(ns string, it store.PEPItem) (*xmlstream.Element, error) {
	p, err := s.parse(it.Payload)
	if err != nil {
		return nil, err
	}
	el := xmlstream.New(ns, "item", "id", it.ID)
	if pub, err := jid.Parse(it.Publisher); err == nil {
		el.SetAttr("publisher", pub.Bare().String())
	}
	return el.Append(p), nil
}

// DiscoItems lists the nodes of owner that requester may see (XEP-0163
// §5: only those it may retrieve from).
func (s *Service) DiscoItems(ctx context.Context, requester, owner jid.JID) (*xmlstream.Element, error) {
	nodes, err := s.st.PEPNodes(ctx, owner.Local())
	if err != nil {
		return nil, err
	}
	q := xmlstream.New(NSDiscoItems, "query")
	for _, n := range nodes {
		if s.mayAccess(ctx, owner, unmarshalConfig(n.Config), requester) != nil {
			continue
		}
		q.Append(xmlstream.New(NSDiscoItems, "item", "jid", owner.String(), "node", n.Node))
	}
	return q, nil
}

// NodeInfo answers disco#info for one node (XEP-0060 §5.3): a leaf node,
// if it exists and requester may see it.
func (s *Service) NodeInfo(ctx context.Context, requester, owner jid.JID, node string) (*xmlstream.Element, error) {
	n, err := s.st.PEPNode(ctx, owner.Local(), node)
	if errors.Is(err, store.ErrNotFound) {
		return nil, stanza.NewError("item-not-found", "no such node")
	}
	if err != nil {
		return nil, err
	}
	if err := s.mayAccess(ctx, owner, unmarshalConfig(n.Config), requester); err != nil {
		return nil, err
	}
	q := xmlstream.New(NSDiscoInfo, "query", "node", node)
	q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "pubsub", "type", "leaf"))
	q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", NSPubSub))
	return q, nil
}

// myAffiliations answers XEP-0060 §5.7: the requester's affiliations with
// the account's nodes (owner of all of its own, member of whitelist nodes
// it was added to), optionally for one node.
func (s *Service) myAffiliations(ctx context.Context, r *Request, e *xmlstream.Element) (*xmlstream.Element, error) {
	nodes, err := s.st.PEPNodes(ctx, r.To.Local())
	if err != nil {
		return nil, err
	}
	only := e.Attr("node")
	out := xmlstream.New(NSPubSub, "affiliations")
	if only != "" {
		out.SetAttr("node", only)
	}
	for _, n := range nodes {
		if only != "" && n.Node != only {
			continue
		}
		switch {
		case isOwner(r):
			out.Append(xmlstream.New(NSPubSub, "affiliation", "node", n.Node, "affiliation", "owner"))
		case unmarshalConfig(n.Config).member(r.From.Bare()):
			out.Append(xmlstream.New(NSPubSub, "affiliation", "node", n.Node, "affiliation", "member"))
		}
	}
	return xmlstream.New(NSPubSub, "pubsub").Append(out), nil
}
