package fault_test

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestNonReaderWithoutSMLosesNothing: a client without stream management
// logs in, then stops reading (a bot whose process hangs, a phone whose
// app froze) while 11,000 messages of 1.4 KB are sent to it — more than
// its session queue and its socket buffers hold. The server must cut it
// within a bounded time, without holding up the account: a new login of
// the same account gets the messages at once, and nothing the sender saw
// acknowledged is lost — neither what sat in the session queue nor what
// sat unsent in the socket's send queue when the client was cut.
func TestNonReaderWithoutSMLosesNothing(t *testing.T) { nonReader(t, false) }

// TestNonReaderWithSMLosesNothing: the same with a client that enabled
// stream management (with resumption) and then froze.
func TestNonReaderWithSMLosesNothing(t *testing.T) { nonReader(t, true) }

func nonReader(t *testing.T, sm bool) {
	const n, pad = 11000, 1400
	s := startServer(t, "[limits]\nwrite_timeout = \"10s\"\n")
	stuck := loginSM(t, s.c2s, "r01", "stuck", true, sm)
	stuck.stall()
	snd := login(t, s.c2s, "s01", "snd", false)
	msgs := make([]outMsg, n)
	for i := range msgs {
		msgs[i] = outMsg{to: "r01@localhost", id: msgID("s01", "r01", i+1), pad: pad}
	}
	start := time.Now()
	if err := snd.sendFlow(msgs, 1000, 0, 60*time.Second); err != nil {
		t.Fatalf("sending: %v (acked %d of %d)", err, len(snd.ackedIDs()), n)
	}
	acked := snd.ackedIDs()
	t.Logf("%d of %d acked in %v", len(acked), n, time.Since(start).Round(time.Millisecond))

	// The account's next login is served at once: the stuck session is
	// cut within the write timeout and what it held is stored.
	next := login(t, s.c2s, "r01", "next", true)
	loginAt := time.Now()
	if !next.waitFor(5*time.Second, func() bool { return len(next.msgs) > 0 }) {
		t.Fatalf("the account's next login got no message in 5 s (reader: %v)", next.err())
	}
	firstAfter := time.Since(loginAt)

	// What the stuck client has in its socket's receive buffer is its own:
	// let it read that now (the server has closed the connection).
	stuck.unstall()
	select {
	case <-stuck.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the stuck client's connection was never closed")
	}
	total := func() int { return len(stuck.received()) + len(next.received()) }
	settle(func() bool { return total() >= n }, total, 5*time.Second, 60*time.Second)
	// Cut by the write timeout, or (with SM, whose queue keeps every
	// unacknowledged stanza) by limits.max_queue first.
	if log, _ := os.ReadFile(s.logPath); !strings.Contains(string(log), "session cut: ") {
		t.Error("no log line says the client was cut for not reading")
	}

	got := sessions(stuck, next)
	tl := check(acked, got)
	t.Logf("non-reader: %s; stuck client read %d, next login %d (first after %v)",
		tl, len(stuck.received()), len(next.received()), firstAfter.Round(time.Millisecond))
	if tl.lost > 0 {
		// Stored but not drained, or gone? Once next has left, a new
		// login drains again.
		next.logout()
		probe := login(t, s.c2s, "r01", "probe", true)
		probe.waitFor(5*time.Second, func() bool { return len(probe.msgs) > 0 })
		after := check(acked, sessions(stuck, next, probe))
		t.Errorf("%d acknowledged messages lost, e.g. %v; a third login after the second left got %d messages (then lost: %d)",
			tl.lost, first(tl.lostIDs, 5), len(probe.received()), after.lost)
	}
	if tl.outOfOrder > 0 {
		t.Errorf("%d out of order, e.g. %v", tl.outOfOrder, first(tl.disorder, 5))
	}
}

// TestNonReaderWithoutSMStopKeepsAll: the same non-reading client, and the
// server is stopped (SIGTERM) while its session holds thousands of
// messages: they are stored before the store closes, and the account's
// first login after the restart gets every one the client did not read.
func TestNonReaderWithoutSMStopKeepsAll(t *testing.T) {
	const n, pad = 11000, 1400
	s := startServer(t, "")
	stuck := loginSM(t, s.c2s, "r01", "stuck", true, false)
	stuck.stall()
	snd := login(t, s.c2s, "s01", "snd", false)
	msgs := make([]outMsg, n)
	for i := range msgs {
		msgs[i] = outMsg{to: "r01@localhost", id: msgID("s01", "r01", i+1), pad: pad}
	}
	if err := snd.sendFlow(msgs, 1000, 0, 60*time.Second); err != nil {
		t.Fatalf("sending: %v (acked %d of %d)", err, len(snd.ackedIDs()), n)
	}
	acked := snd.ackedIDs()
	s.stop(syscall.SIGTERM)
	stuck.unstall()
	select {
	case <-stuck.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the stuck client's connection was never closed")
	}
	s.start()
	next := login(t, s.c2s, "r01", "next", true)
	total := func() int { return len(stuck.received()) + len(next.received()) }
	settle(func() bool { return total() >= n }, total, 5*time.Second, 60*time.Second)
	got := sessions(stuck, next)
	tl := check(acked, got)
	t.Logf("non-reader, server stopped: %s; stuck client read %d, after the restart %d",
		tl, len(stuck.received()), len(next.received()))
	if tl.lost > 0 {
		t.Errorf("%d acknowledged messages lost, e.g. %v", tl.lost, first(tl.lostIDs, 5))
	}
	if tl.outOfOrder > 0 {
		t.Errorf("%d out of order, e.g. %v", tl.outOfOrder, first(tl.disorder, 5))
	}
}

// sessions returns what each client read, in order, marked with its
// number (1, 2, ...).
func sessions(cs ...*client) []recvd {
	var got []recvd
	for i, c := range cs {
		for _, m := range c.received() {
			m.sess = i + 1
			got = append(got, m)
		}
	}
	return got
}
