package cluster

import (
	"context"
	"crypto/rand"
	"errors"

	"github.com/nats-io/nats.go"

	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/xmlstream"
)

var randRead = rand.Read

// Operations between nodes, in the "op" header of a request.
const (
	opSend = "send" // deliver the stanza in the body to the session "to"
	opKick = "kick" // close the session "to" with stream error "cond"
)

// Replies.
const (
	replyOK   = "ok"
	replyGone = "gone" // no such session on that node (any more)
	replyFull = "full" // the session's queue overflowed
)

var errRemote = errors.New("cluster: remote session unavailable")

// remoteSession is a session on another node, as the router sees it. Its
// Send is a request to that node, answered only once the stanza is in the
// session's queue there: the same promise a local Send makes, so the
// sender's ✓ keeps its meaning across nodes.
type remoteSession struct {
	n          *Node
	node       string
	jid        jid.JID
	prio       int
	avail      bool
	interested bool
	presence   *xmlstream.Element
}

func (s *remoteSession) JID() jid.JID                   { return s.jid }
func (s *remoteSession) Available() bool                { return s.avail }
func (s *remoteSession) Priority() int                  { return s.prio }
func (s *remoteSession) Presence() *xmlstream.Element   { return s.presence }
func (s *remoteSession) Interested() bool               { return s.interested }
func (s *remoteSession) OfflineOutstanding() int        { return 0 }
func (s *remoteSession) TakePending() []session.Pending { return nil }

// SendOffline is never used for a remote session: offline messages are
// drained by the node holding the session.
func (s *remoteSession) SendOffline(el *xmlstream.Element, seq int64) error { return errRemote }

func (s *remoteSession) Send(el *xmlstream.Element) error {
	return s.request(opSend, "", xmlstream.Append(nil, el, ""))
}

func (s *remoteSession) Kick(condition, text string) {
	_ = s.request(opKick, condition, []byte(text))
}

func (s *remoteSession) request(op, cond string, body []byte) error {
	m := nats.NewMsg(subjectPrefix + s.node)
	m.Header.Set("op", op)
	m.Header.Set("to", s.jid.String())
	if cond != "" {
		m.Header.Set("cond", cond)
	}
	m.Data = body
	ctx, cancel := context.WithTimeout(context.Background(), s.n.cfg.RequestTimeout)
	defer cancel()
	resp, err := s.n.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		s.n.log.Warn("cluster: request to node failed", "to_node", s.node, "jid", s.jid.String(), "err", err)
		return errRemote
	}
	if string(resp.Data) != replyOK {
		return errRemote
	}
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
		if err := s.Send(el); err != nil {
			reply(replyFull)
			return
		}
		reply(replyOK)
	case opKick:
		s.Kick(m.Header.Get("cond"), string(m.Data))
		reply(replyOK)
	default:
		reply(replyGone)
	}
}
