// Package mam is the user message archive (XEP-0313 Message Archive
// Management, urn:xmpp:mam:2 with #extended): it decides which 1:1
// messages are kept (XEP-0313 §5, XEP-0334 hints, the user's XEP-0441
// preferences), writes the sender's and the recipient's copies in one
// store transaction, and answers archive queries with XEP-0059 paging.
//
// The archive id of a message is the XEP-0359 stanza-id the archive's
// owner saw: the recipient's is the one the server stamped on the message
// it delivered, the sender's a new one, carried on the sent carbon. So a
// client can resume paging from any message it holds.
//
// Archiving is a server policy (config [archive]): in mode "none" this
// package is not wired in at all and nothing is advertised.
package mam

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"log/slog"
	"slices"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Namespaces.
const (
	NS         = "urn:xmpp:mam:2"
	NSExtended = "urn:xmpp:mam:2#extended"
	NSRSM      = "http://jabber.org/protocol/rsm" // XEP-0059
	NSData     = "jabber:x:data"                  // XEP-0004
	NSForward  = "urn:xmpp:forward:0"             // XEP-0297
	NSDelay    = "urn:xmpp:delay"                 // XEP-0203
	NSSID      = "urn:xmpp:sid:0"                 // XEP-0359
	NSHints    = "urn:xmpp:hints"                 // XEP-0334
)

// Store is what the archive needs of the store.
type Store interface {
	store.Archive
	RosterItem(ctx context.Context, user, contact string) (store.RosterItem, error)
}

// Archive is the archiving logic of one node. All state is in the store,
// so every node of a cluster sees the same archives.
type Archive struct {
	st  Store
	log *slog.Logger
	now func() time.Time
}

// New returns the archive over st.
func New(st Store, log *slog.Logger) *Archive {
	return &Archive{st: st, log: log, now: time.Now}
}

// NewID returns an unpredictable archive id (XEP-0313 §3.1: unique,
// unguessable): 80 random bits, base32, as the server's stanza-ids.
func NewID() string {
	var b [10]byte
	rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// Archivable applies XEP-0313 §5.1.1 and XEP-0334: chat and normal
// messages with a body are kept; <store/> keeps any other chat or normal
// message; no-store and no-permanent-store keep none; error, headline and
// groupchat never go to a user archive (group chat is the room's archive).
// Chat states, receipts and markers alone carry no body and are not kept.
func Archivable(el *xmlstream.Element) bool {
	switch el.Attr("type") {
	case "", "normal", "chat":
	default:
		return false
	}
	if el.Child(NSHints, "no-store") != nil || el.Child(NSHints, "no-permanent-store") != nil {
		return false
	}
	return el.Child(xmlstream.NSClient, "body") != nil || el.Child(NSHints, "store") != nil
}

// wants applies the user's preferences to a contact: the never list, then
// the always list, then the default (always when none is set; roster keeps
// only contacts in the user's roster).
func (a *Archive) wants(ctx context.Context, user string, peer jid.JID) (bool, error) {
	p, err := a.st.ArchivePrefs(ctx, user)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	bare, full := peer.Bare().String(), peer.String()
	in := func(l []string) bool { return slices.Contains(l, bare) || slices.Contains(l, full) }
	switch {
	case in(p.Never):
		return false, nil
	case in(p.Always):
		return true, nil
	}
	switch p.Default {
	case "never":
		return false, nil
	case "roster":
		it, err := a.st.RosterItem(ctx, user, bare)
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		return err == nil && it.InRoster, err
	}
	return true, nil
}

// Record archives a 1:1 message that was just delivered (or stored
// offline) from the local account from to the local account to: the
// recipient's copy under the stanza-id the server stamped for it, the
// sender's under a new id, which it returns (empty when the sender's
// archive did not keep it) so the caller can put it on the sent carbon.
// A message to oneself is kept once. Errors are logged: the message is
// delivered already, and history is not worth bouncing it for.
func (a *Archive) Record(ctx context.Context, from, to jid.JID, el *xmlstream.Element) (senderID string) {
	if !Archivable(el) {
		return ""
	}
	now := a.now().UTC()
	var entries []store.ArchiveEntry
	if rid := stanzaID(el, to.Bare()); rid != "" {
		if ok, err := a.wants(ctx, to.Local(), from); err != nil {
			a.log.Error("archive: preferences", "user", to.Local(), "err", err)
		} else if ok {
			entries = append(entries, store.ArchiveEntry{User: to.Local(), ArchivedMessage: store.ArchivedMessage{
				ID: rid, With: from.String(), Stored: now, Data: xmlstream.Append(nil, el, ""),
			}})
		}
	}
	if from.Bare() != to.Bare() {
		if ok, err := a.wants(ctx, from.Local(), to); err != nil {
			a.log.Error("archive: preferences", "user", from.Local(), "err", err)
		} else if ok {
			senderID = NewID()
			c := el.Copy()
			c.RemoveChildren(NSSID, "stanza-id")
			c.Append(xmlstream.New(NSSID, "stanza-id", "id", senderID, "by", from.Bare().String()))
			entries = append(entries, store.ArchiveEntry{User: from.Local(), ArchivedMessage: store.ArchivedMessage{
				ID: senderID, With: to.String(), Stored: now, Data: xmlstream.Append(nil, c, ""),
			}})
		}
	}
	if err := a.st.AppendArchive(ctx, entries); err != nil {
		a.log.Error("archive: append", "from", from.String(), "to", to.String(), "err", err)
		return ""
	}
	return senderID
}

// stanzaID returns the id of the <stanza-id by=by/> on el, or "".
func stanzaID(el *xmlstream.Element, by jid.JID) string {
	bys := by.String()
	for _, c := range el.Elements() {
		if c.Space == NSSID && c.Name == "stanza-id" && c.Attr("by") == bys {
			return c.Attr("id")
		}
	}
	return ""
}

// Sweep deletes archived messages older than retention every interval
// until ctx ends.
func (a *Archive) Sweep(ctx context.Context, retention, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := a.st.ExpireArchive(ctx, a.now().Add(-retention))
		if err != nil && ctx.Err() == nil {
			a.log.Error("archive: expiry failed", "err", err)
		} else if n > 0 {
			a.log.Info("archive: expired messages", "count", n, "retention", retention)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Query answers an archive query of user's archive: it sends each result
// with send, in order, and returns the <fin/> for the IQ result, which the
// caller sends after them (XEP-0313 §4.3).
func (a *Archive) Query(ctx context.Context, user jid.JID, q Query, send func(*xmlstream.Element) error) (*xmlstream.Element, error) {
	page, err := a.st.QueryArchive(ctx, user.Local(), q.ArchiveQuery)
	if errors.Is(err, store.ErrNotFound) {
		return nil, stanza.NewError("item-not-found", "no message with that id in the archive")
	}
	if err != nil {
		return nil, err
	}
	msgs := page.Messages
	order := make([]int, len(msgs))
	for i := range order {
		order[i] = i
	}
	if q.Flip {
		slices.Reverse(order)
	}
	for _, i := range order {
		m := msgs[i]
		el, err := xmlstream.Parse(m.Data, xmlstream.Limits{})
		if err != nil || el.Name != "message" {
			a.log.Error("archive: unreadable archived message", "user", user.Local(), "id", m.ID, "err", err)
			el = nil
		}
		fwd := xmlstream.New(NSForward, "forwarded").
			Append(xmlstream.New(NSDelay, "delay", "stamp", m.Stored.Format("2006-01-02T15:04:05.000000Z")))
		if el != nil {
			el.Space = xmlstream.NSClient
			fwd.Append(el)
		}
		res := xmlstream.New(NS, "result", "id", m.ID)
		if q.QueryID != "" {
			res.SetAttr("queryid", q.QueryID)
		}
		out := xmlstream.New(xmlstream.NSClient, "message", "from", user.Bare().String(), "id", NewID()).Append(res.Append(fwd))
		if err := send(out); err != nil {
			return nil, err
		}
	}
	fin := xmlstream.New(NS, "fin")
	if page.Complete {
		fin.SetAttr("complete", "true")
	}
	set := xmlstream.New(NSRSM, "set")
	if len(msgs) > 0 {
		set.Append(xmlstream.New(NSRSM, "first").AppendText(msgs[0].ID))
		set.Append(xmlstream.New(NSRSM, "last").AppendText(msgs[len(msgs)-1].ID))
	}
	return fin.Append(set), nil
}

// Form is the answer to an IQ get of the query: the fields a query may use
// (XEP-0313 §4.1.4), none of them required.
func Form() *xmlstream.Element {
	x := xmlstream.New(NSData, "x", "type", "form")
	x.Append(xmlstream.New(NSData, "field", "var", "FORM_TYPE", "type", "hidden").
		Append(xmlstream.New(NSData, "value").AppendText(NS)))
	for _, f := range [][2]string{
		{"with", "jid-single"}, {"start", "text-single"}, {"end", "text-single"},
		{"before-id", "text-single"}, {"after-id", "text-single"},
	} {
		x.Append(xmlstream.New(NSData, "field", "var", f[0], "type", f[1]))
	}
	x.Append(xmlstream.New(NSData, "field", "var", "ids", "type", "list-multi").
		Append(xmlstream.New("http://jabber.org/protocol/xdata-validate", "validate", "datatype", "xs:string").
			Append(xmlstream.New("http://jabber.org/protocol/xdata-validate", "open"))))
	return xmlstream.New(NS, "query").Append(x)
}

// Metadata answers the #extended metadata query: the first and last
// message of the archive, or an empty element for an empty archive.
func (a *Archive) Metadata(ctx context.Context, user jid.JID) (*xmlstream.Element, error) {
	md := xmlstream.New(NS, "metadata")
	first, err := a.st.QueryArchive(ctx, user.Local(), store.ArchiveQuery{Max: 1})
	if err != nil {
		return nil, err
	}
	if len(first.Messages) == 0 {
		return md, nil
	}
	last, err := a.st.QueryArchive(ctx, user.Local(), store.ArchiveQuery{Max: 1, FromEnd: true})
	if err != nil {
		return nil, err
	}
	if len(last.Messages) == 0 {
		return md, nil
	}
	stamp := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000000Z") }
	md.Append(xmlstream.New(NS, "start", "id", first.Messages[0].ID, "timestamp", stamp(first.Messages[0].Stored)))
	md.Append(xmlstream.New(NS, "end", "id", last.Messages[0].ID, "timestamp", stamp(last.Messages[0].Stored)))
	return md, nil
}
