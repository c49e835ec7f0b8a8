package server

// XEP-0191 blocking (mam branch): the blocklist IQs and the checks the
// routing code calls. Enforcement happens on the node that routes the
// stanza, before routing, against both blocklists in the shared store:
// the sender's (outbound to a JID it blocked: not-acceptable + <blocked/>,
// §3.6) and the recipient's (inbound from a JID it blocked: messages and
// IQ get/set bounce with service-unavailable, everything else is dropped
// silently, §3.5, so the user just looks offline).

import (
	"context"
	"errors"

	"bluetick/internal/jid"
	"bluetick/internal/offline"
	"bluetick/internal/privacy"
	"bluetick/internal/router"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// errDrop means: discard the stanza without an answer.
var errDrop = errors.New("dropped by a blocklist")

// blockCheck returns nil when from may send to to, privacy.ErrBlocked when
// from's user blocked to, stanza.ErrServiceUnavailable when to's user
// blocked from. A user's own resources are never blocked from each other.
// Store errors fail closed with internal-server-error.
func (s *Server) blockCheck(ctx context.Context, from, to jid.JID) error {
	if to.IsZero() || from.Bare() == to.Bare() {
		return nil
	}
	if s.local(from) {
		b, err := s.priv.blocker.Blocks(ctx, from.Local(), to)
		if err != nil {
			s.log.Error("blocklist", "user", from.Local(), "err", err)
			return stanza.ErrInternal
		}
		if b {
			return privacy.ErrBlocked
		}
	}
	if s.local(to) {
		b, err := s.priv.blocker.Blocks(ctx, to.Local(), from)
		if err != nil {
			s.log.Error("blocklist", "user", to.Local(), "err", err)
			return stanza.ErrInternal
		}
		if b {
			return stanza.ErrServiceUnavailable
		}
	}
	return nil
}

// eitherBlocks reports whether presence between a and b must not flow
// (either blocked the other), for server-generated presence.
func (s *Server) eitherBlocks(ctx context.Context, a, b jid.JID) bool {
	return s.blockCheck(ctx, a, b) != nil
}

// blockFilter answers eitherBlocks for one user against many JIDs (a
// presence broadcast to every contact) with one read of the user's
// blocklist and one per contact, not two per contact resource.
type blockFilter struct {
	s      *Server
	ctx    context.Context
	user   jid.JID
	mine   privacy.Set
	err    error
	theirs map[jid.JID]bool
}

func (s *Server) newBlockFilter(ctx context.Context, user jid.JID) *blockFilter {
	mine, err := s.priv.blocker.Set(ctx, user.Local())
	if err != nil {
		s.log.Error("blocklist", "user", user.Local(), "err", err)
	}
	return &blockFilter{s: s, ctx: ctx, user: user, mine: mine, err: err, theirs: map[jid.JID]bool{}}
}

// blocked reports whether presence between the user and other must not
// flow. A store error blocks (fails closed), as blockCheck does.
func (f *blockFilter) blocked(other jid.JID) bool {
	if other.Bare() == f.user.Bare() {
		return false
	}
	if f.err != nil || f.mine.Blocks(other) {
		return true
	}
	b, ok := f.theirs[other.Bare()]
	if !ok {
		var err error
		if b, err = f.s.priv.blocker.Blocks(f.ctx, other.Local(), f.user); err != nil {
			f.s.log.Error("blocklist", "user", other.Local(), "err", err)
			b = true
		}
		f.theirs[other.Bare()] = b
	}
	return b
}

// blockedMessage applies the blocklists to a message; it returns nil to
// route it, or the error to bounce (errDrop: no answer, for type=error).
func (s *Server) blockedMessage(ctx context.Context, from, to jid.JID, el *xmlstream.Element) error {
	err := s.blockCheck(ctx, from, to)
	if err != nil && el.Attr("type") == "error" {
		return errDrop
	}
	return err
}

// blockedPresence applies the blocklists to presence a session addresses
// to someone: outbound to a blocked JID is refused, inbound from one is
// dropped without an answer. It reports whether the stanza was consumed.
func (s *Server) blockedPresence(ctx context.Context, sess *session.Session, to jid.JID, el *xmlstream.Element) bool {
	err := s.blockCheck(ctx, sess.JID(), to)
	switch {
	case err == nil:
		return false
	case err == privacy.ErrBlocked || err == stanza.ErrInternal:
		s.reply(sess, el, stanza.AsError(err))
	}
	return true
}

// blockedIQ applies the blocklists to an IQ between two accounts; it
// reports whether the stanza was consumed (bounced, or dropped for
// result and error).
func (s *Server) blockedIQ(ctx context.Context, sess *session.Session, to jid.JID, el *xmlstream.Element) bool {
	if to.IsZero() || !s.local(to) {
		return false
	}
	err := s.blockCheck(ctx, sess.JID(), to)
	if err == nil {
		return false
	}
	if t := el.Attr("type"); t == "get" || t == "set" {
		s.reply(sess, el, stanza.AsError(err))
	}
	return true
}

func (s *Server) blocklistGet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	l, err := s.priv.blocker.List(ctx, iq.To.Local())
	if err != nil {
		return nil, err
	}
	s.priv.interest.Store(iq.From, struct{}{})
	out := xmlstream.New(privacy.NSBlocking, "blocklist")
	for _, j := range l {
		out.Append(xmlstream.New(privacy.NSBlocking, "item", "jid", j))
	}
	return out, nil
}

func (s *Server) blockSet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	items, err := privacy.ParseItems(iq.Payload)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, stanza.NewError("bad-request", "block needs at least one item")
	}
	if err := s.priv.blocker.Block(ctx, iq.To.Local(), items); err != nil {
		return nil, err
	}
	s.blocklistPush(iq.To, "block", items)
	// §3.3: the blocked JIDs that could see the user's presence now see
	// it go unavailable.
	entries := make([]string, len(items))
	for i, j := range items {
		entries[i] = j.String()
	}
	s.presenceToMatching(ctx, iq.To, entries, false)
	return nil, nil
}

func (s *Server) unblockSet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	items, err := privacy.ParseItems(iq.Payload)
	if err != nil {
		return nil, err
	}
	user := iq.To.Local()
	var entries []string
	if len(items) == 0 {
		// Unblock all: what was blocked is what gets presence again.
		if entries, err = s.priv.blocker.List(ctx, user); err != nil {
			return nil, err
		}
	} else {
		for _, j := range items {
			entries = append(entries, j.String())
		}
	}
	if err := s.priv.blocker.Unblock(ctx, user, items); err != nil {
		return nil, err
	}
	s.blocklistPush(iq.To, "unblock", items)
	// §3.4: the unblocked JIDs allowed to see the user's presence get its
	// current presence again, and the user gets theirs.
	s.presenceToMatching(ctx, iq.To, entries, true)
	return nil, nil
}

// blocklistPush sends a block or unblock push to every resource of the
// account that requested the blocklist (XEP-0191 §3.3). Resources on other
// nodes of a cluster are pushed to when they requested the roster: whether
// they requested the blocklist is known only to their node.
func (s *Server) blocklistPush(user jid.JID, kind string, items []jid.JID) {
	payload := xmlstream.New(privacy.NSBlocking, kind)
	for _, j := range items {
		payload.Append(xmlstream.New(privacy.NSBlocking, "item", "jid", j.String()))
	}
	for _, r := range s.Router.Resources(user) {
		_, asked := s.priv.interest.Load(r.JID())
		if !asked && (s.Router.LocalSession(r.JID()) != nil || !r.Interested()) {
			continue
		}
		push := xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", "push-"+NewID(), "to", r.JID().String())
		_ = r.Send(push.Append(payload.Copy()))
	}
}

// presenceToMatching sends the user's presence to the available resources
// of roster contacts that may see it (subscription from/both) and match
// one of the blocklist entries: unavailable on block; on unblock the
// current presence of each of the user's available resources, and the
// contact's presence back to the user when subscribed to it (to/both).
func (s *Server) presenceToMatching(ctx context.Context, user jid.JID, entries []string, available bool) {
	if len(entries) == 0 {
		return
	}
	items, _, err := s.store.Roster(ctx, user.Local())
	if err != nil {
		s.log.Error("blocking: roster", "user", user.String(), "err", err)
		return
	}
	matches := func(j jid.JID) bool {
		for _, e := range entries {
			if privacy.Matches(e, j) {
				return true
			}
		}
		return false
	}
	mine := s.Router.Resources(user)
	for _, it := range items {
		c, err := jid.Parse(it.Contact)
		if err != nil || !s.local(c) {
			continue
		}
		sharesOut := it.Subscription == store.SubFrom || it.Subscription == store.SubBoth
		sharesIn := it.Subscription == store.SubTo || it.Subscription == store.SubBoth
		for _, r := range s.Router.Resources(c) {
			if !r.Available() || !matches(r.JID()) {
				continue
			}
			if available && s.eitherBlocks(ctx, user, r.JID()) {
				continue // still blocked by another entry, or by them
			}
			for _, m := range mine {
				if !m.Available() {
					continue
				}
				if sharesOut {
					var p *xmlstream.Element
					if available && m.Presence() != nil {
						p = m.Presence().Copy()
						p.SetAttr("type", "")
					} else {
						p = xmlstream.New(xmlstream.NSClient, "presence", "type", "unavailable")
					}
					p.SetAttr("from", m.JID().String())
					p.SetAttr("to", r.JID().String())
					_ = r.Send(p)
				}
				if sharesIn {
					// The contact's presence no longer reaches the user
					// while blocked: show it gone, and back on unblock.
					var p *xmlstream.Element
					if available && r.Presence() != nil {
						p = r.Presence().Copy()
					} else if !available {
						p = xmlstream.New(xmlstream.NSClient, "presence", "type", "unavailable")
					} else {
						continue
					}
					p.SetAttr("from", r.JID().String())
					p.SetAttr("to", m.JID().String())
					_ = m.Send(p)
				}
			}
		}
	}
}

// offlineFilter is the offline queue the router drains, less the messages
// of senders the user has blocked since they were stored (XEP-0191 §3.3:
// nothing from a blocked JID is delivered once the block is set). They
// are deleted, as if delivered: the user chose not to get them.
type offlineFilter struct {
	*offline.Queue
	s *Server
}

// Load implements router.Offline. A page that was all blocked is replaced
// by the next one, so the drain does not stop early.
func (o offlineFilter) Load(ctx context.Context, user jid.JID, limit int) ([]router.Stored, error) {
	for {
		msgs, err := o.Queue.Load(ctx, user, limit)
		if err != nil || len(msgs) == 0 || o.s.priv.blocker == nil {
			return msgs, err
		}
		set, err := o.s.priv.blocker.Set(ctx, user.Local())
		if err != nil {
			// Delivering is the lesser harm than stalling the queue.
			o.s.log.Error("offline drain: blocklist", "user", user.Local(), "err", err)
			return msgs, nil
		}
		if len(set) == 0 {
			return msgs, nil
		}
		var kept []router.Stored
		var drop []int64
		for _, m := range msgs {
			if from, err := jid.Parse(m.El.Attr("from")); err == nil && from.Bare() != user.Bare() && set.Blocks(from) {
				drop = append(drop, m.Seq)
			} else {
				kept = append(kept, m)
			}
		}
		if len(drop) == 0 {
			return msgs, nil
		}
		o.Queue.Delete(user, drop) // the next Load waits for it
		if len(kept) > 0 {
			return kept, nil
		}
	}
}

// forgetBlocklistInterest drops a session's blocklist interest when it ends.
func (s *Server) forgetBlocklistInterest(sess router.Session) {
	s.priv.interest.Delete(sess.JID())
}
