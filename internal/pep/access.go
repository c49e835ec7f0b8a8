package pep

import (
	"context"
	"errors"
	"slices"

	"bluetick/internal/jid"
	"bluetick/internal/store"
)

// Access control (XEP-0060 §4.5, §6.5.2-6.5.5): who may retrieve a node's
// items, see it in disco#items and be notified. The owner always may
// (XEP-0163 §4); everyone else according to the node's access model, with
// the owner's roster as the source of truth for presence and roster
// access, read at the moment of the request, so removing a contact or
// cancelling a subscription takes effect at once.

// contactOf reads owner's roster item for requester; ok is false when
// there is none.
func (s *Service) contactOf(ctx context.Context, owner, requester jid.JID) (store.RosterItem, bool, error) {
	it, err := s.st.RosterItem(ctx, owner.Local(), requester.Bare().String())
	if errors.Is(err, store.ErrNotFound) {
		return it, false, nil
	}
	if err != nil {
		return it, false, err
	}
	return it, true, nil
}

// sharesPresence reports whether the roster item lets the contact see the
// owner's presence (subscription from or both).
func sharesPresence(it store.RosterItem) bool {
	return it.Subscription == store.SubFrom || it.Subscription == store.SubBoth
}

// mayAccess returns nil if requester may see the node, else the XEP-0060
// error for its access model.
func (s *Service) mayAccess(ctx context.Context, owner jid.JID, c Config, requester jid.JID) error {
	if requester.Bare() == owner {
		return nil
	}
	switch c.Access {
	case AccessOpen:
		return nil
	case AccessPresence:
		it, ok, err := s.contactOf(ctx, owner, requester)
		if err != nil {
			return err
		}
		if ok && sharesPresence(it) {
			return nil
		}
		return psError("not-authorized", "presence-subscription-required", "the node is shared with contacts subscribed to the owner's presence")
	case AccessRoster:
		it, ok, err := s.contactOf(ctx, owner, requester)
		if err != nil {
			return err
		}
		if ok && sharesPresence(it) && inGroups(it.Groups, c.RosterGroups) {
			return nil
		}
		return psError("not-authorized", "not-in-roster-group", "the node is shared with some roster groups only")
	}
	// Whitelist (and anything unknown: never wider than the owner).
	if c.member(requester.Bare()) {
		return nil
	}
	return psError("not-allowed", "closed-node", "the node is private to its owner")
}

func inGroups(have, allowed []string) bool {
	for _, g := range have {
		if slices.Contains(allowed, g) {
			return true
		}
	}
	return false
}

// allowedFor is mayAccess for a contact whose roster item is known, used
// when notifying: no store read per node and recipient.
func allowedFor(c Config, it store.RosterItem) bool {
	switch c.Access {
	case AccessOpen, AccessPresence:
		return sharesPresence(it)
	case AccessRoster:
		return sharesPresence(it) && inGroups(it.Groups, c.RosterGroups)
	}
	return false
}

// allowedNotify is who gets notifications of a node besides the owner: a
// contact that shares presence and may access, or a whitelisted member
// that shares presence.
func allowedNotify(c Config, it store.RosterItem, contact jid.JID) bool {
	if c.Access == AccessWhitelist {
		return sharesPresence(it) && c.member(contact)
	}
	return allowedFor(c, it)
}
