package cluster

import (
	"context"
	"errors"
	"hash/fnv"
	"sort"

	"github.com/nats-io/nats.go"

	"bluetick/internal/jid"
	"bluetick/internal/xmlstream"
)

// Group chats in a cluster: a room's live state (who is in it, under which
// nickname) lives on exactly one node, its home, so a message is fanned
// out once, in one order, to every occupant — wherever their sessions are,
// since the home node delivers through the router like any message. Rooms,
// members and the archive are in the shared store, so any node can become
// a room's home.
//
// The home is chosen by rendezvous hashing over the live nodes: every node
// computes the same answer from the heartbeat bucket it already watches,
// with nothing to agree on, and when a node joins or leaves only the rooms
// homed there move. A room that moves loses its occupant list (the new
// home loads the room from the store); clients notice with a XEP-0410
// self-ping and rejoin, and get what they missed from the room archive.

// roomSubject + node id: stanzas for rooms homed on that node.
const roomSubject = "bluetick.room."

// roomWorkers handle forwarded room stanzas in parallel across rooms; one
// room always maps to one worker, so its stanzas keep their order.
const roomWorkers = 16

// RoomHandler handles a stanza for a room homed on this node (the group
// chat service's HandleLocal); it returns when the stanza is handled.
type RoomHandler func(ctx context.Context, from jid.JID, el *xmlstream.Element)

// liveNodes returns the nodes whose heartbeat is recent, this one included,
// sorted.
func (n *Node) liveNodes() []string {
	n.mu.RLock()
	defer n.mu.RUnlock()
	out := []string{n.id}
	for node := range n.lastBeat {
		if node != n.id && n.alive(node) {
			out = append(out, node)
		}
	}
	sort.Strings(out)
	return out
}

// RoomHome returns the node that holds room's live state.
func (n *Node) RoomHome(room jid.JID) string {
	var best string
	var bestScore uint64
	key := room.String()
	for _, node := range n.liveNodes() {
		h := fnv.New64a()
		h.Write([]byte(node))
		h.Write([]byte{0})
		h.Write([]byte(key))
		if s := h.Sum64(); best == "" || s > bestScore {
			best, bestScore = node, s
		}
	}
	return best
}

// IsRoomHome reports whether room is homed on this node.
func (n *Node) IsRoomHome(room jid.JID) bool { return n.RoomHome(room) == n.id }

// ForwardRoom hands a stanza for room to its home node and returns once
// that node has handled it, so the sender's ✓ means the same as on one
// node.
func (n *Node) ForwardRoom(ctx context.Context, room, from jid.JID, el *xmlstream.Element) error {
	ctx, cancel := context.WithTimeout(ctx, n.cfg.RequestTimeout)
	defer cancel()
	home := n.RoomHome(room)
	m := nats.NewMsg(roomSubject + home)
	m.Header.Set("from", from.String())
	m.Header.Set("room", room.String())
	m.Data = xmlstream.Append(nil, el, "")
	reply, err := n.ask(ctx, home, m)
	if err != nil {
		return err
	}
	if string(reply.Data) != replyOK {
		return errors.New("cluster: room home node answered " + string(reply.Data))
	}
	return nil
}

// ServeRooms handles the room stanzas other nodes forward here with h.
func (n *Node) ServeRooms(h RoomHandler) error {
	ctx := n.ctx
	var queues [roomWorkers]chan *nats.Msg
	for i := range queues {
		q := make(chan *nats.Msg, 256)
		queues[i] = q
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			for {
				select {
				case m := <-q:
					n.serveRoom(h, m)
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	_, err := n.nc.Subscribe(roomSubject+n.id, func(m *nats.Msg) {
		f := fnv.New32a()
		f.Write([]byte(m.Header.Get("room")))
		select {
		case queues[f.Sum32()%roomWorkers] <- m:
		case <-ctx.Done():
		}
	})
	return err
}

func (n *Node) serveRoom(h RoomHandler, m *nats.Msg) {
	from, err := jid.Parse(m.Header.Get("from"))
	if err != nil {
		m.Respond([]byte("bad from"))
		return
	}
	el, err := xmlstream.Parse(m.Data, n.lim)
	if err != nil {
		m.Respond([]byte("bad stanza"))
		return
	}
	h(context.Background(), from, el)
	m.Respond([]byte(replyOK))
}
