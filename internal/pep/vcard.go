package pep

import (
	"context"
	"errors"

	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// vcard-temp (XEP-0054): one <vCard/> per account, set by the account and
// readable by anyone, as every XMPP server does (clients use it for the
// name and, with XEP-0153, the avatar shown to people not in the roster).
// vCard4 (XEP-0292), nicknames (XEP-0172) and avatars (XEP-0084) are plain
// PEP nodes and need nothing here.

// VCard answers vcard-temp get (own, another account's, or the server's,
// which is empty) and set (own only).
func (s *Service) VCard(ctx context.Context, r *Request) (*xmlstream.Element, error) {
	if r.Type == "set" {
		if !isOwner(r) {
			return nil, stanza.NewError("forbidden", "a vCard can only be set by its account")
		}
		v := r.Payload.Copy()
		return nil, s.st.SetVCard(ctx, r.To.Local(), []byte(v.String()))
	}
	empty := xmlstream.New(NSVCard, "vCard")
	if r.To.Local() == "" {
		return empty, nil
	}
	b, err := s.st.VCard(ctx, r.To.Local())
	if errors.Is(err, store.ErrNotFound) {
		return empty, nil
	}
	if err != nil {
		return nil, err
	}
	return s.parse(b)
}
