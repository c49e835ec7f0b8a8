package muc

import (
	"context"
	"errors"
	"sync"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/xmlstream"
)

// errRelayed tells serveIQ that the IQ went on to an occupant, who answers.
var errRelayed = errors.New("muc: relayed")

// relay remembers one IQ relayed between occupants until its answer.
type relay struct {
	requester jid.JID // full JID of the asking session
	id        string  // its IQ id
	target    jid.JID // full JID the IQ was relayed to
	targetOcc jid.JID // room/nick the requester addressed
	senderOcc jid.JID // room/nick the target sees as the sender
	at        time.Time
}

// Relayed IQs are forgotten after relayTTL or beyond relayMax pending, so a
// target that never answers costs nothing lasting.
const (
	relayTTL = 2 * time.Minute
	relayMax = 10000
)

type relays struct {
	mu sync.Mutex
	m  map[string]relay
}

func (rs *relays) add(r relay, now time.Time) string {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.m == nil {
		rs.m = map[string]relay{}
	}
	if len(rs.m) >= relayMax {
		for k, v := range rs.m {
			if now.Sub(v.at) > relayTTL || len(rs.m) >= relayMax {
				delete(rs.m, k)
			}
		}
	}
	r.at = now
	id := "muc-" + newID()
	rs.m[id] = r
	return id
}

// take returns and forgets the relay of id, if the answer comes from the
// session it was relayed to and is addressed to the occupant JID it was
// relayed from.
func (rs *relays) take(id string, from, to jid.JID) (relay, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r, ok := rs.m[id]
	if !ok || r.target != from || r.senderOcc != to {
		return relay{}, false
	}
	delete(rs.m, id)
	return r, true
}

// relayResponse passes an occupant's answer to a relayed IQ back to the
// requester, from the answering occupant's JID and with the original id.
// Other results and errors sent to the service are dropped (RFC 6120
// §8.2.3: nothing answers them).
func (s *Service) relayResponse(ctx context.Context, from, to jid.JID, el *xmlstream.Element) {
	r, ok := s.relays.take(el.Attr("id"), from, to)
	if !ok || s.now().Sub(r.at) > relayTTL {
		return
	}
	out := el.Copy()
	out.SetAttr("id", r.id)
	out.SetAttr("from", r.targetOcc.String())
	out.SetAttr("to", r.requester.String())
	_ = s.send(ctx, r.requester, out)
}
