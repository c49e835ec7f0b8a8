package pep

import (
	"context"
	"errors"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Bookmarks compatibility (XEP-0402 §5.3, "urn:xmpp:bookmarks:1#compat"):
// clients that keep their bookmarks in private XML (XEP-0049 with
// XEP-0048's storage:bookmarks) and clients that use PEP native bookmarks
// (XEP-0402, one item per room in urn:xmpp:bookmarks:1) see the same list.
//
//   - A private XML set of <storage xmlns='storage:bookmarks'/> is stored
//     as sent and then applied to the PEP node item by item: new and
//     changed rooms are published, missing ones retracted, each notified
//     to the account's resources; unchanged rooms are left alone (no
//     notification, XEP-0402 §5.3.2), and a changed room keeps the
//     <extensions/> other clients stored in its PEP item.
//   - Every change of the PEP node (publish, retract, purge, delete)
//     rewrites the private XML copy from the node's items, keeping the
//     legacy <url/> bookmarks XEP-0402 has no place for.
//   - Bookmarks that exist only in private XML (stored before this
//     server, or by a legacy-only account) are imported into PEP the first
//     time the owner reads or publishes to the PEP node; PEP bookmarks
//     without a private XML copy get one at the first private XML read.
//
// The XEP-0048 PEP node (storage:bookmarks as one PubSub item,
// "#compat-pep") is not converted, and not advertised.

// Namespaces.
const (
	NSBookmarks       = "urn:xmpp:bookmarks:1"        // XEP-0402
	NSBookmarksCompat = "urn:xmpp:bookmarks:1#compat" // XEP-0402 §5.3
	NSLegacyBookmarks = "storage:bookmarks"           // XEP-0048
)

// bookmarksConfig is the node XEP-0402 §3.3 asks clients to make:
// private, all items kept, nothing sent on presence.
func bookmarksConfig() Config {
	c := defaultConfig()
	c.Access = AccessWhitelist
	c.MaxItems = 0 // max
	c.SendLast = SendNever
	return c
}

// checkBookmark validates a publish to the bookmarks node: the item id is
// the room's bare JID, the payload a <conference/>.
func checkBookmark(id string, payload *xmlstream.Element) error {
	j, err := jid.Parse(id)
	if id == "" || err != nil || !j.IsBare() {
		return psError("bad-request", "invalid-payload", "a bookmark's item id is the room's bare JID")
	}
	if payload.Space != NSBookmarks || payload.Name != "conference" {
		return psError("bad-request", "invalid-payload", "a bookmark is a <conference xmlns='"+NSBookmarks+"'/>")
	}
	return nil
}

// legacyConference is one <conference/> of a storage:bookmarks element.
type legacyConference struct {
	jid string
	el  *xmlstream.Element
}

// parseLegacy validates a storage:bookmarks element: every conference
// needs a room JID (XEP-0048 §3.2). A repeated JID keeps the last.
func parseLegacy(storage *xmlstream.Element) ([]legacyConference, error) {
	var out []legacyConference
	pos := map[string]int{}
	for _, c := range storage.Elements() {
		if c.Space != NSLegacyBookmarks || c.Name != "conference" {
			continue
		}
		j, err := jid.Parse(c.Attr("jid"))
		if err != nil || !j.IsBare() {
			return nil, stanza.NewError("bad-request", "every bookmarked conference needs the room's bare JID")
		}
		if i, ok := pos[j.String()]; ok {
			out[i].el = c
			continue
		}
		pos[j.String()] = len(out)
		out = append(out, legacyConference{jid: j.String(), el: c})
	}
	return out, nil
}

func isTrue(v string) bool {
	b, _ := parseBool(v)
	return b
}

// toConference converts a XEP-0048 conference into a XEP-0402 one.
func toConference(c *xmlstream.Element) *xmlstream.Element {
	out := xmlstream.New(NSBookmarks, "conference", "name", c.Attr("name"))
	if isTrue(c.Attr("autojoin")) {
		out.SetAttr("autojoin", "true")
	}
	for _, name := range []string{"nick", "password"} {
		if e := c.Child("", name); e != nil && e.Text() != "" {
			out.Append(xmlstream.New(NSBookmarks, name).AppendText(e.Text()))
		}
	}
	return out
}

// toLegacy converts a XEP-0402 item into a XEP-0048 conference.
func toLegacy(id string, c *xmlstream.Element) *xmlstream.Element {
	out := xmlstream.New(NSLegacyBookmarks, "conference", "jid", id, "name", c.Attr("name"))
	if isTrue(c.Attr("autojoin")) {
		out.SetAttr("autojoin", "true")
	}
	for _, name := range []string{"nick", "password"} {
		if t := c.ChildText(NSBookmarks, name); t != "" {
			out.Append(xmlstream.New(NSLegacyBookmarks, name).AppendText(t))
		}
	}
	return out
}

// sameBookmark compares what both formats can express.
func sameBookmark(a, b *xmlstream.Element) bool {
	return a.Attr("name") == b.Attr("name") && isTrue(a.Attr("autojoin")) == isTrue(b.Attr("autojoin")) &&
		a.ChildText(NSBookmarks, "nick") == b.ChildText(NSBookmarks, "nick") &&
		a.ChildText(NSBookmarks, "password") == b.ChildText(NSBookmarks, "password")
}

// legacyToPEP applies a private XML bookmark list to the PEP node.
// Called with convMu held.
func (s *Service) legacyToPEP(ctx context.Context, owner jid.JID, confs []legacyConference) error {
	user := owner.Local()
	n, err := s.st.PEPNode(ctx, user, NSBookmarks)
	if errors.Is(err, store.ErrNotFound) {
		if len(confs) == 0 {
			return nil
		}
		err = s.createNode(ctx, user, NSBookmarks, bookmarksConfig())
		if errors.Is(err, store.ErrExists) {
			err = nil
		}
		if err != nil {
			return err
		}
		n, err = s.st.PEPNode(ctx, user, NSBookmarks)
	}
	if err != nil {
		return err
	}
	cfg := unmarshalConfig(n.Config)
	items, err := s.st.PEPItems(ctx, user, NSBookmarks, nil, 0)
	if err != nil {
		return err
	}
	have := map[string]*xmlstream.Element{}
	for _, it := range items {
		if el, err := s.parse(it.Payload); err == nil {
			have[it.ID] = el
		} else {
			have[it.ID] = xmlstream.New(NSBookmarks, "conference")
		}
	}
	want := map[string]bool{}
	for _, c := range confs {
		want[c.jid] = true
		el := toConference(c.el)
		old := have[c.jid]
		if old != nil && sameBookmark(old, el) {
			continue
		}
		if old != nil {
			if ext := old.Child(NSBookmarks, "extensions"); ext != nil {
				el.Append(ext.Copy())
			}
		}
		if err := s.commit(ctx, owner, owner, NSBookmarks, cfg, c.jid, el); err != nil {
			return err
		}
	}
	for _, it := range items {
		if want[it.ID] {
			continue
		}
		if err := s.st.RetractPEPItem(ctx, user, NSBookmarks, it.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		s.notifyRetract(ctx, owner, NSBookmarks, cfg, it.ID)
	}
	return nil
}

// pepToLegacy rewrites the private XML copy from the PEP node. Called
// with convMu held.
func (s *Service) pepToLegacy(ctx context.Context, user string) error {
	items, err := s.st.PEPItems(ctx, user, NSBookmarks, nil, 0)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	out := xmlstream.New(NSLegacyBookmarks, "storage")
	for _, it := range items {
		el, err := s.parse(it.Payload)
		if err != nil || el.Space != NSBookmarks || el.Name != "conference" {
			continue
		}
		out.Append(toLegacy(it.ID, el))
	}
	b, err := s.st.PrivateXML(ctx, user, NSLegacyBookmarks)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err == nil {
		if old, err := s.parse(b); err == nil {
			for _, u := range old.Elements() {
				if u.Space == NSLegacyBookmarks && u.Name == "url" {
					out.Append(u.Copy())
				}
			}
		}
	}
	return s.st.SetPrivateXML(ctx, user, NSLegacyBookmarks, []byte(out.String()))
}

// importLegacyBookmarks brings bookmarks that exist only in private XML
// into a missing PEP node, before the owner first uses it.
func (s *Service) importLegacyBookmarks(ctx context.Context, owner jid.JID) error {
	s.convMu.Lock()
	defer s.convMu.Unlock()
	user := owner.Local()
	_, err := s.st.PEPNode(ctx, user, NSBookmarks)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	b, err := s.st.PrivateXML(ctx, user, NSLegacyBookmarks)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	storage, err := s.parse(b)
	if err != nil {
		return nil
	}
	confs, err := parseLegacy(storage)
	if err != nil {
		return nil // stored before validation existed: not importable
	}
	return s.legacyToPEP(ctx, owner, confs)
}

// exportBookmarks writes the private XML copy of PEP bookmarks that have
// none yet (published before this server kept one).
func (s *Service) exportBookmarks(ctx context.Context, user string) error {
	s.convMu.Lock()
	defer s.convMu.Unlock()
	_, err := s.st.PrivateXML(ctx, user, NSLegacyBookmarks)
	if !errors.Is(err, store.ErrNotFound) {
		return err
	}
	_, err = s.st.PEPNode(ctx, user, NSBookmarks)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return s.pepToLegacy(ctx, user)
}

// setLegacyBookmarks stores a private XML bookmark list and applies it
// to the PEP node.
func (s *Service) setLegacyBookmarks(ctx context.Context, owner jid.JID, storage *xmlstream.Element) error {
	confs, err := parseLegacy(storage)
	if err != nil {
		return err
	}
	s.convMu.Lock()
	defer s.convMu.Unlock()
	if err := s.st.SetPrivateXML(ctx, owner.Local(), NSLegacyBookmarks, []byte(storage.String())); err != nil {
		return err
	}
	return s.legacyToPEP(ctx, owner, confs)
}

// published runs the conversions after a client published payload.
func (s *Service) published(ctx context.Context, owner jid.JID, node string, payload *xmlstream.Element) {
	switch node {
	case NSAvatarMeta:
		s.convMu.Lock()
		defer s.convMu.Unlock()
		if err := s.avatarToVCard(ctx, owner, payload); err != nil {
			s.log.Error("pep avatar to vcard", "user", owner.Local(), "err", err)
		}
	case NSBookmarks:
		s.changed(ctx, owner, node)
	}
}

// changed runs the conversions after a client changed a node's items
// (retract, purge, delete; publish through published).
func (s *Service) changed(ctx context.Context, owner jid.JID, node string) {
	switch node {
	case NSBookmarks:
		s.convMu.Lock()
		defer s.convMu.Unlock()
		if err := s.pepToLegacy(ctx, owner.Local()); err != nil {
			s.log.Error("pep bookmarks to private xml", "user", owner.Local(), "err", err)
		}
	case NSAvatarData:
		s.convMu.Lock()
		defer s.convMu.Unlock()
		if err := s.avatarDataGone(ctx, owner.Local()); err != nil {
			s.log.Error("pep avatar data removed", "user", owner.Local(), "err", err)
		}
	}
}
