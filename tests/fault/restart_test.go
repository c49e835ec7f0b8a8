package fault_test

import (
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMKeepsAcked proves that a graceful stop (SIGTERM) loses no
// message the server acknowledged: every message a sender got an XEP-0198
// ack for reaches its recipient after the server restarts on the same data
// dir, whether the recipient was online, hibernated (TCP connection
// dropped, session kept for resumption) or offline (never logged in, or
// logged out) when the message was sent; per-sender order is kept. An
// online recipient that stopped reading (a congested link: the server's
// writes back up into the session's queue) is covered too.
func TestSIGTERMKeepsAcked(t *testing.T) { testRestartKeepsAcked(t, syscall.SIGTERM) }

// TestKill9KeepsAcked is TestSIGTERMKeepsAcked with the server killed by
// SIGKILL (a crash, an OOM kill, a power cut of the process): what was
// acknowledged must already be on disk.
func TestKill9KeepsAcked(t *testing.T) { testRestartKeepsAcked(t, syscall.SIGKILL) }

// Recipient states while the messages are sent.
const (
	stOnline     = "online"         // connected, SM on, acking in stream order
	stStalled    = "online-stalled" // connected, SM on, stopped reading: big messages back up
	stHibernated = "hibernated"     // SM resume on, TCP dropped without </stream:stream>
	stNever      = "offline-never-logged-in"
	stLoggedOut  = "offline-logged-out" // unavailable presence and </stream:stream>
)

var recipientStates = []string{stOnline, stStalled, stHibernated, stNever, stLoggedOut}

func testRestartKeepsAcked(t *testing.T, sig syscall.Signal) {
	const perPair = 10 // messages from each sender to each recipient: 10 x 20 x 10 = 2,000
	start := time.Now()
	s := startServer(t, "")

	// Recipients, four in each state.
	state := make([]string, nRecipients)
	before := make([]*client, nRecipients) // sessions before the restart
	for i := range state {
		state[i] = recipientStates[i%len(recipientStates)]
		if state[i] == stNever {
			continue
		}
		before[i] = login(t, s.c2s, recipientName(i), "phone", true)
	}
	for i, c := range before {
		switch state[i] {
		case stHibernated:
			c.dropConnection()
		case stLoggedOut:
			c.logout()
		case stStalled:
			c.stall()
		}
	}
	time.Sleep(300 * time.Millisecond) // the server notices the dropped and closed connections

	// Senders: each sends perPair messages to every recipient, round robin,
	// pipelined (at most 50 unacknowledged).
	senders := make([]*client, nSenders)
	for i := range senders {
		senders[i] = login(t, s.c2s, senderName(i), "pc", true)
	}
	var wg sync.WaitGroup
	errs := make([]error, nSenders)
	for i, c := range senders {
		var flow []outMsg
		for k := 0; k < perPair; k++ {
			for r := 0; r < nRecipients; r++ {
				m := outMsg{to: recipientName(r) + "@localhost", id: msgID(senderName(i), recipientName(r), k)}
				if state[r] == stStalled {
					m.pad = 8 << 10 // 100 x 8 KiB per stalled recipient: more than the socket buffers hold
				}
				flow = append(flow, m)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.sendFlow(flow, 50, 0, 10*time.Second)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Errorf("sender: %v", err)
		}
	}
	ackedFor := map[string][]string{} // recipient -> acked ids, per sender in order
	nSent, nAcked, nBounced := 0, 0, 0
	for _, c := range senders {
		nSent += c.sentCount()
		nBounced += len(c.bouncedIDs())
		for _, id := range c.ackedIDs() {
			_, r, _, _ := parseID(id)
			ackedFor[r] = append(ackedFor[r], id)
			nAcked++
		}
	}
	if nBounced > 0 {
		t.Errorf("%d messages bounced by the server", nBounced)
	}
	t.Logf("sent=%d acked=%d before %v (%.1fs in)", nSent, nAcked, sig, time.Since(start).Seconds())

	// Stop the server right away and start it again on the same data dir.
	s.stop(sig)
	for i, c := range before {
		if state[i] == stStalled {
			c.unstall() // it reads what reached its socket before the server went
		}
	}
	s.start()

	// Every recipient logs in afresh (a new session, no resumption) and
	// collects.
	after := make([]*client, nRecipients)
	for i := range after {
		after[i] = login(t, s.c2s, recipientName(i), "fresh", true)
	}
	got := func(i int) []recvd {
		var all []recvd
		if before[i] != nil {
			all = append(all, before[i].received()...)
		}
		return append(all, after[i].received()...)
	}
	complete := func() bool {
		for i := range after {
			if check(ackedFor[recipientName(i)], got(i)).lost > 0 {
				return false
			}
		}
		return true
	}
	progress := func() int {
		n := 0
		for _, c := range after {
			n += len(c.received())
		}
		return n
	}
	settle(complete, progress, 3*time.Second, 15*time.Second)

	byState := map[string]*tally{}
	var total tally
	for i := range after {
		tl := check(ackedFor[recipientName(i)], got(i))
		if byState[state[i]] == nil {
			byState[state[i]] = &tally{}
		}
		byState[state[i]].add(tl)
		total.add(tl)
	}
	for _, st := range recipientStates {
		tl := byState[st]
		t.Logf("%-24s %s", st+":", tl)
		if tl.lost > 0 {
			t.Errorf("%v: %d acknowledged messages to %s recipients lost, e.g. %s", sig, tl.lost, st, strings.Join(first(tl.lostIDs, 5), " "))
		}
		if tl.outOfOrder > 0 {
			t.Errorf("%v: %d messages to %s recipients out of per-sender order, e.g. %s", sig, tl.outOfOrder, st, strings.Join(first(tl.disorder, 5), "; "))
		}
		if tl.dupSID > 0 {
			t.Errorf("%v: %d messages to %s recipients delivered again with a new stanza-id (clients cannot dedupe them)", sig, tl.dupSID, st)
		}
	}
	t.Logf("%v total: sent=%d %s (%.1fs)", sig, nSent, total, time.Since(start).Seconds())
	if nAcked < nSent*9/10 {
		t.Errorf("only %d of %d messages acked before the %v: the load did not run", nAcked, nSent, sig)
	}
}
