package pep

import (
	"context"
	"errors"
	"strings"

	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Private XML storage (XEP-0049, jabber:iq:private): one element per
// namespace per account, readable and writable by the account only. Old
// clients keep their bookmarks (XEP-0048 storage:bookmarks) here; newer
// ones use PEP nodes with the whitelist model (XEP-0223, XEP-0402), which
// the PEP service provides; bookmarks.go keeps the two bookmark lists the
// same (XEP-0402 #compat).

// reservedNS reports namespaces that may not be stored: the stream and
// IQ protocols themselves (XEP-0049 §3: the fragment must be in its own
// namespace).
func reservedNS(ns string) bool {
	return ns == "" || ns == NSPrivate || ns == xmlstream.NSClient || ns == xmlstream.NSServer || strings.HasPrefix(ns, "jabber:iq:")
}

// Private answers jabber:iq:private get and set.
func (s *Service) Private(ctx context.Context, r *Request) (*xmlstream.Element, error) {
	if !isOwner(r) {
		return nil, stanza.NewError("forbidden", "private storage belongs to its account only")
	}
	children := r.Payload.Elements()
	if len(children) == 0 {
		return nil, stanza.NewError("not-acceptable", "name the element to get or store")
	}
	for _, c := range children {
		if reservedNS(c.Space) {
			return nil, stanza.NewError("not-acceptable", "the stored element needs a namespace of its own")
		}
		if r.Type == "set" && c.Space == NSLegacyBookmarks && c.Name == "storage" {
			if _, err := parseLegacy(c); err != nil {
				return nil, err
			}
		}
	}
	user := r.To.Local()
	if r.Type == "set" {
		for _, c := range children {
			if c.Space == NSLegacyBookmarks && c.Name == "storage" {
				// XEP-0402 #compat: also the PEP bookmarks (bookmarks.go).
				if err := s.setLegacyBookmarks(ctx, r.To, c); err != nil {
					return nil, err
				}
				continue
			}
			if err := s.st.SetPrivateXML(ctx, user, c.Space, []byte(c.String())); err != nil {
				return nil, err
			}
		}
		return nil, nil
	}
	if len(children) != 1 {
		return nil, stanza.NewError("bad-request", "get one namespace at a time")
	}
	q := xmlstream.New(NSPrivate, "query")
	if children[0].Space == NSLegacyBookmarks {
		// PEP bookmarks from before the private XML copy existed.
		if err := s.exportBookmarks(ctx, user); err != nil {
			return nil, err
		}
	}
	b, err := s.st.PrivateXML(ctx, user, children[0].Space)
	if errors.Is(err, store.ErrNotFound) {
		// Nothing stored: the empty element, as XEP-0049 §2 shows.
		return q.Append(xmlstream.New(children[0].Space, children[0].Name)), nil
	}
	if err != nil {
		return nil, err
	}
	el, err := s.parse(b)
	if err != nil {
		return nil, err
	}
	return q.Append(el), nil
}
