package fault_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"bluetick/internal/natstest"
)

// TestBackupUnderLoadKeepsAcked takes `bluetick backup` of a running
// server in the middle of a chat load, restores it with `bluetick restore`
// into a fresh data directory, starts a server there and checks that every
// message whose ✓ (XEP-0198 ack) reached its sender before the backup
// started is there: delivered by the restored server (from its offline
// store), or acknowledged by its recipient's client before the backup
// ended (the server may then forget it). Recipients are online (acking),
// stalled (messages held in the journal's log, unacked), hibernated (their
// sessions end during the load: messages move from the log to the
// database while the backup runs) and offline (messages in the database).
// A restore into the running server's data directory is refused.
func TestBackupUnderLoadKeepsAcked(t *testing.T) {
	const perPair = 60 // messages from each sender to each recipient: 10 x 20 x 60 = 12,000, over 2.4 s at least
	// Hibernated sessions end 2 s after their connection drops, in the
	// middle of the load: the backup starts just before, so their logged
	// messages move to the database while it runs.
	const resume = 2 * time.Second
	cfg := fmt.Sprintf("[stream]\nresume_timeout = %q\n", resume.String())
	s := startServer(t, cfg)

	state := make([]string, nRecipients)
	before := make([]*client, nRecipients)
	for i := range state {
		state[i] = recipientStates[i%len(recipientStates)]
		if state[i] != stNever {
			before[i] = login(t, s.c2s, recipientName(i), "phone", true)
		}
	}
	var dropped time.Time
	for i, c := range before {
		switch state[i] {
		case stHibernated:
			c.dropConnection()
			dropped = time.Now()
		case stLoggedOut:
			c.logout()
		case stStalled:
			c.stall()
		}
	}
	time.Sleep(300 * time.Millisecond)

	senders := make([]*client, nSenders)
	for i := range senders {
		senders[i] = login(t, s.c2s, senderName(i), "pc", true)
	}
	var wg sync.WaitGroup
	errs := make([]error, nSenders)
	loadStart := time.Now()
	for i, c := range senders {
		var flow []outMsg
		for k := 0; k < perPair; k++ {
			for r := 0; r < nRecipients; r++ {
				m := outMsg{to: recipientName(r) + "@localhost", id: msgID(senderName(i), recipientName(r), k)}
				if state[r] == stStalled {
					m.pad = 2 << 10
				}
				flow = append(flow, m)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.sendFlow(flow, 50, 2*time.Millisecond, 10*time.Second)
		}()
	}

	// Mid-load: what was acknowledged, then the backup.
	time.Sleep(time.Until(dropped.Add(resume - 100*time.Millisecond)))
	ackedFor := map[string][]string{}
	nAckedBefore := 0
	for _, c := range senders {
		for _, id := range c.ackedIDs() {
			_, r, _, _ := parseID(id)
			ackedFor[r] = append(ackedFor[r], id)
			nAckedBefore++
		}
	}
	file := filepath.Join(t.TempDir(), "bluetick-backup.tar.gz")
	t0 := time.Now()
	out, err := exec.Command(binary, "backup", file, "--data", s.dir).CombinedOutput()
	took := time.Since(t0)
	if err != nil {
		t.Fatalf("bluetick backup: %v\n%s", err, out)
	}
	// What recipients' clients had acknowledged when the backup ended.
	delivered := make([][]recvd, nRecipients)
	for i, c := range before {
		if c != nil {
			delivered[i] = c.ackedReceived()
		}
	}
	t.Logf("backup %.1fs into the load, %v:\n%s", t0.Sub(loadStart).Seconds(), took.Round(time.Millisecond), strings.TrimSpace(string(out)))
	if out, err := exec.Command(binary, "restore", file, "--data", s.dir).CombinedOutput(); err == nil || !strings.Contains(string(out), "stop the server first") {
		t.Errorf("restore into the running server's data directory: %v\n%s", err, out)
	}
	wg.Wait()
	nSent, nAcked := 0, 0
	for i, c := range senders {
		if errs[i] != nil {
			t.Errorf("sender: %v", errs[i])
		}
		nSent += c.sentCount()
		nAcked += len(c.ackedIDs())
		if b := c.bouncedIDs(); len(b) > 0 {
			t.Errorf("%s: %d messages bounced, e.g. %s", c.user, len(b), b[0])
		}
	}
	t.Logf("load: sent=%d acked=%d, of them acked before the backup started: %d (%.1fs)", nSent, nAcked, nAckedBefore, time.Since(loadStart).Seconds())
	if nAckedBefore < 500 || nAcked-nAckedBefore < 500 {
		t.Errorf("the backup was not taken mid-load: %d messages acked before it, %d after", nAckedBefore, nAcked-nAckedBefore)
	}
	s.stop(syscall.SIGTERM)

	// Restore into a fresh data directory and start a server there.
	fresh := filepath.Join(t.TempDir(), "restored")
	out, err = exec.Command(binary, "restore", file, "--data", fresh).CombinedOutput()
	if err != nil {
		t.Fatalf("bluetick restore: %v\n%s", err, out)
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
	if err := os.WriteFile(filepath.Join(fresh, "bluetick.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := &server{t: t, dir: fresh, config: filepath.Join(fresh, "bluetick.toml"),
		c2s:  fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t)),
		http: fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))}
	t.Cleanup(func() {
		r.stop(syscall.SIGTERM)
		if t.Failed() {
			b, _ := os.ReadFile(r.logFile(1))
			t.Logf("=== end of the restored server's log ===\n%s", lastLines(string(b), 25))
		}
	})
	r.start()

	after := make([]*client, nRecipients)
	for i := range after {
		after[i] = login(t, r.c2s, recipientName(i), "restored", true)
	}
	got := func(i int) []recvd { return append(append([]recvd(nil), delivered[i]...), after[i].received()...) }
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
	settle(complete, progress, 3*time.Second, 20*time.Second)
	var total tally
	fromBackup, ackedFirst := 0, 0
	for i := range after {
		ackedFirst += len(delivered[i])
		tl := check(ackedFor[recipientName(i)], got(i))
		total.add(tl)
		fromBackup += len(after[i].received())
		if tl.lost > 0 {
			t.Errorf("%s (%s): %d messages acknowledged before the backup are missing after the restore, e.g. %s",
				recipientName(i), state[i], tl.lost, strings.Join(first(tl.lostIDs, 5), " "))
		}
	}
	t.Logf("checked %d messages acknowledged to their senders before the backup; recipients acked %d before it ended, the restored server delivered %d; %s",
		nAckedBefore, ackedFirst, fromBackup, total)
}

// A second server on a data directory in use exits at once, naming the
// process that holds it: two servers would share one journal log.
func TestSecondServerOnDataDirRefused(t *testing.T) {
	s := startServer(t, "")
	cmd := exec.Command(binary, "serve", "--data", s.dir, "--c2s", fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t)),
		"--c2s-tls", "off", "--http", "off")
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatal("a second server on the same data directory kept running")
	}
	if err == nil || !strings.Contains(string(out), fmt.Sprintf("in use by process %d", s.cmd.Process.Pid)) {
		t.Fatalf("second server: %v\n%s", err, out)
	}
}
