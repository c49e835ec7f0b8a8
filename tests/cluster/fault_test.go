package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

// faultCounts is what one run of the fault test saw.
type faultCounts struct {
	sent, acked, delivered int
	// lost: acked, never delivered, and not in the offline store either.
	lost int
	// stuck: acked, and still in PostgreSQL's offline table at the end
	// while its recipient is online (delivered or not: an ack the server
	// did not get, or a drain that stopped).
	stuck int
	// undelivered: acked and never delivered (lost or stuck).
	undelivered int
	dups        int
	outOfOrder  int
}

func (f faultCounts) String() string {
	return fmt.Sprintf("sent=%d acked=%d delivered=%d lost=%d stuck=%d undelivered=%d duplicated-after-dedupe=%d out-of-order=%d",
		f.sent, f.acked, f.delivered, f.lost, f.stuck, f.undelivered, f.dups, f.outOfOrder)
}

// TestKillNodeUnderLoadLosesNothingAcked is the fault test of cluster mode:
// senders spread over three nodes send to receivers on other nodes, each
// message confirmed by an XEP-0198 ack (✓); one node is killed with
// SIGKILL in the middle, and its clients come back through the balancer.
// Every acked message must reach its receiver exactly once after dropping
// redeliveries by stanza-id, in the order sent, and none may stay in the
// offline store once its receiver is back online.
//
// BLUETICK_FAULT_LOOPS=N runs it N times, each on a fresh cluster, and
// prints the counts of each run and their sum.
func TestKillNodeUnderLoadLosesNothingAcked(t *testing.T) {
	loops := 1
	if v := os.Getenv("BLUETICK_FAULT_LOOPS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 200 {
			t.Fatalf("BLUETICK_FAULT_LOOPS=%q: want a number from 1 to 200", v)
		}
		loops = n
	}
	if loops == 1 {
		f := killUnderLoad(t)
		fmt.Printf("fault test: %v\n", f)
		return
	}
	var sum faultCounts
	failed := 0
	for i := 1; i <= loops; i++ {
		var f faultCounts
		ok := t.Run(fmt.Sprintf("run%02d", i), func(t *testing.T) { f = killUnderLoad(t) })
		if !ok {
			failed++
		}
		fmt.Printf("fault test run %d/%d: %v\n", i, loops, f)
		sum.sent += f.sent
		sum.acked += f.acked
		sum.delivered += f.delivered
		sum.lost += f.lost
		sum.stuck += f.stuck
		sum.undelivered += f.undelivered
		sum.dups += f.dups
		sum.outOfOrder += f.outOfOrder
	}
	fmt.Printf("fault test, %d runs (%d failed), total: %v\n", loops, failed, sum)
}

// killUnderLoad runs the fault test once on a fresh cluster.
func killUnderLoad(t *testing.T) (f faultCounts) {
	const pairs, perSender = 3, 120
	c := startCluster(t, 2*pairs) // u1..u3 send, u4..u6 receive
	rxs := make([]*rxState, pairs)
	var wg sync.WaitGroup
	stop := make(chan struct{})

	// Receivers: SM on, answer every <r/>; the first connection straight
	// to a node, reconnections through the balancer when their node dies.
	for i := 0; i < pairs; i++ {
		r := &rxState{user: fmt.Sprintf("u%d", pairs+i+1), bySID: map[string]string{}, copies: map[string]int{}}
		rxs[i] = r
		cl := xmpptest.Dial(t, c.nodes[(i+1)%3].c2s, "localhost")
		cl.Login(r.user, "pw", "r")
		cl.Send("<enable xmlns='urn:xmpp:sm:3'/><presence/>")
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.setOnline(true)
			if r.read(cl, stop) {
				return
			}
			r.setOnline(false)
			for attempt := 0; attempt < 100; attempt++ {
				select {
				case <-stop:
					return
				default:
				}
				cl, err := rejoin(t, c.lb, r.user, "r")
				if err != nil {
					time.Sleep(100 * time.Millisecond)
					continue
				}
				r.setOnline(true)
				if r.read(cl, stop) {
					return
				}
				r.setOnline(false)
			}
		}()
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
	c.kill(1)
	t.Logf("killed %s while the load was running", victim.name)
	swg.Wait()

	// Wait until every acked message arrived and none is left in the
	// store with its receiver online (at most 20 s: drains, reconnects).
	var inStore map[string]bool
	deadline := time.Now().Add(20 * time.Second)
	for {
		inStore = c.offlineIDs(t)
		done := true
		for i := 0; i < pairs; i++ {
			if !rxs[i].isOnline() || !rxs[i].hasAll(acked[i]) {
				done = false
			}
			for _, id := range acked[i] {
				if inStore[id] {
					done = false
				}
			}
		}
		if done || time.Now().After(deadline) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	for i := 0; i < pairs; i++ {
		r := rxs[i]
		r.mu.Lock()
		got := map[string]bool{}
		for _, id := range r.order {
			got[id] = true
		}
		f.sent += sent[i]
		f.acked += len(acked[i])
		f.delivered += len(r.order)
		for _, id := range acked[i] {
			if inStore[id] {
				if r.online {
					f.stuck++
					t.Errorf("acked message %s still in the offline store, its receiver %s online (delivered: %v)", id, r.user, got[id])
				} else {
					t.Errorf("acked message %s in the offline store, its receiver %s did not come back", id, r.user)
				}
			}
			if !got[id] {
				f.undelivered++
				if !inStore[id] {
					f.lost++
					t.Errorf("acked message %s never delivered, and not in the store: lost", id)
				}
			}
		}
		for id, n := range r.copies {
			if n > 1 {
				f.dups++
				t.Errorf("message %s delivered with %d different stanza-ids", id, n)
			}
		}
		for k := 1; k < len(r.order); k++ {
			if r.order[k] < r.order[k-1] {
				f.outOfOrder++
				t.Errorf("pair %d out of order: %s after %s", i, r.order[k], r.order[k-1])
			}
		}
		r.mu.Unlock()
	}
	t.Logf("%v", f)
	if f.acked < pairs*perSender/3 {
		t.Errorf("only %d messages acked: the load did not run", f.acked)
	}
	return f
}

// rejoin logs user in through the balancer with stream management and
// presence, as a client does after its connection dropped; a failure is
// returned, not fatal (the caller retries).
func rejoin(t *testing.T, lb, user, res string) (cl *xmpptest.Client, err error) {
	defer endAttempt(&cl, &err)
	cl = xmpptest.Dial(attemptTB{t}, lb, "localhost")
	cl.Login(user, "pw", res)
	cl.Send("<enable xmlns='urn:xmpp:sm:3'/><presence/>")
	return cl, nil
}

// offlineIDs returns the ids of the messages in PostgreSQL's offline
// table.
func (c *cluster) offlineIDs(t *testing.T) map[string]bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.dsn)
	if err != nil {
		t.Fatalf("reading the offline table: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT data FROM offline`)
	if err != nil {
		t.Fatalf("reading the offline table: %v", err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var data []byte
		if err := rows.Scan(&data); err != nil {
			t.Fatalf("reading the offline table: %v", err)
		}
		if el, err := xmlstream.Parse(data, xmlstream.Limits{MaxElementBytes: 1 << 20}); err == nil {
			out[el.Attr("id")] = true
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("reading the offline table: %v", err)
	}
	return out
}

// rxState is what one receiver saw.
type rxState struct {
	user   string
	mu     sync.Mutex
	online bool              // bound, SM and presence sent, connection up
	bySID  map[string]string // stanza-id -> message id
	order  []string          // message ids in first-arrival order
	copies map[string]int    // message id -> distinct stanza-ids seen
}

func (r *rxState) setOnline(on bool) {
	r.mu.Lock()
	r.online = on
	r.mu.Unlock()
}

func (r *rxState) isOnline() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.online
}

func (r *rxState) hasAll(ids []string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	got := map[string]bool{}
	for _, id := range r.order {
		got[id] = true
	}
	for _, id := range ids {
		if !got[id] {
			return false
		}
	}
	return true
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
