package fault_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReconnectKeepsOrder proves that a recipient who keeps losing its
// connection and comes back as a NEW session (no resumption; the old one
// stays hibernated until stream.resume_timeout, here 1 s) while messages
// keep flowing gets every acknowledged message, and from each sender in
// the order sent: messages the old sessions held (and the server later
// moves to the offline store) must not arrive after newer ones delivered
// live to the new session. Five senders send 500 messages each, one every
// 6 ms; the recipient drops its TCP connection abruptly every 60-260 ms
// (about twenty times) and logs in again, with the same resource (the new session
// replaces the old one) or a new resource each time (the old session
// lingers beside the new one). At the end it logs in once more after the
// old sessions expired and collects what is left. Duplicates are dropped
// by message id before the order is checked; copies that carry a new
// stanza-id (which a client could not recognize) are reported.
func TestReconnectKeepsOrder(t *testing.T) {
	for _, tc := range []struct {
		name        string
		newResource bool
	}{
		{"same-resource", false},
		{"new-resource", true},
	} {
		t.Run(tc.name, func(t *testing.T) { testReconnectKeepsOrder(t, tc.newResource) })
	}
}

func testReconnectKeepsOrder(t *testing.T, newResource bool) {
	const (
		nSend     = 5
		perSender = 500
		gap       = 6 * time.Millisecond
		resume    = time.Second
	)
	start := time.Now()
	s := startServer(t, fmt.Sprintf("[stream]\nresume_timeout = %q\n", resume.String()))
	rcpt := recipientName(0)

	senders := make([]*client, nSend)
	for i := range senders {
		senders[i] = login(t, s.c2s, senderName(i), "pc", true)
	}
	initial := login(t, s.c2s, rcpt, "phone", true)
	sessions := []*client{initial}

	var wg sync.WaitGroup
	errs := make([]error, nSend)
	for i, c := range senders {
		flow := make([]outMsg, perSender)
		for k := range flow {
			flow[k] = outMsg{to: rcpt + "@localhost", id: msgID(senderName(i), rcpt, k)}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.sendFlow(flow, 50, gap, 10*time.Second)
		}()
	}
	flowDone := make(chan struct{})
	go func() { wg.Wait(); close(flowDone) }()

	// The recipient: read a while, drop the connection, log in anew.
	cur := initial
	cycles := 0
loop:
	for cycles < 60 {
		dwell := 60*time.Millisecond + time.Duration(cycles*70%200)*time.Millisecond
		select {
		case <-flowDone:
			break loop
		case <-time.After(dwell):
		}
		cur.dropConnection()
		cycles++
		res := "phone"
		if newResource {
			res = fmt.Sprintf("phone%d", cycles)
		}
		cur = login(t, s.c2s, rcpt, res, true)
		sessions = append(sessions, cur)
	}
	<-flowDone
	for _, err := range errs {
		if err != nil {
			t.Errorf("sender: %v", err)
		}
	}
	// Stay a moment, drop once more, let every old session expire (their
	// pending messages go to the offline store), and come back.
	time.Sleep(300 * time.Millisecond)
	cur.dropConnection()
	time.Sleep(resume + time.Second)
	final := login(t, s.c2s, rcpt, "final", true)
	sessions = append(sessions, final)

	var acked []string
	nSent := 0
	for _, c := range senders {
		acked = append(acked, c.ackedIDs()...)
		nSent += c.sentCount()
		if b := c.bouncedIDs(); len(b) > 0 {
			t.Errorf("%s: %d messages bounced", c.user, len(b))
		}
	}
	got := func() []recvd {
		var all []recvd
		for i, c := range sessions {
			for _, m := range c.received() {
				m.sess = i + 1
				all = append(all, m)
			}
		}
		return all
	}
	settle(func() bool { return check(acked, got()).lost == 0 },
		func() int { return len(final.received()) }, 3*time.Second, 15*time.Second)

	all := got()
	tl := check(acked, all)
	t.Logf("%d sessions (%d reconnects): sent=%d %s, %d in the final session (%.1fs)",
		len(sessions), cycles+1, nSent, tl, len(final.received()), time.Since(start).Seconds())
	if t.Failed() || tl.outOfOrder > 0 || tl.lost > 0 {
		t.Logf("what each session read from %s (seq ranges; * = from the offline store):", senderName(0))
		for i, c := range sessions {
			t.Logf("  session %2d: %s", i+1, seqRanges(c.received(), senderName(0)))
		}
	}
	if tl.lost > 0 {
		t.Errorf("%d acknowledged messages never arrived, e.g. %s", tl.lost, strings.Join(first(tl.lostIDs, 3), " "))
	}
	if tl.outOfOrder > 0 {
		t.Errorf("%d messages arrived after a later message of the same sender, e.g. %s", tl.outOfOrder, strings.Join(first(tl.disorder, 3), "; "))
	}
	if tl.dupSID > 0 {
		t.Errorf("%d messages delivered again with a new stanza-id (clients cannot dedupe them)", tl.dupSID)
	}
	if len(acked) < nSent*9/10 {
		t.Errorf("only %d of %d messages acked: the load did not run", len(acked), nSent)
	}
	if cycles < 5 {
		t.Errorf("only %d reconnects during the flow", cycles)
	}
}

// seqRanges summarizes the messages from sender in got as runs of
// consecutive sequence numbers, "*" marking runs from the offline store.
func seqRanges(got []recvd, sender string) string {
	var parts []string
	lo, hi, star := -1, -1, false
	flush := func() {
		if lo < 0 {
			return
		}
		p := fmt.Sprint(lo)
		if hi > lo {
			p += fmt.Sprintf("-%d", hi)
		}
		if star {
			p += "*"
		}
		parts = append(parts, p)
	}
	for _, m := range got {
		snd, _, seq, ok := parseID(m.id)
		if !ok || snd != sender {
			continue
		}
		if lo >= 0 && seq == hi+1 && m.delayed == star {
			hi = seq
			continue
		}
		flush()
		lo, hi, star = seq, seq, m.delayed
	}
	flush()
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
