package c2s

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/admission"
	"bluetick/internal/auth"
	"bluetick/internal/config"
	"bluetick/internal/router"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// Service accepts client connections for one IM core.
type Service struct {
	cfg  config.Config
	im   *server.Server
	tls  *tls.Config
	log  *slog.Logger
	lim  xmlstream.Limits
	gate *admission.Gate        // every listener's admission (per address, descriptors)
	auth *admission.RateLimiter // authentication attempts per IP
	// guard throttles logins per account and records their outcomes.
	guard *auth.Throttle

	active atomic.Int64 // open connections

	// Sessions cut for not reading: a write timed out (Stuck), or their
	// queue reached limits.max_queue (Overflowed).
	Stuck, Overflowed atomic.Uint64

	Shaper ShaperMetrics // the per-session stanza shaper (shaper.go)
	logins *prometheus.CounterVec

	// sessions maps session ids (the XEP-0198 resumption id) to every
	// live session of this node, attached or hibernated.
	rmu      sync.Mutex
	sessions map[string]*owned
	// ending counts the ends in progress (end): a kicked hibernated
	// session ends on its own goroutine, and Shutdown waits for it
	// before the store closes. Added to under rmu, while the session is
	// still in sessions, so never after Shutdown emptied it.
	ending sync.WaitGroup

	// sasl2x are the SASL2 inline extensions (sasl2.go), set before
	// serving and read-only afterwards.
	sasl2x []sasl2Extension

	// remote finds resumable sessions on other nodes (cluster mode).
	remote RemoteResumer

	// uaSeen: when this node last recorded each SASL2 user agent.
	uaSeen seenAgents

	// bosh holds the live BOSH sessions by sid.
	bosh sync.Map

	// park gives the goroutines of connections silent for parkAfter up
	// to the poller; parkedNow counts the connections parked.
	park      bool
	parkAfter time.Duration
	parkedNow atomic.Int64
}

// RemoteResumer takes over a resumable session from another node of the
// cluster (package cluster implements it).
type RemoteResumer interface {
	Resume(ctx context.Context, previd, user string, h uint32) (session.Snapshot, error)
}

// SetRemote enables XEP-0198 resumption of sessions held by other nodes.
func (s *Service) SetRemote(r RemoteResumer) { s.remote = r }

// HandOver gives up the local resumable session previd of user to another
// node that received the client's <resume/>: the client's h is applied,
// the connection (if still attached) is closed, and the session leaves this
// node without its contacts seeing it go offline.
func (s *Service) HandOver(previd, user string, h uint32) (session.Snapshot, bool) {
	s.rmu.Lock()
	o := s.sessions[previd]
	if o == nil || o.sess.JID().Local() != user {
		s.rmu.Unlock()
		return session.Snapshot{}, false
	}
	prev := o.owner
	delete(s.sessions, previd)
	s.rmu.Unlock()
	if prev != nil {
		prev.fail(&stanza.StreamError{Condition: "conflict", Text: "session resumed on another node"})
	}
	o.sess.Detach()
	snap, seqs, err := o.sess.HandOver(h)
	if err != nil {
		s.log.Info("c2s: hand-over refused", "previd", previd, "err", err)
		go s.im.End(context.Background(), o.sess)
		return session.Snapshot{}, false
	}
	if len(seqs) > 0 {
		s.im.Hooks().Delivered(o.sess, seqs)
	}
	// A message held with its journal record travels as the row it is
	// in the shared store, so the ack on the other node deletes it.
	for i, p := range snap.Pending {
		if w, ok := p.Rec.(router.Write); ok {
			if seq, err := w.Seq(context.Background()); err == nil {
				snap.Pending[i].OfflineSeq = seq
			}
		}
		snap.Pending[i].Rec = nil
	}
	s.im.Release(context.Background(), o.sess)
	return snap, true
}

// owned tracks which connection currently drives a session, so a
// connection that lost its session to a resumption does not end it.
type owned struct {
	sess  *session.Session
	owner *stream
	since time.Time // when the resource was bound (or taken over from another node)
}

// New returns a service; tlsConf serves STARTTLS and direct TLS.
func New(cfg config.Config, im *server.Server, tlsConf *tls.Config, log *slog.Logger) *Service {
	s := &Service{
		cfg:       cfg,
		im:        im,
		tls:       recordServed(tlsConf),
		log:       log,
		lim:       xmlstream.Limits{MaxElementBytes: cfg.Limits.MaxStanzaBytes},
		gate:      admission.New(cfg.Limits, log),
		auth:      admission.NewRateLimiter(cfg.Limits.LoginsPerIPPerMinute, time.Minute),
		sessions:  map[string]*owned{},
		park:      canPark(),
		logins:    newLogins(),
		parkAfter: defaultParkAfter,
	}
	s.guard = newThrottle(cfg, im.Store(), s)
	return s
}

// Parked is the number of connections waiting for input without a
// goroutine.
func (s *Service) Parked() int64 { return s.parkedNow.Load() }

// Active is the number of open client connections.
func (s *Service) Active() int64 { return s.active.Load() }

// Gate is the admission every listener of the process goes through: the
// HTTP listeners are wrapped with it too.
func (s *Service) Gate() *admission.Gate { return s.gate }

// ServeTCP accepts connections on ln until it is closed. With directTLS the
// TLS handshake comes first (XEP-0368); otherwise STARTTLS is offered.
func (s *Service) ServeTCP(ln net.Listener, directTLS bool) error {
	name := "c2s"
	if directTLS {
		name = "c2s_tls"
	}
	ln = s.gate.Listener(ln, name, false)
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			s.log.Error("c2s: accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		go s.serveConn(c, directTLS)
	}
}

// admit caps the streams of this node; the connection under a stream has
// been through the gate (per address, per minute, descriptors).
func (s *Service) admit(remote string) bool {
	if s.active.Load() >= int64(s.cfg.Limits.MaxConnections) {
		s.log.Warn("c2s: connection refused, max_connections reached", "remote", remote)
		return false
	}
	return true
}

func (s *Service) serveConn(c net.Conn, directTLS bool) {
	if !s.admit(c.RemoteAddr().String()) {
		c.Close()
		return
	}
	s.active.Add(1)
	t := newTCPTransport(c, s.lim, s.cfg.Limits.WriteTimeout.Duration)
	if directTLS {
		if err := t.StartTLS(s.tls); err != nil {
			s.log.Debug("c2s: TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			c.Close()
			s.active.Add(-1)
			return
		}
	}
	st := newStream(s, t)
	t.onRead = st.touch
	t.onStuck = st.stuck
	st.done = func() { s.active.Add(-1) }
	st.run()
}

// exempt reports whether the per-address caps skip this client.
func (s *Service) exempt(host string) bool {
	if !s.cfg.Limits.ExemptLoopback {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

// Shutdown ends every session of this node before the process exits, so
// what they hold reaches the store while it is still open: connected
// clients are closed with <system-shutdown/> and their streams end their
// sessions; sessions waiting for a resumption (no connection to close) and
// streams that have not finished by ctx's deadline are ended here.
func (s *Service) Shutdown(ctx context.Context) {
	s.rmu.Lock()
	all := make([]*owned, 0, len(s.sessions))
	for _, o := range s.sessions {
		all = append(all, o)
	}
	s.rmu.Unlock()
	for _, o := range all {
		o.sess.Kick("system-shutdown", "")
	}
	// Streams end their own sessions as their connections close.
	for s.Active() > 0 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	s.rmu.Lock()
	left := make([]*session.Session, 0, len(s.sessions))
	for id, o := range s.sessions {
		left = append(left, o.sess)
		delete(s.sessions, id)
	}
	s.rmu.Unlock()
	if len(left) > 0 {
		s.log.Info("c2s: ending sessions without a connection", "count", len(left))
	}
	// A few at a time: each end is a presence broadcast and store writes.
	work := make(chan *session.Session)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sess := range work {
				s.im.End(context.Background(), sess)
			}
		}()
	}
	for _, sess := range left {
		work <- sess
	}
	close(work)
	wg.Wait()
	s.ending.Wait()
	// The login outcomes not written yet.
	gctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.guard.Close(gctx)
}
