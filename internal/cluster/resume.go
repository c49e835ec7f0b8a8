package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"bluetick/internal/jid"
	"bluetick/internal/session"
	"bluetick/internal/xmlstream"
)

// resumeSubject + "." + node is asked by a node that got a XEP-0198
// <resume/> for a session it does not hold: it asks every other node at
// once, each on its own subject, and every node answers, the holder with
// the session, the others with replyGone. So a resumption whose holder
// died fails at once (a dead node's subject has no responders: NATS
// answers that immediately) instead of waiting for a timeout; only a node
// that is hung but still connected makes it wait, up to resumeWait.
//
// Nodes also listen on resumeSubject alone, where only the holder answers:
// how nodes of an older version ask.
const resumeSubject = "bluetick.resume"

// resumeWait bounds a resumption request.
const resumeWait = 2 * time.Second

// ErrNoSession: no node holds a resumable session with that id.
var ErrNoSession = errors.New("cluster: no such resumable session")

type wireSnapshot struct {
	ID         string        `json:"id"`
	JID        string        `json:"jid"`
	InH        uint32        `json:"inh"`
	Acked      uint32        `json:"acked"`
	Pending    []wirePending `json:"pending,omitempty"`
	Available  bool          `json:"avail"`
	Priority   int           `json:"prio"`
	Presence   string        `json:"pres,omitempty"`
	Interested bool          `json:"int"`
	Carbons    bool          `json:"cc,omitempty"`
}

type wirePending struct {
	XML string `json:"x"`
	Seq int64  `json:"s,omitempty"`
}

// serveResume answers a resumption request (on resumeSubject) if this
// node holds the session, and stays silent otherwise.
func (n *Node) serveResume(m *nats.Msg) {
	if b, ok := n.handOver(m); ok {
		m.Respond(b)
	}
}

// serveResumeHere answers a resumption request addressed to this node:
// the session, or replyGone.
func (n *Node) serveResumeHere(m *nats.Msg) {
	if b, ok := n.handOver(m); ok {
		m.Respond(b)
		return
	}
	m.Respond([]byte(replyGone))
}

// handOver gives up the session a resumption request names, if this node
// holds it, serialized for the wire.
func (n *Node) handOver(m *nats.Msg) ([]byte, bool) {
	if n.cfg.HandOver == nil {
		return nil, false
	}
	h, err := strconv.ParseUint(m.Header.Get("h"), 10, 32)
	if err != nil {
		return nil, false
	}
	snap, ok := n.cfg.HandOver(m.Header.Get("previd"), m.Header.Get("user"), uint32(h))
	if !ok {
		return nil, false // not ours (or not resumable)
	}
	w := wireSnapshot{ID: snap.ID, JID: snap.JID.String(), InH: snap.InH, Acked: snap.Acked,
		Available: snap.Available, Priority: snap.Priority, Interested: snap.Interested, Carbons: snap.Carbons}
	if snap.Presence != nil {
		w.Presence = string(xmlstream.Append(nil, snap.Presence, ""))
	}
	for _, p := range snap.Pending {
		w.Pending = append(w.Pending, wirePending{XML: string(xmlstream.Append(nil, p.El, "")), Seq: p.OfflineSeq})
	}
	b, _ := json.Marshal(w)
	return b, true
}

// Resume asks the other nodes for the resumable session previd of user,
// acknowledging h stanzas; the node holding it hands it over and forgets
// it. It asks every node that ever sent a heartbeat (a dead one answers
// "no responders" at once) and returns as soon as the holder answered or
// every node said it does not hold the session.
func (n *Node) Resume(ctx context.Context, previd, user string, h uint32) (session.Snapshot, error) {
	nodes := n.otherNodes()
	ctx, cancel := context.WithTimeout(ctx, resumeWait)
	defer cancel()
	answers := make(chan []byte, len(nodes))
	for _, node := range nodes {
		go func(node string) {
			m := nats.NewMsg(resumeSubject + "." + node)
			m.Header.Set("previd", previd)
			m.Header.Set("user", user)
			m.Header.Set("h", strconv.FormatUint(uint64(h), 10))
			resp, err := n.ask(ctx, node, m)
			if err != nil {
				if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, errNodeGone) && !errors.Is(err, context.Canceled) {
					n.log.Warn("cluster: resumption request unanswered", "to_node", node, "err", err)
				}
				answers <- nil
				return
			}
			answers <- resp.Data
		}(node)
	}
	var data []byte
	for range nodes {
		if b := <-answers; len(b) > 0 && string(b) != replyGone {
			data = b
			break
		}
	}
	if data == nil {
		return session.Snapshot{}, ErrNoSession
	}
	var w wireSnapshot
	if err := json.Unmarshal(data, &w); err != nil {
		return session.Snapshot{}, err
	}
	full, err := jid.Parse(w.JID)
	if err != nil {
		return session.Snapshot{}, err
	}
	snap := session.Snapshot{ID: w.ID, JID: full, InH: w.InH, Acked: w.Acked,
		Available: w.Available, Priority: w.Priority, Interested: w.Interested, Carbons: w.Carbons}
	if w.Presence != "" {
		if p, err := xmlstream.Parse([]byte(w.Presence), n.lim); err == nil {
			p.Space = xmlstream.NSClient
			snap.Presence = p
		}
	}
	for _, p := range w.Pending {
		el, err := xmlstream.Parse([]byte(p.XML), n.lim)
		if err != nil {
			continue
		}
		el.Space = xmlstream.NSClient
		snap.Pending = append(snap.Pending, session.Pending{El: el, OfflineSeq: p.Seq})
	}
	return snap, nil
}

// otherNodes lists every node with an entry in the heartbeat bucket, alive
// or not, except this one.
func (n *Node) otherNodes() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := make([]string, 0, len(n.lastBeat))
	for node := range n.lastBeat {
		if node != n.id {
			out = append(out, node)
		}
	}
	return out
}
