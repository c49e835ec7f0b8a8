package privacy

import (
	"context"
	"errors"

	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// NSLastSeen is Bluetick's last-seen visibility setting (docs/privacy.md):
// an IQ get or set of <visibility value='everyone|contacts|nobody'/> on
// the user's own account.
const NSLastSeen = "urn:bluetick:lastseen:0"

// Visibility values. Contacts is the default: XEP-0012 answers go only to
// contacts the user shares presence with, as RFC 6121 presence does.
const (
	Everyone = "everyone"
	Contacts = "contacts"
	Nobody   = "nobody"
)

// ParseVisibility reads the value of a <visibility/> set.
func ParseVisibility(el *xmlstream.Element) (string, error) {
	switch v := el.Attr("value"); v {
	case Everyone, Contacts, Nobody:
		return v, nil
	}
	return "", stanza.NewError("bad-request", "value must be everyone, contacts or nobody")
}

// VisibilityElement renders the setting.
func VisibilityElement(v string) *xmlstream.Element {
	return xmlstream.New(NSLastSeen, "visibility", "value", v)
}

// LastSeen returns who may see the user's last activity.
func LastSeen(ctx context.Context, st store.Privacy, user string) (string, error) {
	v, err := st.LastSeenVisibility(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return Contacts, nil
	}
	return v, err
}
