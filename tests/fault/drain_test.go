package fault_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const drainN = 1000 // stored messages: ten pages of the server's drain

// storeForOffline has s01 send n messages to r01, who never logged in, and
// waits until the server acked them all (they are in the offline store).
func storeForOffline(t *testing.T, s *server, n int) []string {
	t.Helper()
	snd := login(t, s.c2s, senderName(0), "pc", true)
	flow := make([]outMsg, n)
	for k := range flow {
		flow[k] = outMsg{to: recipientName(0) + "@localhost", id: msgID(senderName(0), recipientName(0), k)}
	}
	if err := snd.sendFlow(flow, 100, 0, 20*time.Second); err != nil {
		t.Fatalf("storing %d messages: %v", n, err)
	}
	acked := snd.ackedIDs()
	if len(acked) != n || len(snd.bouncedIDs()) > 0 {
		t.Fatalf("%d of %d messages acked, %d bounced", len(acked), n, len(snd.bouncedIDs()))
	}
	return acked
}

// links the drain tests run over: bare loopback, and a mobile-like link
// (100 ms round trip through latencyProxy) where the client's answer to an
// <r/> reaches the server after the server has written more stanzas.
var links = []struct {
	name   string
	oneWay time.Duration
}{
	{"loopback", 0},
	{"rtt-100ms", 50 * time.Millisecond},
}

// clientAddr is where a client connects: the server, or a latency proxy
// in front of it.
func clientAddr(t *testing.T, s *server, oneWay time.Duration) string {
	if oneWay == 0 {
		return s.c2s
	}
	return latencyProxy(t, s.c2s, oneWay)
}

// TestDrainThousandStoredWhileOnline proves that a user with 1,000 stored
// messages gets all of them while staying online, with a client that acks
// only when asked and only what preceded the <r/> (stream order), over
// loopback and over a 100 ms round-trip link. The server drains the store
// a page (100) at a time and loads the next page on the client's ack; it
// must keep asking for acks until the store is empty. Each message must
// arrive once (by stanza-id), in order, within 20 s.
func TestDrainThousandStoredWhileOnline(t *testing.T) {
	for _, link := range links {
		t.Run(link.name, func(t *testing.T) {
			s := startServer(t, "")
			acked := storeForOffline(t, s, drainN)

			start := time.Now()
			rcv := login(t, clientAddr(t, s, link.oneWay), recipientName(0), "phone", true)
			settle(func() bool { return len(rcv.received()) >= drainN },
				func() int { return len(rcv.received()) }, 5*time.Second, 20*time.Second)
			took := time.Since(start)
			got := rcv.received()
			tl := check(acked, got)
			t.Logf("%s: stored=%d received=%d (%s) stalled=%d after %.1fs, connection %s",
				link.name, drainN, len(got), tl, tl.lost, took.Seconds(), connState(rcv))
			assertDrain(t, tl, len(got))
			if err := rcv.err(); err != nil {
				t.Errorf("the client's connection ended during the drain: %v", err)
			}
		})
	}
}

func connState(c *client) string {
	if err := c.err(); err != nil {
		return "closed: " + err.Error()
	}
	return "open"
}

func assertDrain(t *testing.T, tl tally, received int) {
	t.Helper()
	if tl.lost > 0 {
		t.Errorf("drain stalled: %d of %d stored messages never arrived while the client stayed online", tl.lost, drainN)
	}
	if tl.outOfOrder > 0 {
		t.Errorf("%d stored messages out of order, e.g. %s", tl.outOfOrder, strings.Join(first(tl.disorder, 5), "; "))
	}
	if dups := received - tl.delivered; dups > 0 {
		t.Errorf("%d duplicates (%d with the same stanza-id, %d with a new one)", dups, tl.redelivered, tl.dupSID)
	}
}

// TestDrainThousandStoredWhileOnlineSlixmpp is the drain test with a real
// client library: slixmpp (Debian's python3-slixmpp) with its XEP-0198
// plugin, which answers <r/> with the count of stanzas it handled so far,
// as most clients do. It logs in (SM with resumption, initial presence)
// and must receive all 1,000 stored messages while it stays online, over
// loopback and over a 100 ms round-trip link.
func TestDrainThousandStoredWhileOnlineSlixmpp(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import slixmpp").CombinedOutput(); err != nil {
		t.Skipf("slixmpp is not importable by %s (%v: %s): apt-get install -y python3-slixmpp", python, err, strings.TrimSpace(string(out)))
	}
	for _, link := range links {
		t.Run(link.name, func(t *testing.T) {
			s := startServer(t, "")
			acked := storeForOffline(t, s, drainN)

			script, _ := filepath.Abs(filepath.Join("testdata", "slix_drain.py"))
			cfg, _ := json.Marshal(map[string]any{
				"addr": clientAddr(t, s, link.oneWay), "jid": recipientName(0) + "@localhost/slix", "password": password,
				"expect": drainN, "quiet": 5, "timeout": 20,
			})
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, script, string(cfg))
			cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
			cmd.WaitDelay = 2 * time.Second
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var result struct {
				Event     string   `json:"event"`
				Messages  []recvJS `json:"messages"`
				Connected bool     `json:"connected"`
				Error     string   `json:"error"`
			}
			sc := bufio.NewScanner(out)
			sc.Buffer(make([]byte, 1<<20), 16<<20)
			for sc.Scan() {
				line := sc.Bytes()
				var ev struct {
					Event string `json:"event"`
				}
				if json.Unmarshal(line, &ev) == nil && ev.Event == "result" {
					json.Unmarshal(line, &result)
				}
			}
			werr := cmd.Wait()
			took := time.Since(start)
			if result.Event != "result" {
				t.Fatalf("slixmpp client gave no result (%v):\n%s", werr, lastLines(stderr.String(), 40))
			}
			if result.Error != "" {
				t.Fatalf("slixmpp client: %s\n%s", result.Error, lastLines(stderr.String(), 40))
			}
			got := make([]recvd, len(result.Messages))
			for i, m := range result.Messages {
				got[i] = recvd{id: m.ID, sid: m.SID, delayed: m.Delayed}
			}
			tl := check(acked, got)
			t.Logf("slixmpp %s: stored=%d received=%d (%s) stalled=%d after %.1fs, still connected at the end: %v",
				link.name, drainN, len(got), tl, tl.lost, took.Seconds(), result.Connected)
			assertDrain(t, tl, len(got))
			if !result.Connected {
				t.Errorf("slixmpp's connection ended during the drain")
			}
			if t.Failed() || os.Getenv("FAULT_VERBOSE") == "1" {
				t.Logf("slixmpp stderr (end):\n%s", lastLines(stderr.String(), 15))
			}
		})
	}
}

// recvJS is one message as the slixmpp script reports it.
type recvJS struct {
	ID      string `json:"id"`
	SID     string `json:"sid"`
	Delayed bool   `json:"delayed"`
}
