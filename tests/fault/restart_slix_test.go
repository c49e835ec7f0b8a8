package fault_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestSIGTERMKeepsAckedSlixmpp is TestSIGTERMKeepsAcked with a client
// library nobody here wrote: slixmpp (Debian's python3-slixmpp) senders
// with its XEP-0198 plugin, whose 'stanza_acked' event tells which
// messages the server acknowledged (the sender's ✓). The server gets
// SIGTERM while the senders are sending and getting acks, restarts on the
// same data dir, and every acknowledged message must then reach its
// recipient — online (a slixmpp client), hibernated (a raw client whose
// TCP connection dropped) or offline (never logged in) — in per-sender
// order.
func TestSIGTERMKeepsAckedSlixmpp(t *testing.T) { testRestartKeepsAckedSlixmpp(t, syscall.SIGTERM) }

// TestKill9KeepsAckedSlixmpp is TestSIGTERMKeepsAckedSlixmpp with the
// server killed by SIGKILL.
func TestKill9KeepsAckedSlixmpp(t *testing.T) { testRestartKeepsAckedSlixmpp(t, syscall.SIGKILL) }

const slixPython = "/usr/bin/python3"

// Recipient states in the slixmpp restart tests.
var slixRecipientStates = []string{stOnline, stHibernated, stNever}

func testRestartKeepsAckedSlixmpp(t *testing.T, sig syscall.Signal) {
	if out, err := exec.Command(slixPython, "-c", "import slixmpp").CombinedOutput(); err != nil {
		t.Skipf("slixmpp is not importable by %s (%v: %s): apt-get install -y python3-slixmpp", slixPython, err, strings.TrimSpace(string(out)))
	}
	const (
		nSlixSenders    = 3
		nSlixRecipients = 6   // two in each state
		perSender       = 100 // messages, round robin over the recipients
	)
	start := time.Now()
	s := startServer(t, "")

	state := make([]string, nSlixRecipients)
	var online, rcpts []string
	for i := range state {
		state[i] = slixRecipientStates[i%len(slixRecipientStates)]
		rcpts = append(rcpts, recipientName(i)+"@localhost")
		switch state[i] {
		case stOnline:
			online = append(online, recipientName(i))
		case stHibernated:
			login(t, s.c2s, recipientName(i), "phone", true).dropConnection()
		}
	}
	time.Sleep(300 * time.Millisecond) // the server notices the dropped connections

	// Online recipients: slixmpp clients receiving until the server goes.
	var onClients []map[string]any
	for _, r := range online {
		onClients = append(onClients, map[string]any{"jid": r + "@localhost/slix"})
	}
	before := startSlix(t, map[string]any{"mode": "recv", "addr": s.c2s, "password": password, "clients": onClients, "timeout": 25})
	before.await(t, 15*time.Second, "ready")

	// Senders: slixmpp clients sending perSender messages each, 5 ms apart;
	// the server gets sig once half of all the messages are acked.
	var sndClients []map[string]any
	for i := 0; i < nSlixSenders; i++ {
		sndClients = append(sndClients, map[string]any{"jid": senderName(i) + "@localhost/slix", "to": rcpts})
	}
	snd := startSlix(t, map[string]any{"mode": "send", "addr": s.c2s, "password": password, "clients": sndClients,
		"n": perSender, "gap": 0.005, "timeout": 20})
	snd.await(t, 15*time.Second, "ready")
	threshold := nSlixSenders * perSender / 2
	ev := snd.awaitFunc(t, 15*time.Second, "acks", func(ev slixEvent) bool {
		return ev.Event == "acked" && ev.N >= threshold || ev.Event == "result"
	})
	t.Logf("%d messages acked when the server gets %v (%.1fs in)", ev.N, sig, time.Since(start).Seconds())
	s.stop(sig)
	sndRes := snd.result(t, 15*time.Second)
	beforeRes := before.result(t, 15*time.Second)

	ackedFor := map[string][]string{} // recipient -> acked ids, per sender in order
	nSent, nAcked, nBounced := 0, 0, 0
	for _, c := range sndRes.Clients {
		nSent += len(c.Sent)
		nBounced += len(c.Bounced)
		for _, id := range c.Acked {
			_, r, _, ok := parseID(id)
			if !ok {
				t.Errorf("%s: acked id %q is not one of ours", c.JID, id)
				continue
			}
			ackedFor[r] = append(ackedFor[r], id)
			nAcked++
		}
	}
	if nBounced > 0 {
		t.Errorf("%d messages bounced by the server", nBounced)
	}
	t.Logf("sent=%d acked=%d before %v", nSent, nAcked, sig)

	s.start()

	// Every recipient logs in afresh with slixmpp and collects until it has
	// every message acked for it, or nothing came for 3 s.
	var afterClients []map[string]any
	for i := range state {
		r := recipientName(i)
		afterClients = append(afterClients, map[string]any{"jid": r + "@localhost/fresh", "expect": append([]string{}, ackedFor[r]...)})
	}
	after := startSlix(t, map[string]any{"mode": "recv", "addr": s.c2s, "password": password, "clients": afterClients,
		"quiet": 3, "timeout": 15})
	afterRes := after.result(t, 30*time.Second)

	live := 0
	for _, c := range beforeRes.Clients {
		live += len(c.Messages)
	}
	t.Logf("online recipients received %d messages live before the %v", live, sig)
	if live == 0 {
		t.Errorf("the online slixmpp recipients received nothing before the %v: they were not online", sig)
	}

	got := map[string][]recvd{}
	for sess, res := range []slixResult{beforeRes, afterRes} {
		for _, c := range res.Clients {
			r := strings.SplitN(c.JID, "@", 2)[0]
			for _, m := range c.Messages {
				got[r] = append(got[r], recvd{id: m.ID, sid: m.SID, delayed: m.Delayed, sess: sess + 1})
			}
		}
	}
	byState := map[string]*tally{}
	var total tally
	for i := range state {
		r := recipientName(i)
		tl := check(ackedFor[r], got[r])
		if byState[state[i]] == nil {
			byState[state[i]] = &tally{}
		}
		byState[state[i]].add(tl)
		total.add(tl)
	}
	for _, st := range slixRecipientStates {
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
	if nAcked < threshold {
		t.Errorf("only %d of %d messages acked before the %v: the load did not run", nAcked, nSlixSenders*perSender, sig)
	}
	if t.Failed() || os.Getenv("FAULT_VERBOSE") == "1" {
		for name, p := range map[string]*slixProc{"online recipients": before, "senders": snd, "fresh recipients": after} {
			t.Logf("slixmpp %s stderr (end):\n%s", name, lastLines(p.stderr.String(), 15))
		}
	}
}

// slixEvent is one JSON line of testdata/slix_restart.py.
type slixEvent struct {
	Event string `json:"event"`
	N     int    `json:"n"`
}

type slixResult struct {
	Event   string `json:"event"`
	Clients []struct {
		JID       string   `json:"jid"`
		Sent      []string `json:"sent"`
		Acked     []string `json:"acked"`
		Bounced   []string `json:"bounced"`
		Messages  []recvJS `json:"messages"`
		Connected bool     `json:"connected"`
	} `json:"clients"`
	Error string `json:"error"`
}

// slixProc is one run of testdata/slix_restart.py.
type slixProc struct {
	cmd    *exec.Cmd
	events chan slixEvent
	res    slixResult
	gotRes bool
	exited chan struct{} // closed after the last line and Wait
	werr   error
	stderr *lockedBuilder
}

// startSlix starts slix_restart.py with cfg; it is killed at cleanup if it
// is still running.
func startSlix(t *testing.T, cfg map[string]any) *slixProc {
	t.Helper()
	script, _ := filepath.Abs(filepath.Join("testdata", "slix_restart.py"))
	arg, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	p := &slixProc{events: make(chan slixEvent, 4096), exited: make(chan struct{}), stderr: &lockedBuilder{}}
	p.cmd = exec.CommandContext(ctx, slixPython, script, string(arg))
	p.cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	p.cmd.WaitDelay = 2 * time.Second
	p.cmd.Stderr = p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		<-p.exited
	})
	go func() {
		defer close(p.exited)
		defer close(p.events)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			line := sc.Bytes()
			var ev slixEvent
			if json.Unmarshal(line, &ev) != nil {
				continue
			}
			if ev.Event == "result" {
				if json.Unmarshal(line, &p.res) == nil {
					p.gotRes = true
				}
			}
			select {
			case p.events <- ev:
			default: // nobody is waiting for progress any more
			}
		}
		p.werr = p.cmd.Wait()
	}()
	return p
}

// awaitFunc waits up to timeout for an event that pred accepts.
func (p *slixProc) awaitFunc(t *testing.T, timeout time.Duration, what string, pred func(slixEvent) bool) slixEvent {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev, ok := <-p.events:
			if !ok {
				<-p.exited
				t.Fatalf("slixmpp client exited waiting for %s (%v, error %q):\n%s", what, p.werr, p.res.Error, lastLines(p.stderr.String(), 40))
			}
			if pred(ev) {
				return ev
			}
		case <-deadline:
			t.Fatalf("slixmpp client: no %s within %v:\n%s", what, timeout, lastLines(p.stderr.String(), 40))
		}
	}
}

// await waits for an event by name.
func (p *slixProc) await(t *testing.T, timeout time.Duration, event string) {
	t.Helper()
	p.awaitFunc(t, timeout, event, func(ev slixEvent) bool { return ev.Event == event })
}

// result waits for the process to exit and returns its result.
func (p *slixProc) result(t *testing.T, timeout time.Duration) slixResult {
	t.Helper()
	go func() {
		for range p.events {
		}
	}()
	select {
	case <-p.exited:
	case <-time.After(timeout):
		t.Fatalf("slixmpp client did not finish within %v:\n%s", timeout, lastLines(p.stderr.String(), 40))
	}
	if !p.gotRes {
		t.Fatalf("slixmpp client gave no result (%v):\n%s", p.werr, lastLines(p.stderr.String(), 40))
	}
	if p.res.Error != "" {
		t.Fatalf("slixmpp client: %s\n%s", p.res.Error, lastLines(p.stderr.String(), 40))
	}
	return p.res
}

// lockedBuilder is a strings.Builder safe for a writer and readers.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
