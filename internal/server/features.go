package server

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"bluetick/internal/auth"
	"bluetick/internal/fast"
	"bluetick/internal/pep"
	"bluetick/internal/privacy"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Namespaces of the small IQ features.
const (
	NSDiscoInfo  = "http://jabber.org/protocol/disco#info"  // XEP-0030
	NSDiscoItems = "http://jabber.org/protocol/disco#items" // XEP-0030
	NSPing       = "urn:xmpp:ping"                          // XEP-0199
	NSVersion    = "jabber:iq:version"                      // XEP-0092
	NSLast       = "jabber:iq:last"                         // XEP-0012
	NSRegister   = "jabber:iq:register"                     // XEP-0077
	NSRoster     = "jabber:iq:roster"                       // RFC 6121
	NSSID        = "urn:xmpp:sid:0"                         // XEP-0359
	NSOffline    = "msgoffline"                             // XEP-0160 §4
)

// registerFeatures puts every IQ feature on the mux. Disco is computed from
// these registrations, so nothing is advertised that is not handled here.
func (s *Server) registerFeatures() {
	m := s.mux
	all := ToServer | ToSelf | ToAccount
	m.Handle("get", NSDiscoInfo, "query", all, NSDiscoInfo, s.discoInfo)
	m.Handle("get", NSDiscoItems, "query", all, NSDiscoItems, s.discoItems)
	m.Handle("get", NSPing, "ping", all, NSPing, s.ping)
	m.Handle("get", NSVersion, "query", ToServer, NSVersion, s.version)
	m.Handle("get", NSLast, "query", all, NSLast, s.lastActivity)
	m.Handle("get", NSRoster, "query", ToSelf, "", s.rosterGet)
	m.Handle("set", NSRoster, "query", ToSelf, "", s.rosterSet)
	m.Handle("get", NSRegister, "query", ToServer|ToSelf, "", s.registerGet)
	m.Handle("set", NSRegister, "query", ToServer|ToSelf, "", s.registerSet)
	m.Handle("set", NSCarbons, "enable", ToServer|ToSelf, NSCarbons, s.carbonsSet)
	m.Handle("set", NSCarbons, "disable", ToServer|ToSelf, "", s.carbonsSet)
	// Message semantics the server provides.
	m.Feature(ToSelf|ToAccount, NSSID)
	m.Feature(ToServer, NSOffline)
	if s.cfg.Registration == "open" {
		m.Feature(ToServer, NSRegister)
	}
	if f := contactForm(s.cfg.Contact); f != nil {
		m.ServerInfo(f)
	}
}

func (s *Server) discoInfo(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	if node := iq.Payload.Attr("node"); node != "" {
		if iq.To == s.Domain {
			if q := s.mux.commandInfo(node, iq.From); q != nil {
				return q, nil
			}
			return nil, stanza.ErrItemNotFound
		}
		return s.pep.NodeInfo(ctx, iq.From, iq.To, node)
	}
	q := xmlstream.New(NSDiscoInfo, "query")
	server := iq.To == s.Domain
	if server {
		q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "server", "type", "im", "name", "Bluetick"))
		s.appendServerInfo(q, true)
	} else {
		q.Append(xmlstream.New(NSDiscoInfo, "identity", "category", "account", "type", "registered"))
		q.Append(pep.Identity())
	}
	for _, f := range s.mux.features(server) {
		q.Append(xmlstream.New(NSDiscoInfo, "feature", "var", f))
	}
	if server {
		s.appendServerInfo(q, false)
	}
	return q, nil
}

// NSCaps is XEP-0115 entity capabilities.
const NSCaps = "http://jabber.org/protocol/caps"

// Caps is the server's own entity capabilities (XEP-0115 §6.3), for the
// stream features: a client that knows the hash skips the disco#info
// query on every connect. Handlers are registered before the first
// session, so it is computed once.
func (s *Server) Caps() *xmlstream.Element {
	s.capsOnce.Do(func() {
		q, err := s.discoInfo(context.Background(), &IQ{To: s.Domain, Type: "get", Payload: xmlstream.New(NSDiscoInfo, "query")})
		if err != nil {
			return
		}
		ver, err := pep.CapsVer(q, "sha-1")
		if err != nil {
			s.log.Error("server caps", "err", err)
			return
		}
		s.caps = xmlstream.New(NSCaps, "c", "hash", "sha-1", "node", "urn:bluetick", "ver", ver)
	})
	if s.caps == nil {
		return nil
	}
	return s.caps.Copy()
}

// appendServerInfo adds the registered identities (identities true) or the
// other elements, extension forms, to the domain's disco#info: identities
// first, forms last, as XEP-0030 and XEP-0128 show them.
func (s *Server) appendServerInfo(q *xmlstream.Element, identities bool) {
	for _, el := range s.mux.serverInfo {
		if (el.Space == NSDiscoInfo && el.Name == "identity") == identities {
			q.Append(el.Copy())
		}
	}
}

// discoItems lists the services of the server (XEP-0030 §4.1), so clients
// find the group chat service; accounts have no items.
func (s *Server) discoItems(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	if node := iq.Payload.Attr("node"); node == NSCommands && iq.To == s.Domain && len(s.mux.commands) > 0 {
		return s.mux.commandItems(s.Domain, iq.From), nil
	} else if node != "" {
		return nil, stanza.ErrItemNotFound
	}
	if iq.To != s.Domain {
		return s.pep.DiscoItems(ctx, iq.From, iq.To) // the account's PEP nodes
	}
	q := xmlstream.New(NSDiscoItems, "query")
	if iq.To == s.Domain {
		domains := make([]string, 0, len(s.services))
		for d := range s.services {
			domains = append(domains, d)
		}
		sort.Strings(domains)
		for _, d := range domains {
			q.Append(xmlstream.New(NSDiscoItems, "item", "jid", d, "name", s.services[d].name))
		}
	}
	return q, nil
}

func (s *Server) ping(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	return nil, nil
}

func (s *Server) version(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	q := xmlstream.New(NSVersion, "query")
	q.Append(xmlstream.New(NSVersion, "name").AppendText("Bluetick"))
	q.Append(xmlstream.New(NSVersion, "version").AppendText(Version))
	return q, nil
}

// lastActivity answers XEP-0012. For the server: its uptime. For an account:
// 0 while it is online, else the seconds since its last session ended — but
// only to the account itself and to contacts it shares its presence with
// (subscription from or both), because last seen is presence information.
func (s *Server) lastActivity(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	q := xmlstream.New(NSLast, "query")
	if iq.To == s.Domain {
		q.SetAttr("seconds", strconv.FormatInt(int64(time.Since(s.started).Seconds()), 10))
		return q, nil
	}
	// mam branch: the user's last-seen visibility (docs/privacy.md)
	// decides who else may ask: nobody, contacts (the default) or everyone.
	vis := privacy.Contacts
	if iq.To != iq.From.Bare() {
		var err error
		if vis, err = privacy.LastSeen(ctx, s.store, iq.To.Local()); err != nil {
			return nil, err
		}
		if vis == privacy.Nobody {
			return nil, stanza.NewError("forbidden", "this user shares last activity with nobody")
		}
	}
	if iq.To != iq.From.Bare() && vis != privacy.Everyone {
		item, err := s.store.RosterItem(ctx, iq.To.Local(), iq.From.Bare().String())
		if errors.Is(err, store.ErrNotFound) || err == nil && item.Subscription != store.SubFrom && item.Subscription != store.SubBoth {
			return nil, stanza.NewError("forbidden", "last activity is shared only with contacts subscribed to presence")
		}
		if err != nil {
			return nil, err
		}
	}
	if s.Router.Online(iq.To) {
		q.SetAttr("seconds", "0")
		return q, nil
	}
	t, status, err := s.store.LastActivity(ctx, iq.To.Local())
	if errors.Is(err, store.ErrNotFound) {
		return nil, stanza.NewError("item-not-found", "no recorded activity")
	}
	if err != nil {
		return nil, err
	}
	secs := int64(time.Since(t).Seconds())
	if secs < 0 {
		secs = 0
	}
	q.SetAttr("seconds", strconv.FormatInt(secs, 10))
	q.AppendText(status)
	return q, nil
}

// registerGet answers a logged-in client's XEP-0077 form: it may change its
// password or remove its account.
func (s *Server) registerGet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	q := xmlstream.New(NSRegister, "query")
	q.Append(xmlstream.New(NSRegister, "registered"))
	q.Append(xmlstream.New(NSRegister, "username").AppendText(iq.From.Local()))
	q.Append(xmlstream.New(NSRegister, "password"))
	return q, nil
}

// registerSet changes the password (XEP-0077 §3.3) or removes the account
// (§3.2) of the logged-in user.
func (s *Server) registerSet(ctx context.Context, iq *IQ) (*xmlstream.Element, error) {
	user := iq.From.Local()
	if iq.Payload.Child(NSRegister, "remove") != nil {
		if err := s.store.DeleteUser(ctx, user); err != nil {
			return nil, err
		}
		// The result goes out first, then every session of the account ends.
		go func() {
			time.Sleep(100 * time.Millisecond)
			for _, r := range s.Router.Resources(iq.From.Bare()) {
				r.Kick("not-authorized", "account removed")
			}
		}()
		return nil, nil
	}
	name := iq.Payload.ChildText(NSRegister, "username")
	pw := iq.Payload.ChildText(NSRegister, "password")
	if name != "" && name != user {
		return nil, stanza.NewError("not-allowed", "a logged-in user can only change its own password")
	}
	if pw == "" {
		return nil, stanza.NewError("not-acceptable", "password is required")
	}
	creds, err := auth.NewCredentials(pw, auth.DefaultIterations)
	if err != nil {
		return nil, stanza.NewError("not-acceptable", "password is not acceptable: "+err.Error())
	}
	if err := s.store.SetCredentials(ctx, user, creds); err != nil {
		return nil, err
	}
	// The devices' FAST tokens were earned with the old password.
	if err := fast.PasswordChanged(ctx, s.store, user); err != nil {
		s.log.Error("password change: revoking login tokens", "user", user, "err", err)
		return nil, err
	}
	return nil, nil
}
