// Package push implements XEP-0357 Push Notifications on the server side:
// clients enable and disable push with an app server, and when a message
// arrives for an account with no session awake to show it (offline,
// hibernated by stream management, or inactive by XEP-0352), the server
// publishes a notification to each registration's node.
//
// Bluetick does not federate, so the only app server is the built-in one
// at push.<domain> (package push/gateway), reached by a function call
// rather than the network. Notifications carry a XEP-0357 summary form
// whose content is a privacy choice (push.include_sender, include_body,
// include_count); pushes to one device are rate limited and coalesced
// (push.min_interval); a registration the app server rejects for good is
// disabled.
package push

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"bluetick/internal/config"
	"bluetick/internal/dataform"
	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/store"
	"bluetick/internal/xmlstream"
)

// Namespaces.
const (
	NS              = "urn:xmpp:push:0"
	NSPubSub        = "http://jabber.org/protocol/pubsub"
	FormSummary     = "urn:xmpp:push:summary"
	FormPublishOpts = "http://jabber.org/protocol/pubsub#publish-options"
	nsReceipts      = "urn:xmpp:receipts"
	nsMarkers       = "urn:xmpp:chat-markers:0"
)

// AppServer takes a XEP-0357 publish IQ. The built-in gateway implements
// it; its error is the IQ error an app server would answer.
type AppServer interface {
	Publish(ctx context.Context, iq *xmlstream.Element) error
}

// queueLen bounds the notifications waiting for a worker; beyond it they
// are dropped (and counted): the message itself is safe in the store, only
// the wake-up is lost.
const queueLen = 4096

// workers publish concurrently; a publish may wait on provider retries.
const workers = 8

// maxRegistrations bounds the registrations of one account (each message
// costs one publish per registration).
const maxRegistrations = 32

// Service is the XEP-0357 side of one node.
type Service struct {
	cfg    config.Push
	domain string
	st     store.Push
	apps   map[string]AppServer // by app server JID
	log    *slog.Logger
	jobs   chan job
	now    func() time.Time

	mu    sync.Mutex
	slots map[regKey]*slot // rate-limit state per registration

	Metrics *Metrics
	wg      sync.WaitGroup
	stop    chan struct{}
	// ctx bounds every publish; Stop cancels it so shutdown does not wait
	// for provider retries.
	ctx    context.Context
	cancel context.CancelFunc
}

type job struct {
	user   jid.JID
	sender string
	body   string
}

type regKey struct{ user, service, node string }

// slot is the rate-limit state of one registration: when it was last
// pushed, and what came since (coalesced into the next push).
type slot struct {
	last    time.Time
	pending int // messages waiting for the timer
	sender  string
	body    string
	timer   *time.Timer
}

// New returns the service; apps maps the app server JIDs enable accepts
// to their in-process implementations. Start runs its workers.
func New(cfg config.Push, domain string, st store.Push, apps map[string]AppServer, log *slog.Logger) *Service {
	ctx, cancel := context.WithCancel(context.Background())
	return &Service{
		cfg: cfg, domain: domain, st: st, apps: apps, log: log,
		jobs: make(chan job, queueLen), now: time.Now, slots: map[regKey]*slot{},
		Metrics: &Metrics{}, stop: make(chan struct{}), ctx: ctx, cancel: cancel,
	}
}

// Register puts enable and disable on the server's mux; urn:xmpp:push:0 is
// advertised on the account's disco#info (XEP-0357 §4).
func (s *Service) Register(m *server.Mux) {
	m.Handle("set", NS, "enable", server.ToSelf, NS, s.enable)
	m.Handle("set", NS, "disable", server.ToSelf, "", s.disable)
}

// Start runs the workers until Stop.
func (s *Service) Start() {
	for range workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for {
				select {
				case j := <-s.jobs:
					s.handle(j)
				case <-s.stop:
					return
				}
			}
		}()
	}
}

// Stop ends the workers; queued and coalesced pushes are dropped.
func (s *Service) Stop() {
	s.cancel()
	close(s.stop)
	s.wg.Wait()
	s.mu.Lock()
	for _, sl := range s.slots {
		if sl.timer != nil {
			sl.timer.Stop()
		}
	}
	s.mu.Unlock()
}

func (s *Service) appServer(j jid.JID) (AppServer, error) {
	if app := s.apps[j.String()]; app != nil {
		return app, nil
	}
	names := ""
	for n := range s.apps {
		names = n
	}
	if j.Domain() != s.domain && !isSubdomain(j.Domain(), s.domain) {
		return nil, stanza.NewError("remote-server-not-found", "this server does not federate: use its own push app server "+names)
	}
	return nil, stanza.NewError("not-acceptable", "push is only available through this server's own app server "+names)
}

func isSubdomain(d, parent string) bool {
	return len(d) > len(parent) && d[len(d)-len(parent)-1:] == "."+parent
}

// enable handles <enable xmlns='urn:xmpp:push:0' jid=… node=…/> (§5).
func (s *Service) enable(ctx context.Context, iq *server.IQ) (*xmlstream.Element, error) {
	svc, node, err := target(iq.Payload)
	if err != nil {
		return nil, err
	}
	if node == "" {
		return nil, stanza.NewError("bad-request", "enable needs a node")
	}
	if _, err := s.appServer(svc); err != nil {
		return nil, err
	}
	opts := map[string]string{}
	if x := iq.Payload.Child(dataform.NS, "x"); x != nil {
		f, err := dataform.Parse(x)
		if err != nil || f.Type != "submit" && f.Type != "" || f.FormType() != FormPublishOpts {
			return nil, stanza.NewError("bad-request", "publish options must be a submitted "+FormPublishOpts+" form")
		}
		opts = f.Values()
	}
	if len(opts) > 16 {
		return nil, stanza.NewError("not-acceptable", "too many publish options")
	}
	for k, v := range opts {
		if len(k)+len(v) > 1024 {
			return nil, stanza.NewError("not-acceptable", "publish option "+k+" is too long")
		}
	}
	existing, err := s.st.PushRegistrations(ctx, iq.From.Local())
	if err != nil {
		return nil, err
	}
	if len(existing) >= maxRegistrations && !slices.ContainsFunc(existing, func(r store.PushRegistration) bool {
		return r.Service == svc.String() && r.Node == node
	}) {
		return nil, stanza.NewError("resource-constraint", "too many push registrations on this account; disable one first")
	}
	err = s.st.PutPushRegistration(ctx, store.PushRegistration{
		User: iq.From.Local(), Resource: iq.From.Resource(), Service: svc.String(), Node: node, Options: opts, Created: s.now(),
	})
	if err != nil {
		return nil, err
	}
	s.log.Debug("push enabled", "user", iq.From.String(), "service", svc.String(), "node", node)
	return nil, nil
}

// disable handles <disable jid=… [node=…]/> (§6): one node, or every node
// of that app server.
func (s *Service) disable(ctx context.Context, iq *server.IQ) (*xmlstream.Element, error) {
	svc, node, err := target(iq.Payload)
	if err != nil {
		return nil, err
	}
	if _, err := s.st.DeletePushRegistrations(ctx, iq.From.Local(), svc.String(), node); err != nil {
		return nil, err
	}
	s.forget(iq.From.Local(), svc.String(), node)
	return nil, nil
}

func target(p *xmlstream.Element) (jid.JID, string, error) {
	a := p.Attr("jid")
	if a == "" {
		return jid.JID{}, "", stanza.NewError("bad-request", "the app server jid is required")
	}
	j, err := jid.Parse(a)
	if err != nil {
		return jid.JID{}, "", stanza.NewError("jid-malformed", "the app server jid is not a valid JID")
	}
	return j, p.Attr("node"), nil
}

// forget drops the rate-limit state (and a pending coalesced push) of
// disabled registrations.
func (s *Service) forget(user, service, node string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, sl := range s.slots {
		if k.user == user && k.service == service && (node == "" || k.node == node) {
			if sl.timer != nil {
				sl.timer.Stop()
			}
			delete(s.slots, k)
		}
	}
}

// Pushable reports whether msg is worth waking a phone for: a chat,
// normal or groupchat message with a body or an encrypted payload
// (OMEMO's <encrypted/>, in any version), or — with notify_receipts — a
// receipt or chat marker.
func (s *Service) Pushable(msg *xmlstream.Element) bool {
	switch msg.Attr("type") {
	case "", "normal", "chat", "groupchat":
	default:
		return false
	}
	for _, c := range msg.Elements() {
		switch {
		case c.Name == "body" && c.Space == msg.Space:
			return true
		case c.Name == "encrypted":
			return true
		case s.cfg.NotifyReceipts && (c.Space == nsReceipts && c.Name == "received" || c.Space == nsMarkers && c.Name != "markable"):
			return true
		}
	}
	return false
}

// Notify queues a push for user (a bare JID of this server) about msg, if
// the message is pushable and the user has registrations. It never
// blocks: the router calls it under the user's delivery lock, and the
// group chat service for each offline member.
func (s *Service) Notify(ctx context.Context, user jid.JID, msg *xmlstream.Element) {
	if !s.Pushable(msg) {
		return
	}
	j := job{user: user.Bare()}
	if s.cfg.IncludeSender {
		j.sender = msg.Attr("from")
		if msg.Attr("type") != "groupchat" {
			if f, err := jid.Parse(j.sender); err == nil {
				j.sender = f.Bare().String()
			}
		}
	}
	if s.cfg.IncludeBody && !encrypted(msg) {
		j.body = truncate(msg.ChildText(msg.Space, "body"), maxBody)
	}
	select {
	case s.jobs <- j:
	default:
		s.Metrics.add(&s.Metrics.QueueFull)
	}
}

func encrypted(msg *xmlstream.Element) bool {
	for _, c := range msg.Elements() {
		if c.Name == "encrypted" {
			return true
		}
	}
	return false
}

// maxBody bounds last-message-body (push.include_body), in bytes.
const maxBody = 256

// truncate returns s if it has at most n bytes, else s cut on a UTF-8
// boundary and ended with "…", n bytes at most in all.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	n -= len(ellipsis)
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n] + ellipsis
}

// handle pushes one message to each of the user's registrations, or
// coalesces it into a push already scheduled.
func (s *Service) handle(j job) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	regs, err := s.st.PushRegistrations(ctx, j.user.Local())
	if err != nil {
		s.log.Error("push: loading registrations", "user", j.user.String(), "err", err)
		return
	}
	for _, r := range regs {
		k := regKey{r.User, r.Service, r.Node}
		if count, ok := s.admit(k, j); ok {
			s.publish(ctx, r, count, j.sender, j.body)
		}
	}
}

// admit applies the rate limit: it returns true (with the message count)
// when the registration may be pushed now; otherwise the message is
// added to the next push, which a timer sends when the interval ends.
func (s *Service) admit(k regKey, j job) (int, bool) {
	now := s.now()
	iv := s.cfg.MinInterval.Duration
	s.mu.Lock()
	defer s.mu.Unlock()
	sl := s.slots[k]
	if sl == nil {
		if len(s.slots) >= 100000 {
			s.pruneLocked(now)
		}
		sl = &slot{}
		s.slots[k] = sl
	}
	if sl.timer == nil && (sl.last.IsZero() || now.Sub(sl.last) >= iv) {
		sl.last = now
		return 1, true
	}
	sl.pending++
	sl.sender, sl.body = j.sender, j.body
	s.Metrics.add(&s.Metrics.Coalesced)
	if sl.timer == nil {
		sl.timer = time.AfterFunc(sl.last.Add(iv).Sub(now), func() { s.flush(k) })
	}
	return 0, false
}

// pruneLocked drops idle slots (their interval is over and nothing waits).
func (s *Service) pruneLocked(now time.Time) {
	for k, sl := range s.slots {
		if sl.timer == nil && now.Sub(sl.last) >= s.cfg.MinInterval.Duration {
			delete(s.slots, k)
		}
	}
}

// flush sends the coalesced push of a registration, if it still exists.
func (s *Service) flush(k regKey) {
	s.mu.Lock()
	sl := s.slots[k]
	if sl == nil || sl.pending == 0 {
		s.mu.Unlock()
		return
	}
	count, sender, body := sl.pending, sl.sender, sl.body
	sl.pending, sl.timer, sl.last = 0, nil, s.now()
	s.mu.Unlock()

	ctx, cancel := context.WithTimeout(s.ctx, 2*time.Minute)
	defer cancel()
	regs, err := s.st.PushRegistrations(ctx, k.user)
	if err != nil {
		s.log.Error("push: loading registrations", "user", k.user, "err", err)
		return
	}
	for _, r := range regs {
		if r.Service == k.service && r.Node == k.node {
			s.publish(ctx, r, count, sender, body)
		}
	}
}

// Publish builds the XEP-0357 §7 publish IQ for one registration.
func (s *Service) Publish(r store.PushRegistration, count int, sender, body string) *xmlstream.Element {
	f := dataform.New("form", FormSummary)
	if s.cfg.IncludeCount && count > 0 {
		f.Add("message-count", "", "", strconv.Itoa(count))
	}
	if sender != "" {
		f.Add("last-message-sender", "", "", sender)
	}
	if body != "" {
		f.Add("last-message-body", "", "", body)
	}
	iq := xmlstream.New(xmlstream.NSClient, "iq", "type", "set", "id", server.NewID(),
		"from", r.User+"@"+s.domain, "to", r.Service)
	ps := xmlstream.New(NSPubSub, "pubsub")
	ps.Append(xmlstream.New(NSPubSub, "publish", "node", r.Node).Append(
		xmlstream.New(NSPubSub, "item").Append(
			xmlstream.New(NS, "notification").Append(f.Element()))))
	if len(r.Options) > 0 {
		po := dataform.New("submit", FormPublishOpts)
		for k, v := range r.Options {
			po.Add(k, "", "", v)
		}
		ps.Append(xmlstream.New(NSPubSub, "publish-options").Append(po.Element()))
	}
	return iq.Append(ps)
}

func (s *Service) publish(ctx context.Context, r store.PushRegistration, count int, sender, body string) {
	svc, err := jid.Parse(r.Service)
	var app AppServer
	if err == nil {
		app = s.apps[svc.String()]
	}
	if app == nil {
		s.drop(ctx, r, "app server no longer served here")
		return
	}
	err = app.Publish(ctx, s.Publish(r, count, sender, body))
	if err == nil {
		s.Metrics.add(&s.Metrics.Published)
		return
	}
	s.Metrics.add(&s.Metrics.Failed)
	var se *stanza.Error
	if errors.As(err, &se) && se.Type != "wait" {
		// XEP-0357 §8: the app server refused for good (no such node,
		// wrong secret, bad request): stop publishing there.
		s.drop(ctx, r, se.Error())
		return
	}
	s.log.Warn("push: publish failed, keeping the registration", "user", r.User, "service", r.Service, "err", err)
}

func (s *Service) drop(ctx context.Context, r store.PushRegistration, why string) {
	s.log.Info("push: disabling a registration the app server refused", "user", r.User, "service", r.Service, "node", r.Node, "why", why)
	s.Metrics.add(&s.Metrics.Disabled)
	if _, err := s.st.DeletePushRegistrations(ctx, r.User, r.Service, r.Node); err != nil {
		s.log.Error("push: disabling a registration", "user", r.User, "err", err)
	}
	s.forget(r.User, r.Service, r.Node)
}
