package cluster_test

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"bluetick/internal/xmpptest"
)

// TestKillNodeUnderLoadLosesNothingAcked is the fault test of cluster mode:
// senders spread over three nodes send to receivers on other nodes, each
// message confirmed by an XEP-0198 ack (✓); one node is killed with
// SIGKILL in the middle. Every acked message must reach its receiver exactly
// once after dropping redeliveries by stanza-id, in the order sent.
func TestKillNodeUnderLoadLosesNothingAcked(t *testing.T) {
	const pairs, perSender = 3, 120
	c := startCluster(t, 2*pairs) // u1..u3 send, u4..u6 receive
	rxs := make([]*rxState, pairs)
	var wg sync.WaitGroup
	stop := make(chan struct{})

	// Receivers: SM on, answer every <r/>, reconnect elsewhere when their
	// node dies.
	for i := 0; i < pairs; i++ {
		r := &rxState{bySID: map[string]string{}, copies: map[string]int{}}
		rxs[i] = r
		user := fmt.Sprintf("u%d", pairs+i+1)
		nodeIdx := (i + 1) % 3
		ready := make(chan struct{})
		wg.Add(1)
		go func() {
			defer wg.Done()
			first := true
			for attempt := 0; attempt < 5; attempt++ {
				cl := c.receiver(t, nodeIdx, user)
				if first {
					close(ready)
					first = false
				}
				if r.read(cl, stop) {
					return
				}
				nodeIdx = (nodeIdx + 1) % 3
				if c.nodes[nodeIdx].dead {
					nodeIdx = (nodeIdx + 1) % 3
				}
			}
		}()
		<-ready
	}
	time.Sleep(500 * time.Millisecond) // directory entries travel

	// Senders: message, <r/>, wait for <a/>: acked means ✓.
	acked := make([][]string, pairs)
	sent := make([]int, pairs)
	var swg sync.WaitGroup
	for i := 0; i < pairs; i++ {
		cl := c.loginOn(i, fmt.Sprintf("u%d", i+1), "s")
		cl.Send("<enable xmlns='urn:xmpp:sm:3'/>")
		cl.Expect("enabled")
		to := fmt.Sprintf("u%d@localhost", pairs+i+1)
		swg.Add(1)
		go func(i int) {
			defer swg.Done()
			for k := 0; k < perSender; k++ {
				id := fmt.Sprintf("s%d-%03d", i, k)
				cl.Conn.SetWriteDeadline(time.Now().Add(3 * time.Second))
				if _, err := cl.Conn.Write([]byte("<message type='chat' to='" + to + "' id='" + id + "'><body>" + id + "</body></message><r xmlns='urn:xmpp:sm:3'/>")); err != nil {
					return
				}
				sent[i]++
				for {
					el, err := cl.TryNext(5 * time.Second)
					if err != nil {
						return // our node died: what was acked so far counts
					}
					if el.Name == "a" && el.Space == xmpptest.NSSM {
						if h, _ := strconv.Atoi(el.Attr("h")); h == k+1 {
							acked[i] = append(acked[i], id)
						}
						break
					}
				}
				time.Sleep(5 * time.Millisecond)
			}
		}(i)
	}
	time.Sleep(400 * time.Millisecond)
	victim := c.nodes[1]
	victim.cmd.Process.Kill()
	victim.cmd.Wait()
	victim.dead = true
	t.Logf("killed %s while the load was running", victim.name)
	swg.Wait()
	time.Sleep(9 * time.Second) // dead-node detection, reconnects, drains
	close(stop)
	wg.Wait()

	var nSent, nAcked, nDelivered, lost, dups int
	for i := 0; i < pairs; i++ {
		r := rxs[i]
		r.mu.Lock()
		got := map[string]bool{}
		for _, id := range r.order {
			got[id] = true
		}
		nSent += sent[i]
		nAcked += len(acked[i])
		nDelivered += len(r.order)
		for _, id := range acked[i] {
			if !got[id] {
				lost++
				t.Errorf("acked message %s never delivered", id)
			}
		}
		for id, n := range r.copies {
			if n > 1 {
				dups++
				t.Errorf("message %s delivered with %d different stanza-ids", id, n)
			}
		}
		for k := 1; k < len(r.order); k++ {
			if r.order[k] < r.order[k-1] {
				t.Errorf("pair %d out of order: %s after %s", i, r.order[k], r.order[k-1])
			}
		}
		r.mu.Unlock()
	}
	t.Logf("sent=%d acked=%d delivered=%d lost=%d duplicated-after-dedupe=%d", nSent, nAcked, nDelivered, lost, dups)
	fmt.Printf("fault test: sent=%d acked=%d delivered=%d lost=%d duplicated-after-dedupe=%d\n", nSent, nAcked, nDelivered, lost, dups)
	if nAcked < pairs*perSender/3 {
		t.Errorf("only %d messages acked: the load did not run", nAcked)
	}
}

// receiver logs user in on node i with stream management and presence.
func (c *cluster) receiver(t *testing.T, i int, user string) *xmpptest.Client {
	cl := xmpptest.Dial(t, c.nodes[i].c2s, "localhost")
	cl.Login(user, "pw", "r")
	cl.Send("<enable xmlns='urn:xmpp:sm:3'/>")
	cl.Expect("enabled")
	cl.Send("<presence/>")
	return cl
}

// rxState is what one receiver saw.
type rxState struct {
	mu     sync.Mutex
	bySID  map[string]string // stanza-id -> message id
	order  []string          // message ids in first-arrival order
	copies map[string]int    // message id -> distinct stanza-ids seen
}

// read consumes messages until stop (true) or a broken connection (false),
// acknowledging every stanza it handled when asked.
func (r *rxState) read(cl *xmpptest.Client, stop chan struct{}) bool {
	h := 0
	for {
		select {
		case <-stop:
			return true
		default:
		}
		el, err := cl.Read(300 * time.Millisecond)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return false
		}
		switch {
		case el.Space == xmpptest.NSSM && el.Name == "r":
			cl.Conn.SetWriteDeadline(time.Now().Add(2 * time.Second))
			if _, err := cl.Conn.Write([]byte("<a xmlns='urn:xmpp:sm:3' h='" + strconv.Itoa(h) + "'/>")); err != nil {
				return false
			}
		case el.Name == "message" || el.Name == "presence" || el.Name == "iq":
			h++
			if el.Name != "message" {
				continue
			}
			sid := el.Child("urn:xmpp:sid:0", "stanza-id").Attr("id")
			id := el.Attr("id")
			r.mu.Lock()
			if _, seen := r.bySID[sid]; !seen {
				r.bySID[sid] = id
				if r.copies[id] == 0 {
					r.order = append(r.order, id)
				}
				r.copies[id]++
			}
			r.mu.Unlock()
		}
	}
}
