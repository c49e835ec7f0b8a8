package fault_test

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/xmlstream"
	"bluetick/internal/xmpptest"
)

const nsSID = "urn:xmpp:sid:0"

// client is a raw XMPP client that behaves like a careful mobile client:
// it enables XEP-0198 with resumption, sends initial presence, and answers
// every <r/> strictly in stream order — h is the number of stanzas it read
// before that <r/> — and never sends an unsolicited <a/>. It counts the
// stanzas it sends so that the server's <a h=.../> tells exactly which of
// its messages were acknowledged (the sender's ✓).
//
// Login and the other methods that fail the test run on the test
// goroutine; send, requestAck and the waits return errors and may run in
// other goroutines. A reader goroutine consumes the stream.
type client struct {
	user string
	jid  string
	x    *xmpptest.Client
	raw  net.Conn // the TCP connection under TLS, for abrupt closes
	smID string

	wmu sync.Mutex // serializes writes (the reader writes <a/>)

	mu      sync.Mutex
	inH     int      // stanzas read since <enabled/>
	out     []string // ids of the stanzas sent since <enable/>, "" for non-messages
	acked   int      // the server's last h
	sentH   int      // the last h this client sent in an <a/> (written)
	msgs    []recvd  // messages read, in stream order
	bounced []string // ids of our messages the server bounced
	selfPr  bool     // our own available presence came back
	readErr error
	done    chan struct{} // closed when the reader exits
	stalled chan struct{} // non-nil: the reader waits for it to close
}

// recvd is one message as the client read it.
type recvd struct {
	id      string // the sender's id: "<sender>:<recipient>:<seq>"
	sid     string // the server's stanza-id (XEP-0359)
	from    string
	delayed bool // XEP-0203 delay: came from the offline store
	sess    int  // which of the recipient's sessions read it (set by the test)
	n       int  // its number in the stream: the client's h once it has read it
}

// login connects to the c2s address addr (the server's, or a proxy's) as
// user with resource res, enables stream management with resumption and,
// if presence, sends initial presence and waits until it is reflected (the
// session is then available: it gets messages live and the offline drain).
func login(t *testing.T, addr, user, res string, presence bool) *client {
	t.Helper()
	return loginSM(t, addr, user, res, presence, true)
}

// loginSM is login with stream management on or, as many older clients
// and bots, off: then nothing is acknowledged either way.
func loginSM(t *testing.T, addr, user, res string, presence, sm bool) *client {
	t.Helper()
	x := xmpptest.Dial(t, addr, "localhost")
	c := &client{user: user, x: x, raw: x.Conn, done: make(chan struct{})}
	x.Login(user, password, res)
	c.jid = x.JID
	if sm {
		x.Send("<enable xmlns='urn:xmpp:sm:3' resume='true'/>")
		en := x.Expect("enabled")
		if en.Attr("resume") != "true" || en.Attr("id") == "" {
			t.Fatalf("%s: resumption not granted: %v", user, en)
		}
		c.smID = en.Attr("id")
	}
	go c.read()
	if presence {
		if err := c.send("<presence/>", ""); err != nil {
			t.Fatalf("%s: presence: %v", user, err)
		}
		if !c.waitFor(5*time.Second, func() bool { return c.selfPr }) {
			t.Fatalf("%s: own presence never reflected (reader: %v)", user, c.err())
		}
	}
	return c
}

// read is the reader goroutine.
func (c *client) read() {
	defer close(c.done)
	for {
		c.mu.Lock()
		gate := c.stalled
		c.mu.Unlock()
		if gate != nil {
			<-gate
		}
		el, err := c.x.Read(3 * time.Minute)
		if err != nil {
			c.mu.Lock()
			c.readErr = err
			c.mu.Unlock()
			return
		}
		switch {
		case el.Space == xmpptest.NSSM && el.Name == "r":
			c.mu.Lock()
			h := c.inH
			c.mu.Unlock()
			if c.write("<a xmlns='urn:xmpp:sm:3' h='"+strconv.Itoa(h)+"'/>") == nil {
				c.mu.Lock()
				c.sentH = h
				c.mu.Unlock()
			}
		case el.Space == xmpptest.NSSM && el.Name == "a":
			h, _ := strconv.Atoi(el.Attr("h"))
			c.mu.Lock()
			if h > c.acked {
				c.acked = h
			}
			c.mu.Unlock()
		case el.Name == "message" || el.Name == "presence" || el.Name == "iq":
			if el.Space != "" && el.Space != xmlstream.NSClient {
				continue
			}
			c.mu.Lock()
			c.inH++
			switch {
			case el.Name == "presence" && el.Attr("from") == c.jid && el.Attr("type") == "":
				c.selfPr = true
			case el.Name == "message" && el.Attr("type") == "error":
				c.bounced = append(c.bounced, el.Attr("id"))
			case el.Name == "message" && el.Child("", "body") != nil:
				m := recvd{id: el.Attr("id"), from: el.Attr("from"), delayed: el.Child("urn:xmpp:delay", "delay") != nil, n: c.inH}
				if sid := el.Child(nsSID, "stanza-id"); sid != nil {
					m.sid = sid.Attr("id")
				}
				c.msgs = append(c.msgs, m)
			}
			c.mu.Unlock()
		case el.Name == "error": // stream error; the stream ends next
		}
	}
}

// write sends raw XML under the write lock.
func (c *client) write(s string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.x.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.x.Conn.Write([]byte(s))
	return err
}

// send writes one stanza and counts it; id is recorded for messages so an
// ack can be mapped back to them.
func (c *client) send(stanza, id string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.mu.Lock()
	c.out = append(c.out, id)
	c.mu.Unlock()
	c.x.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.x.Conn.Write([]byte(stanza))
	return err
}

// outMsg is one message a sender sends: id is its id and the start of its
// body; pad bytes of filler follow in the body.
type outMsg struct {
	to, id string
	pad    int
}

// message sends a chat message.
func (c *client) message(m outMsg) error {
	body := m.id
	if m.pad > 0 {
		body += " " + strings.Repeat("x", m.pad)
	}
	return c.send("<message type='chat' to='"+m.to+"' id='"+m.id+"'><body>"+body+"</body></message>", m.id)
}

func (c *client) requestAck() error { return c.write("<r xmlns='urn:xmpp:sm:3'/>") }

// waitFor polls cond (called with mu held) until it holds, the reader
// exits, or timeout.
func (c *client) waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		c.mu.Lock()
		ok := cond()
		c.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-c.done:
			c.mu.Lock()
			ok := cond()
			c.mu.Unlock()
			return ok
		default:
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *client) err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.readErr
}

// ackedIDs returns the ids of the messages the server acknowledged and did
// not bounce.
func (c *client) ackedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	bounced := map[string]bool{}
	for _, id := range c.bounced {
		bounced[id] = true
	}
	var out []string
	for _, id := range c.out[:min(c.acked, len(c.out))] {
		if id != "" && !bounced[id] {
			out = append(out, id)
		}
	}
	return out
}

// ackedReceived returns the messages this client has acknowledged to the
// server (read, and covered by an <a/> it wrote): from then on the server
// may forget them.
func (c *client) ackedReceived() []recvd {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []recvd
	for _, m := range c.msgs {
		if m.n <= c.sentH {
			out = append(out, m)
		}
	}
	return out
}

// sentCount is the number of messages written.
func (c *client) sentCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, id := range c.out {
		if id != "" {
			n++
		}
	}
	return n
}

func (c *client) bouncedIDs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.bounced...)
}

// received returns a copy of the messages read so far.
func (c *client) received() []recvd {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]recvd(nil), c.msgs...)
}

// stall stops reading, as a phone on a congested link: the socket's
// receive buffer is shrunk, the reader stops after the element it is
// reading, and the server's writes back up into its session queue.
func (c *client) stall() {
	if tc, ok := c.raw.(*net.TCPConn); ok {
		tc.SetReadBuffer(4096)
	}
	c.mu.Lock()
	c.stalled = make(chan struct{})
	c.mu.Unlock()
}

// unstall lets the reader go on.
func (c *client) unstall() {
	c.mu.Lock()
	if c.stalled != nil {
		close(c.stalled)
		c.stalled = nil
	}
	c.mu.Unlock()
}

// dropConnection closes the TCP connection abruptly: no </stream:stream>,
// no TLS close_notify. The server sees the connection fail and, as SM
// resumption is on, keeps the session for resumption (hibernated).
func (c *client) dropConnection() {
	c.raw.Close()
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
}

// logout sends unavailable presence and closes the stream cleanly, then
// waits for the server to close its side.
func (c *client) logout() {
	c.write("<presence type='unavailable'/></stream:stream>")
	select {
	case <-c.done:
	case <-time.After(5 * time.Second):
	}
	c.raw.Close()
}

// sendFlow sends msgs in order with at most window
// unacknowledged, asking for an ack every 10 messages and at the end, and
// waits up to ackWait for the last ack. It returns the first error (a
// write failure or an ack that never came); what was acked so far is in
// ackedIDs either way. gap is slept between messages.
func (c *client) sendFlow(msgs []outMsg, window int, gap, ackWait time.Duration) error {
	for i, m := range msgs {
		if !c.waitFor(ackWait, func() bool { return len(c.out)-c.acked < window }) {
			return fmt.Errorf("%s: no ack for %d s with %d unacknowledged", c.user, int(ackWait.Seconds()), window)
		}
		if err := c.message(m); err != nil {
			return fmt.Errorf("%s: send: %w", c.user, err)
		}
		if (i+1)%10 == 0 || i == len(msgs)-1 {
			if err := c.requestAck(); err != nil {
				return fmt.Errorf("%s: <r/>: %w", c.user, err)
			}
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	if !c.waitFor(ackWait, func() bool { return c.acked >= len(c.out) }) {
		return fmt.Errorf("%s: last ack missing after %v", c.user, ackWait)
	}
	return nil
}

// msgID names message seq from sender to recipient.
func msgID(sender, recipient string, seq int) string {
	return fmt.Sprintf("%s:%s:%04d", sender, recipient, seq)
}

func parseID(id string) (sender, recipient string, seq int, ok bool) {
	p := strings.Split(id, ":")
	if len(p) != 3 {
		return "", "", 0, false
	}
	n, err := strconv.Atoi(p[2])
	return p[0], p[1], n, err == nil
}

// tally checks what one recipient got (over all its sessions, arrival
// order) against what senders had acknowledged for it.
type tally struct {
	acked, delivered, lost, outOfOrder, dupSID, redelivered int
	lostIDs, disorder                                       []string
}

// check dedupes the received messages by message id (counting redeliveries
// with the same stanza-id, and copies with different stanza-ids), then
// reports acked messages never delivered and, per sender, messages that
// arrived after a later one from the same sender.
func check(acked []string, got []recvd) tally {
	var t tally
	t.acked = len(acked)
	first := map[string]string{} // id -> first stanza-id
	maxSeq := map[string]int{}   // sender -> highest seq so far
	for _, m := range got {
		if sid, seen := first[m.id]; seen {
			if sid == m.sid {
				t.redelivered++
			} else {
				t.dupSID++
			}
			continue
		}
		first[m.id] = m.sid
		t.delivered++
		sender, _, seq, ok := parseID(m.id)
		if !ok {
			continue
		}
		if prev, seen := maxSeq[sender]; seen && seq < prev {
			t.outOfOrder++
			if len(t.disorder) < 5 {
				how := "live"
				if m.delayed {
					how = "from the offline store"
				}
				t.disorder = append(t.disorder, fmt.Sprintf("%s (%s, session %d) after seq %d", m.id, how, m.sess, prev))
			}
		} else {
			maxSeq[sender] = seq
		}
	}
	for _, id := range acked {
		if _, ok := first[id]; !ok {
			t.lost++
			if len(t.lostIDs) < 5 {
				t.lostIDs = append(t.lostIDs, id)
			}
		}
	}
	return t
}

func (t *tally) add(o tally) {
	t.acked += o.acked
	t.delivered += o.delivered
	t.lost += o.lost
	t.outOfOrder += o.outOfOrder
	t.dupSID += o.dupSID
	t.redelivered += o.redelivered
	t.lostIDs = append(t.lostIDs, o.lostIDs...)
	t.disorder = append(t.disorder, o.disorder...)
}

func (t tally) String() string {
	return fmt.Sprintf("acked=%d delivered=%d lost=%d out-of-order=%d redelivered(same stanza-id)=%d copies(new stanza-id)=%d",
		t.acked, t.delivered, t.lost, t.outOfOrder, t.redelivered, t.dupSID)
}

// settle waits until done holds, or progress (a count of messages
// received) has not moved for quiet, or max has passed; it reports whether
// done held.
func settle(done func() bool, progress func() int, quiet, max time.Duration) bool {
	deadline := time.Now().Add(max)
	last, lastChange := progress(), time.Now()
	for {
		if done() {
			return true
		}
		now := time.Now()
		if p := progress(); p != last {
			last, lastChange = p, now
		}
		if now.After(deadline) || now.Sub(lastChange) > quiet {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// first returns at most n elements of l.
func first(l []string, n int) []string {
	if len(l) > n {
		return l[:n]
	}
	return l
}
