package c2s

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/metrics"
	"bluetick/internal/server"
	"bluetick/internal/session"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// Namespaces of stream negotiation.
const (
	nsTLS     = "urn:ietf:params:xml:ns:xmpp-tls"
	nsSASL    = "urn:ietf:params:xml:ns:xmpp-sasl"
	nsBind    = "urn:ietf:params:xml:ns:xmpp-bind"
	nsSession = "urn:ietf:params:xml:ns:xmpp-session" // RFC 3921 legacy, still sent by some clients
	nsSM      = "urn:xmpp:sm:3"
	nsRegFeat = "http://jabber.org/features/iq-register"
	nsCSI     = "urn:xmpp:csi:0" // XEP-0352
)

// stream is one client connection's state machine.
type stream struct {
	svc *Service
	t   transport
	log *slog.Logger
	id  string

	from     string           // the 'from' of the client's stream header (a hint, never trusted)
	user     string           // authenticated localpart, "" before SASL success
	sess     *session.Session // bound session; read by the stream goroutine only
	failures int              // failed authentications on this stream
	mech     string           // the SASL mechanism of the exchange in progress (a metrics label)
	// triedPlus: the client asked on this stream for a channel binding
	// type the connection lacks (see auth.Config.TriedPlus).
	triedPlus bool

	// cur mirrors sess for the watchdog, which runs on a timer goroutine.
	cur atomic.Pointer[session.Session]

	// Idle watchdog: lastRead is unix nanos of the last byte read; the
	// timer pings a silent client once, then closes it.
	lastRead atomic.Int64
	pinged   atomic.Bool
	timer    *time.Timer
	bound    atomic.Bool
	started  time.Time

	closedBy atomic.Bool // we closed it with a stream error

	fin *finisher // completes stanzas whose ✓ waits, in order

	shaper *shaper // nil: not shaped (shaper.go)

	done func() // called once when the stream has ended
}

func newStream(svc *Service, t transport) *stream {
	st := &stream{svc: svc, t: t, id: server.NewID(), started: time.Now(), fin: newFinisher(), shaper: svc.newShaper(t.Remote())}
	st.log = newStreamLogger(svc.log, st) // conn, transport and remote, formatted only when used
	st.lastRead.Store(time.Now().UnixNano())
	return st
}

// touch records client activity (called by the transport on every read).
func (st *stream) touch() {
	st.lastRead.Store(time.Now().UnixNano())
	st.pinged.Store(false)
}

// watchdog runs on a timer, never on a goroutine of its own: before
// binding it enforces the negotiation timeout; afterwards it pings a client
// silent for the idle timeout and closes one silent for twice that.
func (st *stream) watchdog() {
	idle := st.svc.cfg.Limits.IdleTimeout.Duration
	if !st.bound.Load() {
		if time.Since(st.started) >= st.svc.cfg.Limits.NegotiationTimeout.Duration {
			st.fail(&stanza.StreamError{Condition: "connection-timeout", Text: "negotiation took too long"})
			return
		}
		st.timer.Reset(time.Second)
		return
	}
	silent := time.Since(time.Unix(0, st.lastRead.Load()))
	if silent < idle {
		st.timer.Reset(idle - silent)
		return
	}
	if st.pinged.Load() {
		st.fail(&stanza.StreamError{Condition: "connection-timeout", Text: "no answer to ping"})
		return
	}
	st.pinged.Store(true)
	if s := st.cur.Load(); s != nil {
		if sm, _ := s.SM(); sm {
			s.SendControl(xmlstream.New(nsSM, "r"))
		} else {
			ping := xmlstream.New(xmlstream.NSClient, "iq", "type", "get", "id", "ping"+server.NewID(), "to", s.JID().String(), "from", st.svc.cfg.Domain)
			ping.Append(xmlstream.New(server.NSPing, "ping"))
			_ = s.Send(ping)
		}
	}
	st.timer.Reset(idle)
}

// stuck is told a write to the client made no progress for
// limits.write_timeout; the writer closes the connection next.
func (st *stream) stuck() {
	st.svc.Stuck.Add(1)
	st.log.Warn("session cut: the client has read nothing for limits.write_timeout; what it holds moves to the offline store",
		"write_timeout", st.svc.cfg.Limits.WriteTimeout.Duration)
}

// fail ends the stream with a stream error.
func (st *stream) fail(se *stanza.StreamError) {
	st.closedBy.Store(true)
	st.t.Close(se)
}

// run drives the connection from the first byte until it ends or parks.
func (st *stream) run() {
	// Created stopped and armed after the assignment, so the watchdog
	// always finds it.
	st.timer = time.AfterFunc(time.Hour, st.watchdog)
	st.timer.Stop()
	st.timer.Reset(time.Second)
	err := st.negotiate()
	if err == nil {
		if err = st.serve(); err == errParked {
			return
		}
	}
	st.end(err)
}

// unparked continues a parked stream on a new goroutine.
func (st *stream) unparked() {
	st.svc.parkedNow.Add(-1)
	if err := st.serve(); err != errParked {
		st.end(err)
	}
}

// end finishes the stream and tells the service it is gone.
func (st *stream) end(err error) {
	st.timer.Stop()
	st.finish(err)
	if st.done != nil {
		st.done()
	}
}

// finish decides the session's fate: hibernate for resumption when the
// connection simply broke and the client asked for resumption; otherwise
// end it (undelivered messages go to the offline store).
func (st *stream) finish(err error) {
	var se *stanza.StreamError
	clean := errors.Is(err, errStreamEnd)
	switch {
	case err == nil, clean:
		st.t.Close(nil)
	case errors.As(err, &se):
		st.log.Debug("stream error", "condition", se.Condition, "text", se.Text)
		st.fail(se)
	case isNetErr(err):
		st.t.Close(nil)
	default:
		// A decoder error: not-well-formed, policy-violation, ...
		se = stanza.StreamErrorFor(err)
		st.log.Debug("stream error", "condition", se.Condition, "err", err)
		st.fail(se)
		clean = true // the client broke the protocol: no resumption
	}
	s := st.sess
	if s == nil {
		return
	}
	// Stanzas still completing are counted (and bounced, if they fail)
	// before the session is hibernated or ended: a resumption then sees
	// the final count.
	st.fin.wait()
	if !st.release(s) {
		return // a resumption took the session over
	}
	s.Detach()
	_, resumable := s.SM()
	if resumable && !clean && !st.closedBy.Load() && !s.Closed() && !s.Kicked() {
		s.Hibernate(st.svc.cfg.Stream.ResumeTimeout.Duration, func() { st.svc.end(s) })
		st.svc.im.Router.Detached(context.Background(), s)
		return
	}
	st.svc.end(s)
}

// release drops this stream's ownership of s, reporting whether it still
// owned it.
func (st *stream) release(s *session.Session) bool {
	st.svc.rmu.Lock()
	defer st.svc.rmu.Unlock()
	o := st.svc.sessions[s.ID()]
	if o == nil || o.owner != st {
		return false
	}
	o.owner = nil
	return true
}

// end finishes a session for good.
func (svc *Service) end(s *session.Session) {
	svc.rmu.Lock()
	o := svc.sessions[s.ID()]
	if o == nil || o.sess != s || o.owner != nil {
		// Already ended, or resumed by a new connection in the meantime.
		svc.rmu.Unlock()
		return
	}
	delete(svc.sessions, s.ID())
	svc.ending.Add(1)
	svc.rmu.Unlock()
	defer svc.ending.Done()
	svc.im.End(context.Background(), s)
}

var errStreamEnd = errors.New("c2s: stream closed by client")

func isNetErr(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne) || errors.Is(err, context.Canceled) || isWSClosed(err)
}

// next reads the next event, mapping the stream end to errStreamEnd.
func (st *stream) next() (*xmlstream.Element, error) {
	ev, err := st.t.Next()
	if err != nil {
		return nil, err
	}
	switch ev.Kind {
	case xmlstream.StreamEnd:
		return nil, errStreamEnd
	case xmlstream.StreamStart:
		return nil, &stanza.StreamError{Condition: "bad-format", Text: "unexpected stream header"}
	}
	return ev.Elem, nil
}

// header reads and answers a stream header (RFC 6120 §4.7).
func (st *stream) header() error {
	ev, err := st.t.Next()
	if err != nil {
		return err
	}
	if ev.Kind != xmlstream.StreamStart {
		// Answer with our header first so the error is well-formed.
		st.t.SendHeader(st.svc.cfg.Domain, st.id, "en")
		return &stanza.StreamError{Condition: "bad-format", Text: "expected a stream header"}
	}
	h := ev.Elem
	if err := st.t.SendHeader(st.svc.cfg.Domain, st.id, "en"); err != nil {
		return err
	}
	if st.t.Kind() != "websocket" && (h.Space != xmlstream.NSStream || h.Name != "stream") {
		return &stanza.StreamError{Condition: "invalid-namespace", Text: "the root must be <stream:stream>"}
	}
	if ev.DefaultNS != xmlstream.NSClient {
		return &stanza.StreamError{Condition: "invalid-namespace", Text: "the content namespace must be jabber:client"}
	}
	if to := h.Attr("to"); to != "" {
		d, err := jid.Parse(to)
		if err != nil || d.Domain() != st.svc.cfg.Domain || !d.IsBare() || d.Local() != "" {
			return &stanza.StreamError{Condition: "host-unknown", Text: "this server serves " + st.svc.cfg.Domain}
		}
	}
	st.from = strings.Clone(h.Attr("from"))
	if v := h.Attr("version"); v == "" || v[0] != '1' {
		return &stanza.StreamError{Condition: "unsupported-version", Text: "version 1.0 is required"}
	}
	return nil
}

func (st *stream) sendFeatures(f *xmlstream.Element) error {
	return st.t.Write([]*xmlstream.Element{f})
}

// tlsRequired tells whether this client must encrypt before authenticating.
func (st *stream) tlsRequired() bool {
	switch st.svc.cfg.TLS.RequireSTARTTLS {
	case "never":
		return false
	case "always":
		return !st.t.Secure()
	}
	return !st.t.Secure() && !st.t.Remote().IsLoopback()
}

// negotiate runs TLS, SASL and binding (or resumption).
func (st *stream) negotiate() error {
	for {
		if err := st.header(); err != nil {
			return err
		}
		f := st.features()
		if err := st.sendFeatures(f); err != nil {
			return err
		}
		restart, err := st.negotiateStep()
		if err != nil || !restart {
			return err
		}
		st.t.Restart()
	}
}

// features are the stream features of this point of the negotiation
// (RFC 6120 §4.3.2): before authentication, STARTTLS or the mechanisms of
// both SASL profiles; after it, binding and stream management; after a
// SASL2 success that bound a session inline (Bind2), what may still be
// enabled on it (SASL2 sends features after <success/> with no restart).
func (st *stream) features() *xmlstream.Element {
	f := xmlstream.New(xmlstream.NSStream, "features")
	switch {
	case st.user == "":
		if st.t.CanStartTLS() && st.svc.tls != nil {
			tlsF := xmlstream.New(nsTLS, "starttls")
			if st.tlsRequired() {
				tlsF.Append(xmlstream.New(nsTLS, "required"))
			}
			f.Append(tlsF)
		}
		if !st.tlsRequired() {
			mechs := xmlstream.New(nsSASL, "mechanisms")
			for _, m := range st.mechanisms() {
				mechs.Append(xmlstream.New(nsSASL, "mechanism").AppendText(m))
			}
			f.Append(mechs)
			if cb := st.channelBindingFeature(); cb != nil {
				f.Append(cb) // XEP-0440
			}
			if a := st.sasl2Feature(); a != nil {
				f.Append(a)
			}
			if st.svc.cfg.Registration == "open" {
				f.Append(xmlstream.New(nsRegFeat, "register"))
			}
		}
	case st.sess == nil:
		f.Append(xmlstream.New(nsBind, "bind"))
		f.Append(xmlstream.New(nsSession, "session").Append(xmlstream.New(nsSession, "optional")))
		f.Append(xmlstream.New(nsSM, "sm"))
		f.Append(xmlstream.New(nsCSI, "csi"))
	default:
		// No <sm/> once enabled inline: a client would take it for an
		// offer to resume.
		if sm, _ := st.sess.SM(); !sm {
			f.Append(xmlstream.New(nsSM, "sm"))
		}
		f.Append(xmlstream.New(nsCSI, "csi"))
	}
	if c := st.svc.im.Caps(); c != nil {
		f.Append(c)
	}
	return f
}

// negotiateStep handles elements until the stream restarts (after STARTTLS
// or SASL: restart true) or a session is bound (restart false).
func (st *stream) negotiateStep() (restart bool, err error) {
	for {
		el, err := st.next()
		if err != nil {
			return false, err
		}
		switch {
		case el.Space == nsTLS && el.Name == "starttls":
			if !st.t.CanStartTLS() || st.svc.tls == nil || st.user != "" {
				return false, &stanza.StreamError{Condition: "policy-violation", Text: "STARTTLS is not available here"}
			}
			st.t.Write([]*xmlstream.Element{xmlstream.New(nsTLS, "proceed")})
			if err := st.t.StartTLS(st.svc.tls); err != nil {
				return false, err
			}
			return true, nil
		case st.user == "" && st.tlsRequired():
			return false, &stanza.StreamError{Condition: "policy-violation", Text: "STARTTLS is required before authentication"}
		case el.Space == nsSASL && el.Name == "auth":
			if st.user != "" {
				return false, &stanza.StreamError{Condition: "policy-violation", Text: "already authenticated"}
			}
			ok, err := st.sasl(el)
			if err != nil {
				return false, err
			}
			if ok {
				return true, nil
			}
		case el.Space == nsSASL2 && el.Name == "authenticate":
			if st.user != "" {
				// XEP-0388 §6.10: a second authentication is a stream error.
				return false, &stanza.StreamError{Condition: "policy-violation", Text: "already authenticated"}
			}
			if st.sasl2Feature() == nil {
				return false, &stanza.StreamError{Condition: "policy-violation", Text: "SASL2 is not offered on this transport"}
			}
			bound, err := st.sasl2(el)
			if err != nil || bound {
				return false, err
			}
			// Authenticated, or a <failure/> to retry after: go on
			// without a restart (the features were sent after <success/>).
		case st.user == "" && streamNS(el) == xmlstream.NSClient && el.Name == "iq" && st.svc.cfg.Registration == "open":
			if err := st.register(el); err != nil {
				return false, err
			}
		case st.user == "":
			return false, &stanza.StreamError{Condition: "not-authorized", Text: "authenticate first"}
		case el.Space == nsSM && el.Name == "resume":
			ok, err := st.resume(el)
			if err != nil || ok {
				return false, err
			}
		case el.Space == nsSM && el.Name == "enable":
			st.t.Write([]*xmlstream.Element{smFailed("unexpected-request", "bind a resource first")})
		case streamNS(el) == xmlstream.NSClient && el.Name == "iq" && el.Child(nsBind, "bind") != nil:
			ok, err := st.bind(el)
			if err != nil || ok {
				return false, err
			}
		case streamNS(el) == xmlstream.NSClient && (el.Name == "iq" || el.Name == "message" || el.Name == "presence"):
			return false, &stanza.StreamError{Condition: "not-authorized", Text: "bind a resource first"}
		default:
			return false, &stanza.StreamError{Condition: "unsupported-stanza-type", Text: "unexpected <" + el.Name + "/> during negotiation"}
		}
	}
}

// serve handles stanzas and stream-management nonzas of a bound session.
func (st *stream) serve() error {
	ctx := context.Background()
	p, _ := st.t.(parker)
	if !st.svc.park {
		p = nil
	}
	for {
		if p != nil {
			p.armIdle(st.svc.parkAfter)
		}
		el, err := st.next()
		if err != nil {
			if p != nil && p.idle(err) {
				st.svc.parkedNow.Add(1)
				if p.park(func() { go st.unparked() }) {
					return errParked
				}
				st.svc.parkedNow.Add(-1)
				continue
			}
			return err
		}
		if err := st.shaper.wait(st, el); err != nil {
			return err
		}
		s := st.sess
		if el.Space == nsSM {
			if err := st.smNonza(el); err != nil {
				return err
			}
			continue
		}
		if el.Space == nsSASL2 {
			// XEP-0388 §6.10: once authenticated, <authenticate/> is a
			// stream error (a session bound inline gets here).
			return &stanza.StreamError{Condition: "policy-violation", Text: "already authenticated"}
		}
		if el.Space == nsCSI {
			switch el.Name {
			case "active":
				s.SetInactive(false)
			case "inactive":
				s.SetInactive(true)
			default:
				return &stanza.StreamError{Condition: "unsupported-stanza-type", Text: "unknown client state"}
			}
			continue
		}
		if streamNS(el) != xmlstream.NSClient {
			return &stanza.StreamError{Condition: "unsupported-stanza-type", Text: "unknown element <" + el.Name + "/> in " + el.Space}
		}
		if el.Space == "" {
			qualify(el)
		}
		metrics.StanzasIn.Add(el.Name)
		var finish func()
		switch el.Name {
		case "message", "presence":
			finish = st.svc.im.HandleAsync(ctx, s, el)
		case "iq":
			if el.Attr("type") == "set" && el.Child(nsSession, "session") != nil {
				// RFC 3921 session establishment: a no-op kept for old clients.
				_ = s.Send(xmlstream.New(xmlstream.NSClient, "iq", "type", "result", "id", el.Attr("id")))
			} else {
				finish = st.svc.im.HandleAsync(ctx, s, el)
			}
		default:
			return &stanza.StreamError{Condition: "unsupported-stanza-type", Text: "unknown stanza <" + el.Name + "/>"}
		}
		sm, _ := s.SM()
		if finish == nil && !st.fin.busy() {
			if sm {
				s.Handled()
			}
			continue
		}
		// Counted after the stanzas before it, once its own ✓ is due.
		st.fin.add(func() {
			if finish != nil {
				finish()
			}
			if sm {
				s.Handled()
			}
		})
	}
}

// qualify puts an unqualified stanza (a WebSocket client that left out
// xmlns='jabber:client') and its unqualified descendants into jabber:client,
// so they serialize correctly inside other clients' streams.
func qualify(el *xmlstream.Element) {
	el.Space = xmlstream.NSClient
	for _, c := range el.Children {
		if c.Elem != nil && c.Elem.Space == "" {
			qualify(c.Elem)
		}
	}
}
