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
// vCard4 (XEP-0292) and nicknames (XEP-0172) are plain PEP nodes; the
// PHOTO is kept the same as the PEP avatar (XEP-0084) by avatar.go
// (XEP-0398).

// VCard answers vcard-temp get (own, another account's, or the server's,
// which is empty) and set (own only).
func (s *Service) VCard(ctx context.Context, r *Request) (*xmlstream.Element, error) {
	if r.Type == "set" {
		if !isOwner(r) {
			return nil, stanza.NewError("forbidden", "a vCard can only be set by its account")
		}
		v := r.Payload.Copy()
		if _, _, err := vcardPhoto(v); err != nil {
			return nil, err
		}
		if err := s.st.SetVCard(ctx, r.To.Local(), []byte(v.String())); err != nil {
			return nil, err
		}
		// XEP-0398: the PEP avatar follows the vCard. The vCard is
		// stored either way; a failed conversion is logged.
		s.convMu.Lock()
		defer s.convMu.Unlock()
		if err := s.vcardToAvatar(ctx, r.To, v); err != nil {
			s.log.Error("vcard to pep avatar", "user", r.To.Local(), "err", err)
		}
		return nil, nil
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
	v, err := s.parse(b)
	if err != nil {
		return nil, err
	}
	if v.Child(NSVCard, "PHOTO") != nil {
		ok, err := s.photoVisible(ctx, r.To, r.From)
		if err != nil {
			return nil, err
		}
		if !ok {
			v.RemoveChildren(NSVCard, "PHOTO")
		}
	}
	return v, nil
}
