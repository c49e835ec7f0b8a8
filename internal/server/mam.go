package server

// XEP-0313 message archive, XEP-0191 blocking and the last-seen setting
// (mam branch): IQ handlers and the registration of all three. The hooks
// into message, presence and IQ routing are in privacy.go.

import (
	"context"
	"sync"

	"bluetick/internal/jid"
	"bluetick/internal/mam"
	"bluetick/internal/privacy"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// privacyState is the server's part of blocking: the blocklist reader and
// which local resources asked for the blocklist (they get pushes).
type privacyState struct {
	blocker  *privacy.Blocker
	archive  *mam.Archive // nil when archive.mode is none
	interest sync.Map     // full JID -> struct{}: requested the blocklist
}

// registerMAMAndPrivacy wires blocking, last-seen visibility and, in
// archive mode, MAM. Called once from New.
func (s *Server) registerMAMAndPrivacy() {
	m := s.mux
	// One node writes and reads its own blocklists only when alone; in a
	// cluster another node may change them, so read the store each time.
	s.priv.blocker = privacy.NewBlocker(s.store, s.cfg.Cluster.NATS == "")
	m.Handle("get", privacy.NSBlocking, "blocklist", ToSelf, "", s.blocklistGet)
	m.Handle("set", privacy.NSBlocking, "block", ToSelf, "", s.blockSet)
	m.Handle("set", privacy.NSBlocking, "unblock", ToSelf, "", s.unblockSet)
	m.Feature(ToServer|ToSelf, privacy.NSBlocking)
	m.Handle("get", privacy.NSLastSeen, "visibility", ToSelf, privacy.NSLastSeen, s.lastSeenGet)
	m.Handle("set", privacy.NSLastSeen, "visibility", ToSelf, "", s.lastSeenSet)

	if s.cfg.Archive.Mode != "archive" {
		return // WhatsApp mode: no history, MAM neither advertised nor answered
	}
	s.priv.archive = mam.New(s.store, s.log)
	m.Handle("set", mam.NS, "query", ToSelf|ToAccount, mam.NS, s.mamQuery)
	m.Handle("get", mam.NS, "query", ToSelf, "", s.mamForm)
	m.Handle("get", mam.NS, "metadata", ToSelf, mam.NSExtended, s.mamMetadata)
	m.Handle("get", mam.NS, "prefs", ToSelf, "", s.mamPrefsGet)
	m.Handle("set", mam.NS, "prefs", ToSelf, "", s.mamPrefsSet)
}

// Archive is the node's message archive, nil unless archive.mode is
// "archive" (cmd/bluetick runs its expiry sweep).
func (s *Server) Archive() *mam.Archive { return s.priv.archive }

// archiveMessage records a delivered message in the sender's and the
// recipient's archives and returns the sender's archive id ("" if none).
func (s *Server) archiveMessage(ctx context.Context, from, to jid.JID, el *xmlstream.Element) string {
	if s.priv.archive == nil {
		return ""
	}
	return s.priv.archive.Record(ctx, from, to, el)
}

func (s *Server) mamQuery(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	if iq.To != iq.From.Bare() {
		return nil, stanza.NewError("forbidden", "only the owner may read an archive")
	}
	q, err := mam.ParseQuery(iq.Payload)
	if err != nil {
		return nil, err
	}
	to := iq.From.String()
	return s.priv.archive.Query(ctx, iq.To, q, func(el *xmlstream.Element) error {
		el.SetAttr("to", to)
		return iq.Sess.Send(el)
	})
}

func (s *Server) mamForm(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	return mam.Form(), nil
}

func (s *Server) mamMetadata(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	return s.priv.archive.Metadata(ctx, iq.To)
}

func (s *Server) mamPrefsGet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	p, err := s.priv.archive.Prefs(ctx, iq.To)
	if err != nil {
		return nil, err
	}
	return mam.PrefsElement(p), nil
}

func (s *Server) mamPrefsSet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	p, err := mam.ParsePrefs(iq.Payload)
	if err != nil {
		return nil, err
	}
	if err := s.priv.archive.SetPrefs(ctx, iq.To, p); err != nil {
		return nil, err
	}
	return mam.PrefsElement(p), nil
}

func (s *Server) lastSeenGet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	v, err := privacy.LastSeen(ctx, s.store, iq.To.Local())
	if err != nil {
		return nil, err
	}
	return privacy.VisibilityElement(v), nil
}

func (s *Server) lastSeenSet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	v, err := privacy.ParseVisibility(iq.Payload)
	if err != nil {
		return nil, err
	}
	return nil, s.store.SetLastSeenVisibility(ctx, iq.To.Local(), v)
}
