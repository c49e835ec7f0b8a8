package loadgen

import (
	"strconv"
	"strings"
	"sync"
	"time"
)

// Wake-up latency (issue 19): an idle session gives up its goroutine and
// buffers (it is parked), so the first message to it pays for waking it.
// wake measures that against a session that is not parked: to each of
// Config.Wake held sessions, one sender sends a message while the
// receiver has been idle for the whole hold (parked), and a second one as
// soon as the first arrived (the receiver's stream is running then). The
// latency is send → receive on this machine's clock; the sender keeps
// sending, so it is never parked itself, and it wakes first with a ping.

// wakeID is the id of a wake-up message: wake<round>-<receiver index>.
func wakeID(round, i int) string { return "wake" + strconv.Itoa(round) + "-" + strconv.Itoa(i) }

// wakeWaiter passes the arrival time of each wake-up message to its sender.
type wakeWaiter struct {
	mu sync.Mutex
	ch map[string]chan time.Time
}

func (ww *wakeWaiter) expect(id string) chan time.Time {
	ch := make(chan time.Time, 1)
	ww.mu.Lock()
	ww.ch[id] = ch
	ww.mu.Unlock()
	return ch
}

// handle is the receivers' handler: it notes a wake-up message's arrival.
func (ww *wakeWaiter) handle(_ *Conn, e *Elem) {
	now := time.Now()
	id := e.Attr("id")
	if e.Local() != "message" && !(e.Local() == "iq" && strings.HasPrefix(id, "wakeping")) {
		return
	}
	if !strings.HasPrefix(id, "wake") {
		return
	}
	ww.mu.Lock()
	ch := ww.ch[id]
	delete(ww.ch, id)
	ww.mu.Unlock()
	if ch != nil {
		ch <- now
	}
}

// wake runs the measurement over conns (nil entries skipped); conns[0]
// sends. Latencies go to p.WakeParked and p.WakeActive (nanoseconds).
func (w *worker) wake(conns []*Conn, ww *wakeWaiter) {
	var live []*Conn
	for _, c := range conns {
		if c != nil {
			live = append(live, c)
		}
	}
	if len(live) < 2 || w.cfg.Wake <= 0 {
		return
	}
	sender, rcv := live[0], live[1:]
	if len(rcv) > w.cfg.Wake {
		// Spread over the held sessions, not only the first logged in.
		step := len(rcv) / w.cfg.Wake
		picked := make([]*Conn, 0, w.cfg.Wake)
		for i := 0; i < w.cfg.Wake; i++ {
			picked = append(picked, rcv[i*step])
		}
		rcv = picked
	}
	const wait = 5 * time.Second
	// Wake the sender: its first stanza would otherwise be slower too.
	ch := ww.expect("wakeping")
	if sender.Ping("wakeping") != nil {
		return
	}
	select {
	case <-ch:
	case <-time.After(wait):
		w.p.note("wake: the sender's ping got no answer in 5 s")
		return
	}
	var parked, active []int64
	lost := 0
	send := func(round, i int, to *Conn) (int64, bool) {
		id := wakeID(round, i)
		ch := ww.expect(id)
		t0 := time.Now()
		if err := sender.Send("<message type='chat' id='" + id + "' to='" + escape(to.JID) + "'><body>wake</body></message>"); err != nil {
			return 0, false
		}
		select {
		case t := <-ch:
			return t.Sub(t0).Nanoseconds(), true
		case <-time.After(wait):
			return 0, false
		case <-w.ctx.Done():
			return 0, false
		}
	}
	for i, r := range rcv {
		if w.ctx.Err() != nil {
			break
		}
		d, ok := send(1, i, r)
		if !ok {
			lost++
			continue
		}
		parked = append(parked, d)
		if d, ok = send(2, i, r); ok {
			active = append(active, d)
		} else {
			lost++
		}
	}
	w.p.mu.Lock()
	w.p.WakeParked = append(w.p.WakeParked, parked...)
	w.p.WakeActive = append(w.p.WakeActive, active...)
	w.p.mu.Unlock()
	if lost > 0 {
		w.p.note("wake: %d wake-up messages did not arrive within 5 s", lost)
	}
}
