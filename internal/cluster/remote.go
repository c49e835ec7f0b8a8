package cluster

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/xmlstream"
)

var randRead = rand.Read

// Operations between nodes, in the "op" header of a request.
const (
	opSend = "send" // deliver the stanza in the body to the session "to" (offline seq in "arg", if any)
	opKick = "kick" // close the session "to" with the stream error condition in "arg"
	opPing = "ping" // is this node there? (any answer says yes; nodes of older versions answer "gone")
)

// Replies.
const (
	replyOK   = "ok"
	replyGone = "gone" // no such session on that node (any more)
	replyFull = "full" // the session's queue overflowed
)

var errRemote = errors.New("cluster: remote session unavailable")

// errNodeGone: the node asked has no subscriber any more (its process
// died or it left NATS), found while waiting for its answer.
var errNodeGone = errors.New("cluster: node gone")

// probeAfter: a request to another node still unanswered after this long
// makes the asking node check, every probeAfter, whether that node is
// still there (see ask).
const probeAfter = 250 * time.Millisecond

// ask sends a request to node (on its own subject or one of its services')
// and waits for the answer until ctx ends — or until it finds that node
// gone. A request to a node that died gets "no responders" from NATS at
// once, except in the instant after the death, before NATS servers have
// dropped its subscriptions: a request published then goes nowhere and
// would wait for its whole timeout (seconds, holding the recipient's
// delivery lock on this node). So a request unanswered after probeAfter
// is followed by a ping to the node's subject; "no responders" there ends
// the wait with errNodeGone. A node that is there but slow answers the
// ping, and the request waits on.
func (n *Node) ask(ctx context.Context, node string, m *nats.Msg) (*nats.Msg, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	probe := time.AfterFunc(probeAfter, func() {
		for ctx.Err() == nil {
			if n.gone(ctx, node) {
				cancel(errNodeGone)
				return
			}
			select {
			case <-ctx.Done():
			case <-time.After(probeAfter):
			}
		}
	})
	defer probe.Stop()
	resp, err := n.nc.RequestMsgWithContext(ctx, m)
	if err != nil && errors.Is(context.Cause(ctx), errNodeGone) {
		return nil, errNodeGone
	}
	return resp, err
}

// gone reports whether node has no subscriber on its subject any more.
func (n *Node) gone(ctx context.Context, node string) bool {
	p := nats.NewMsg(subjectPrefix + node)
	p.Header.Set("op", opPing)
	pctx, cancel := context.WithTimeout(ctx, probeAfter)
	defer cancel()
	_, err := n.nc.RequestMsgWithContext(pctx, p)
	return errors.Is(err, nats.ErrNoResponders)
}

// hdrAsleep in an "ok" reply to a send says the session is hibernated
// (XEP-0198) or inactive (XEP-0352): its client will not show the stanza
// until woken.
const hdrAsleep = "asleep"

// remoteSession is a session on another node, as the router sees it. Its
// Send is a request to that node, answered only once the stanza is in the
// session's queue there: the same promise a local Send makes, so the
// sender's ✓ keeps its meaning across nodes.
type remoteSession struct {
	n          *Node
	node       string
	rev        uint64 // revision of its directory entry
	jid        jid.JID
	prio       int
	avail      bool
	interested bool
	carbons    bool
	presence   *xmlstream.Element
	// asleep: the last Send found the session hibernated or inactive on
	// its node (the "asleep" reply header), so the router wakes the
	// user with a push as it does for a local session.
	asleep bool
}

func (s *remoteSession) JID() jid.JID                   { return s.jid }
func (s *remoteSession) Available() bool                { return s.avail }
func (s *remoteSession) Priority() int                  { return s.prio }
func (s *remoteSession) Presence() *xmlstream.Element   { return s.presence }
func (s *remoteSession) Interested() bool               { return s.interested }
func (s *remoteSession) Carbons() bool                  { return s.carbons }
func (s *remoteSession) OfflineOutstanding() int        { return 0 }
func (s *remoteSession) TakePending() []session.Pending { return nil }

// Asleep reports what the node holding the session answered to the last
// Send (see router's OnUndelivered).
func (s *remoteSession) Asleep() bool { return s.asleep }

// SendOffline forwards a stored message with its sequence number, so the
// node holding the session deletes it from the shared store once the
// client acknowledges it (durable delivery).
func (s *remoteSession) SendOffline(el *xmlstream.Element, seq int64) error {
	return s.request(opSend, strconv.FormatInt(seq, 10), xmlstream.Append(nil, el, ""))
}

func (s *remoteSession) Send(el *xmlstream.Element) error {
	return s.request(opSend, "", xmlstream.Append(nil, el, ""))
}

// Kick asks the session's node to close it, without waiting: the caller
// is binding a newer session (or removing an account) and must not wait
// for a node that may be dead or hung. If that node does not confirm —
// no responders (its NATS connection is gone: the process died), no
// answer in time, or no such session there — the newer login wins: the
// entry is removed from the directory now, not when heartbeats declare the
// node dead. Nothing is lost: with durable delivery, what that session
// had not acknowledged is in the offline store, drained at the next login.
func (s *remoteSession) Kick(condition, text string) {
	go func() {
		if s.request(opKick, condition, []byte(text)) != nil {
			s.n.forget(s.node, s.jid, s.rev)
		}
	}()
}

// request sends op to the session's node; arg is the stream error
// condition of a kick, or the offline sequence number of a send.
func (s *remoteSession) request(op, arg string, body []byte) error {
	m := nats.NewMsg(subjectPrefix + s.node)
	m.Header.Set("op", op)
	m.Header.Set("to", s.jid.String())
	if arg != "" {
		m.Header.Set("arg", arg)
	}
	m.Data = body
	ctx, cancel := context.WithTimeout(context.Background(), s.n.cfg.RequestTimeout)
	defer cancel()
	start := time.Now()
	resp, err := s.n.ask(ctx, s.node, m)
	s.n.m.observe(op, start, err)
	if err != nil {
		s.n.log.Warn("cluster: request to node failed", "to_node", s.node, "jid", s.jid.String(), "err", err)
		return errRemote
	}
	if string(resp.Data) != replyOK {
		return errRemote
	}
	s.asleep = resp.Header.Get(hdrAsleep) == "1"
	return nil
}

// serve answers requests from other nodes for this node's sessions. NATS
// calls it sequentially per subscription, so stanzas from one sender node
// keep their order.
func (n *Node) serve(m *nats.Msg) {
	reply := func(s string) {
		if m.Reply != "" {
			m.Respond([]byte(s))
		}
	}
	if m.Header.Get("op") == opPing {
		reply(replyOK)
		return
	}
	to, err := jid.Parse(m.Header.Get("to"))
	if err != nil {
		reply(replyGone)
		return
	}
	s := n.r.LocalSession(to)
	if s == nil {
		reply(replyGone)
		return
	}
	switch m.Header.Get("op") {
	case opSend:
		el, err := xmlstream.Parse(m.Data, n.lim)
		if err != nil {
			n.log.Error("cluster: unreadable stanza from another node", "err", err)
			reply(replyGone)
			return
		}
		el.Space = xmlstream.NSClient
		if seq, _ := strconv.ParseInt(m.Header.Get("arg"), 10, 64); seq > 0 {
			err = n.r.SendStored(s, el, seq)
		} else {
			err = s.Send(el)
		}
		if err != nil {
			reply(replyFull)
			return
		}
		if a, ok := s.(interface{ Asleep() bool }); ok && a.Asleep() && m.Reply != "" {
			// A header, so nodes of an older version still read "ok".
			r := nats.NewMsg(m.Reply)
			r.Header.Set(hdrAsleep, "1")
			r.Data = []byte(replyOK)
			m.RespondMsg(r)
			return
		}
		reply(replyOK)
	case opKick:
		s.Kick(m.Header.Get("arg"), string(m.Data))
		reply(replyOK)
	default:
		reply(replyGone)
	}
}
