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

// resumeSubject is asked by a node that got a XEP-0198 <resume/> for a
// session it does not hold; every node listens, only the holder answers.
const resumeSubject = "bluetick.resume"

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

// serveResume answers a resumption request if this node holds the session.
func (n *Node) serveResume(m *nats.Msg) {
	if n.cfg.HandOver == nil {
		return
	}
	h, err := strconv.ParseUint(m.Header.Get("h"), 10, 32)
	if err != nil {
		return
	}
	snap, ok := n.cfg.HandOver(m.Header.Get("previd"), m.Header.Get("user"), uint32(h))
	if !ok {
		return // not ours (or not resumable): stay silent, the holder answers
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
	m.Respond(b)
}

// Resume asks the other nodes for the resumable session previd of user,
// acknowledging h stanzas; the node holding it hands it over and forgets
// it.
func (n *Node) Resume(ctx context.Context, previd, user string, h uint32) (session.Snapshot, error) {
	m := nats.NewMsg(resumeSubject)
	m.Header.Set("previd", previd)
	m.Header.Set("user", user)
	m.Header.Set("h", strconv.FormatUint(uint64(h), 10))
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := n.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		return session.Snapshot{}, ErrNoSession
	}
	var w wireSnapshot
	if err := json.Unmarshal(resp.Data, &w); err != nil {
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
