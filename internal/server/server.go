// Package server is the XMPP instant-messaging core for bound sessions
// (RFC 6121): it takes each stanza a client sends after binding, stamps and
// checks it, and hands it to the feature that owns it — message routing,
// presence and subscriptions, the roster, and the IQ handlers registered on
// its mux (disco, ping, version, last activity, registration).
//
// Transports (package c2s) call Bound when a session starts, Handle for each
// stanza and End when it is over; nothing here knows about sockets.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"log/slog"
	"sync"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/jid"
	"bluetick/internal/offline"
	"bluetick/internal/pep"
	"bluetick/internal/router"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Version is the server version, set by the build (cmd/bluetick).
var Version = "dev"

// Server is the IM core of one node.
type Server struct {
	Domain  jid.JID
	cfg     config.Config
	store   store.Store
	Router  *router.Router
	Offline *offline.Queue
	log     *slog.Logger
	mux     *Mux
	started time.Time

	capsOnce sync.Once
	caps     *xmlstream.Element // see Caps

	services map[string]service // by domain, see service.go

	// subMu serializes subscription state changes: they touch two rosters
	// and are rare, so one lock keeps both sides consistent.
	subMu sync.Mutex
	lim   rosterLimits // [roster] bounds (limits.go)

	priv    privacyState // mam branch: blocking, last seen, archive (mam.go)
	pep     *pep.Service // personal eventing, private XML, vcard-temp (pep.go)
	pending pendingIQs   // the server's own IQ requests awaiting answers (iqwait.go)
	motd    motd         // XEP-0133 message of the day (admin.go)
}

// New wires the IM core over a store.
func New(cfg config.Config, st store.Store, log *slog.Logger) *Server {
	s := &Server{
		Domain:  jid.MustParse(cfg.Domain),
		cfg:     cfg,
		store:   st,
		log:     log,
		started: time.Now(),
	}
	s.Offline = offline.New(st, cfg.Domain, cfg.Offline.Quota, log)
	s.Router = router.New(offlineFilter{s.Offline, s}, st.UserExists) // mam branch: offlineFilter drops blocked senders' messages
	s.Router.SetDurable(cfg.DurableDelivery())
	s.Router.CarbonCopy = receivedCarbon
	s.mux = newMux()
	s.registerFeatures()
	s.registerMAMAndPrivacy() // mam branch
	s.registerPEP()
	s.registerAdmin()
	return s
}

// Mux is the IQ mux, for services outside this package (HTTP upload) to
// register their handlers and disco information on at startup, before
// the server takes sessions.
func (s *Server) Mux() *Mux { return s.mux }

// Store is the store the server runs on.
func (s *Server) Store() store.Store { return s.store }

// Config is the configuration the server was built with.
func (s *Server) Config() config.Config { return s.cfg }

// NewID returns a random identifier for stanza-ids, stream ids and
// resources: 80 bits, base32, unguessable.
func NewID() string {
	var b [10]byte
	rand.Read(b[:])
	return base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])
}

// Hooks returns the session hooks that tie a session's queue back to the
// offline store.
func (s *Server) Hooks() session.Hooks {
	return session.Hooks{Delivered: s.delivered, Congested: s.Router.Congested}
}

// delivered deletes acknowledged offline messages and, when the page is
// done, feeds the next one.
func (s *Server) delivered(sess *session.Session, seqs []int64) {
	ctx := context.Background()
	s.Offline.Delete(sess.JID().Bare(), seqs) // the next page's Load waits for it
	// A session ending reports what its client received last from
	// TakePending, under the user's delivery lock: no drain to it then
	// (Drain would take that lock again).
	if !sess.Closed() && sess.OfflineOutstanding() == 0 && sess.Available() && sess.Priority() >= 0 {
		if err := s.Router.Drain(ctx, sess); err != nil {
			s.log.Error("offline: drain", "user", sess.JID().Bare().String(), "err", err)
		}
	}
}

// Bound registers a freshly bound session; a session of the same full JID
// is kicked with <conflict/> and ended (RFC 6120 §7.7.2.2).
func (s *Server) Bound(ctx context.Context, sess *session.Session) {
	// The same resource bound on another node of a cluster is replaced
	// too; that node ends it when its connection closes.
	for _, r := range s.Router.Resources(sess.JID().Bare()) {
		if r.JID() == sess.JID() && s.Router.LocalSession(r.JID()) == nil {
			r.Kick("conflict", "replaced by a new session with the same resource")
		}
	}
	if old := s.Router.Bind(sess); old != nil {
		old.Kick("conflict", "replaced by a new session with the same resource")
		if o, ok := old.(*session.Session); ok {
			s.endSession(ctx, o, nil)
		}
	}
}

// Release removes a session handed over to another node: it continues
// there, so contacts see no presence change and nothing is stored.
func (s *Server) Release(ctx context.Context, sess *session.Session) {
	s.pep.Gone(sess.JID())
	if _, err := s.Router.Unbind(ctx, sess); err != nil {
		s.log.Error("session hand-over", "jid", sess.JID().String(), "err", err)
	}
}

// End finishes a session for good: undelivered messages go to the offline
// store, contacts see it go unavailable, last activity is recorded.
func (s *Server) End(ctx context.Context, sess *session.Session) {
	s.endSession(ctx, sess, nil)
}

func (s *Server) endSession(ctx context.Context, sess *session.Session, unavailable *xmlstream.Element) {
	wasAvailable := sess.Available()
	s.forgetBlocklistInterest(sess) // mam branch
	s.pep.Gone(sess.JID())
	last, err := s.Router.Unbind(ctx, sess)
	if err != nil {
		s.log.Error("session end: storing undelivered messages", "jid", sess.JID().String(), "err", err)
	}
	if wasAvailable {
		if unavailable == nil {
			unavailable = xmlstream.New(xmlstream.NSClient, "presence", "type", "unavailable")
		}
		sess.SetPresence(nil, false, 0)
		s.broadcastPresence(ctx, sess, unavailable)
	} else {
		// Never broadcast available, but it may have joined rooms.
		s.leaveServices(ctx, sess, xmlstream.New(xmlstream.NSClient, "presence", "type", "unavailable"))
	}
	if last {
		if err := s.store.SetLastActivity(ctx, sess.JID().Local(), time.Now(), sess.LastStatus()); err != nil {
			s.log.Error("session end: last activity", "jid", sess.JID().String(), "err", err)
		}
	}
}

// Handle processes one stanza from a bound session. It returns only when
// the stanza is fully handled (delivered, stored, answered or bounced), so
// the caller may count it as handled for XEP-0198.
func (s *Server) Handle(ctx context.Context, sess *session.Session, el *xmlstream.Element) {
	if finish := s.HandleAsync(ctx, sess, el); finish != nil {
		finish()
	}
}

// HandleAsync is Handle for a stream that keeps reading while a message's
// ✓ waits for the store: it returns once the stanza is routed, and if its
// handling is not complete yet, a finish function that waits for it and
// completes it (archive and carbons, or the error bounce). The caller runs
// the finish functions of one stream in order, on another goroutine, and
// counts a stanza as handled only after its own.
func (s *Server) HandleAsync(ctx context.Context, sess *session.Session, el *xmlstream.Element) (finish func()) {
	from := sess.JID()
	el.SetAttr("from", from.String())
	var to jid.JID
	if t := el.Attr("to"); t != "" {
		var err error
		to, err = jid.Parse(t)
		if err != nil {
			s.reply(sess, el, stanza.NewError("jid-malformed", "the 'to' address is not a valid JID"))
			return nil
		}
		el.SetAttr("to", to.String())
	}
	if svc := s.serviceFor(to); svc != nil {
		if el.Name == "presence" {
			// Remembered as directed presence, so the service hears
			// when the session ends (RFC 6121 §4.6.3): a room then
			// removes the occupant.
			switch el.Attr("type") {
			case "":
				sess.AddDirected(to, true)
			case "unavailable":
				sess.AddDirected(to, false)
			}
		}
		svc.Handle(ctx, from, el)
		return nil
	}
	switch el.Name {
	case "message":
		return s.handleMessage(ctx, sess, to, el)
	case "presence":
		s.handlePresence(ctx, sess, to, el)
	case "iq":
		s.handleIQ(ctx, sess, to, el)
	}
	return nil
}

// reply sends the error bounce of orig back to the session.
func (s *Server) reply(sess *session.Session, orig *xmlstream.Element, e *stanza.Error) {
	if r := stanza.ErrorReply(orig, e); r != nil {
		_ = sess.Send(r)
	}
}

// local reports whether j is an account on this server (not the server
// itself, not another domain).
func (s *Server) local(j jid.JID) bool {
	return j.Domain() == s.Domain.Domain() && j.Local() != ""
}
