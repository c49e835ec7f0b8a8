package loadgen

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// sleepUntil waits until t or ctx ends; it reports whether t was reached.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// serveAll starts a reader per connection; a connection that ends before
// closeAll counts as dropped.
func (w *worker) serveAll(conns []*Conn, h func(*Conn, *Elem)) *sync.WaitGroup {
	var wg sync.WaitGroup
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := c.Serve(func(e *Elem) {
				if h != nil {
					h(c, e)
				}
			})
			if err != nil && w.ctx.Err() == nil {
				atomic.AddInt64(&w.p.Dropped, 1)
				w.p.mu.Lock()
				w.p.Errors["dropped: "+Class(err)]++
				w.p.mu.Unlock()
			}
		}()
	}
	return &wg
}

// conns: open C sessions, hold them idle, and let the parent sample the
// server's memory before, after login and after the hold.
func (w *worker) conns() error {
	var idx []int
	for i := 0; i < w.cfg.Conns; i++ {
		if w.mine(i) {
			idx = append(idx, i)
		}
	}
	if _, err := w.barrier("before"); err != nil {
		return err
	}
	w.measureStart()
	conns := w.loginMany(w.ctx, idx, LoginOptions{Presence: true}, "login")
	ww := &wakeWaiter{ch: map[string]chan time.Time{}}
	wg := w.serveAll(conns, ww.handle)
	if _, err := w.barrier("connected"); err != nil {
		closeAll(conns)
		return err
	}
	sleepUntil(w.ctx, time.Now().Add(w.cfg.Hold))
	_, err := w.barrier("held")
	w.measureEnd()
	if w.cfg.Wake > 0 && err == nil {
		// One process measures; the others hold their sessions meanwhile.
		if w.cfg.Shard == 0 {
			w.wake(conns, ww)
		}
		_, err = w.barrier("woken")
	}
	closeAll(conns)
	wg.Wait()
	return err
}

// storm: C users log in spread evenly over the window, all processes
// starting at the time the parent chose.
func (w *worker) storm() error {
	t0, err := w.barrier("start")
	if err != nil {
		return err
	}
	w.measureStart()
	n := w.cfg.Storm
	conns := make([]*Conn, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		if !w.mine(i) {
			continue
		}
		at := t0.Add(time.Duration(int64(w.cfg.StormWindow) * int64(i) / int64(n)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !sleepUntil(w.ctx, at) {
				return
			}
			c, err := w.login(w.ctx, w.cfg.User(i), LoginOptions{Presence: true})
			if err == nil {
				conns[i] = c
				w.p.span("storm", t0, time.Now())
			}
		}()
	}
	wg.Wait()
	rwg := w.serveAll(conns, nil)
	_, err = w.barrier("end")
	w.measureEnd()
	closeAll(conns)
	rwg.Wait()
	return err
}

// msgID builds a message id carrying the send time: <prefix><unixnano>.<seq>.
func msgID(prefix byte, t time.Time, seq int) string {
	b := make([]byte, 0, 32)
	b = append(b, prefix)
	b = strconv.AppendInt(b, t.UnixNano(), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(seq), 10)
	return string(b)
}

// idTime extracts the send time from a msgID with the given prefix.
func idTime(id string, prefix byte) (int64, bool) {
	if len(id) < 2 || id[0] != prefix {
		return 0, false
	}
	dot := strings.IndexByte(id, '.')
	if dot < 0 {
		return 0, false
	}
	n, err := strconv.ParseInt(id[1:dot], 10, 64)
	return n, err == nil
}

func (w *worker) body() string {
	n := w.cfg.BodySize
	if n <= 0 {
		n = 1
	}
	return strings.Repeat("x", n)
}

// receipt answers a XEP-0184 request.
func receipt(c *Conn, e *Elem) {
	id := e.Attr("id")
	c.SendStanza("<message to='"+escape(e.Attr("from"))+"' id='r"+escape(id)+"'><received xmlns='"+nsReceipts+"' id='"+escape(id)+"'/></message>", false)
}

// maxTime keeps the latest unix-nano time seen.
func maxTime(a *atomic.Int64, t int64) {
	for {
		cur := a.Load()
		if t <= cur || a.CompareAndSwap(cur, t) {
			return
		}
	}
}

// chatUser is one side of a chatting pair.
type chatUser struct {
	c      *Conn
	peer   string
	window chan struct{}
	lat    []int64 // reader goroutine only
	rtt    []int64
}

// chat: P online pairs, each side sending M messages with receipt requests
// to the other, at most Window unreceipted at a time.
func (w *worker) chat() error {
	var pairs []int
	for p := 0; p < w.cfg.Pairs; p++ {
		if w.mine(p) {
			pairs = append(pairs, p)
		}
	}
	var idx []int
	for _, p := range pairs {
		idx = append(idx, 2*p, 2*p+1)
	}
	conns := w.loginMany(w.ctx, idx, LoginOptions{Presence: true}, "login")
	users := map[*Conn]*chatUser{}
	var list []*chatUser
	for k, c := range conns {
		if c == nil {
			continue
		}
		peer := idx[k] ^ 1
		u := &chatUser{c: c, peer: bareJID(w.cfg.User(peer), w.cfg.Opt.Domain), window: make(chan struct{}, w.cfg.Window)}
		users[c] = u
		list = append(list, u)
	}
	// Only pairs with both sides online take part.
	online := map[string]bool{}
	for _, u := range list {
		online[bareJID(u.c.User, w.cfg.Opt.Domain)] = true
	}
	var senders []*chatUser
	for _, u := range list {
		if online[u.peer] {
			senders = append(senders, u)
		}
	}
	expected := int64(len(senders) * w.cfg.Messages)
	w.p.Expected = expected
	var recv, rcpt atomic.Int64
	var last atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	check := func() {
		if recv.Load() >= expected && rcpt.Load() >= expected {
			once.Do(func() { close(done) })
		}
	}
	msgs := w.p.series("messages", w.cfg)
	h := func(c *Conn, e *Elem) {
		if e.Local() != "message" {
			return
		}
		u := users[c]
		if e.Attr("type") == "error" {
			atomic.AddInt64(&w.p.MsgErrors, 1)
			return
		}
		now := time.Now()
		if r := e.Child("received", nsReceipts); r != nil {
			if t, ok := idTime(r.Attr("id"), 'c'); ok {
				u.rtt = append(u.rtt, now.UnixNano()-t)
				select {
				case <-u.window:
				default:
				}
				rcpt.Add(1)
				maxTime(&last, now.UnixNano())
				check()
			}
			return
		}
		t, ok := idTime(e.Attr("id"), 'c')
		if !ok || e.Child("body", "") == nil {
			return
		}
		if e.Child("request", nsReceipts) != nil {
			receipt(c, e)
		}
		u.lat = append(u.lat, now.UnixNano()-t)
		msgs.add(now)
		recv.Add(1)
		maxTime(&last, now.UnixNano())
		check()
	}
	rwg := w.serveAll(conns, h)
	check()
	t0, err := w.barrier("start")
	if err != nil {
		closeAll(conns)
		return err
	}
	w.measureStart()
	body := "<body>" + w.body() + "</body><request xmlns='" + nsReceipts + "'/></message>"
	var swg sync.WaitGroup
	var sent atomic.Int64
	// With --rate, each of the 2×pairs senders of the whole run (all
	// processes) sends at its share of the rate, staggered.
	var interval time.Duration
	if w.cfg.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(2*w.cfg.Pairs) / float64(w.cfg.Rate))
	}
	for i, u := range senders {
		swg.Add(1)
		go func() {
			defer swg.Done()
			start := t0.Add(interval * time.Duration(i) / time.Duration(max(len(senders), 1)))
			if !sleepUntil(w.ctx, start) {
				return
			}
			head := "<message to='" + escape(u.peer) + "' type='chat' id='"
			for k := 0; k < w.cfg.Messages; k++ {
				if interval > 0 && !sleepUntil(w.ctx, start.Add(time.Duration(k)*interval)) {
					return
				}
				select {
				case u.window <- struct{}{}:
				case <-w.ctx.Done():
					return
				}
				if err := u.c.SendStanza(head+msgID('c', time.Now(), k)+"'>"+body, true); err != nil {
					return
				}
				sent.Add(1)
			}
		}()
	}
	select {
	case <-done:
	case <-w.ctx.Done():
	}
	swg.Wait()
	w.p.Sent = sent.Load()
	w.p.span("chat", t0, time.Unix(0, max(last.Load(), t0.UnixNano())))
	_, err = w.barrier("end")
	w.measureEnd()
	closeAll(conns)
	rwg.Wait()
	w.p.Received, w.p.Receipts = recv.Load(), rcpt.Load()
	for _, u := range list {
		w.p.Lat = append(w.p.Lat, u.lat...)
		w.p.RTT = append(w.p.RTT, u.rtt...)
		w.p.Ack = append(w.p.Ack, u.c.AckLat...)
	}
	return err
}

// offline: U senders online send K messages each to U offline receivers;
// then the receivers log in and the time until every message arrived is the
// drain time.
func (w *worker) offline() error {
	U, K := w.cfg.OfflineUsers, w.cfg.OfflineMessages
	var senderIdx, recvIdx []int
	for i := 0; i < U; i++ {
		if w.mine(i) {
			senderIdx = append(senderIdx, i)
			recvIdx = append(recvIdx, U+i)
		}
	}
	// Flush what earlier runs may have left for the receivers.
	fl := w.loginMany(w.ctx, recvIdx, LoginOptions{Presence: true}, "")
	var flushed atomic.Int64
	fwg := w.serveAll(fl, func(c *Conn, e *Elem) {
		if e.Local() == "message" && e.Child("body", "") != nil {
			flushed.Add(1)
		}
	})
	sleepUntil(w.ctx, time.Now().Add(1500*time.Millisecond))
	closeAll(fl)
	fwg.Wait()
	w.p.Flushed = flushed.Load()
	// Reset login counters: the flush logins are not the measure.
	w.p.mu.Lock()
	w.p.Attempts, w.p.OK, w.p.Login = 0, 0, nil
	w.p.mu.Unlock()
	sleepUntil(w.ctx, time.Now().Add(time.Second))

	senders := w.loginMany(w.ctx, senderIdx, LoginOptions{Presence: true}, "login")
	var rcpt atomic.Int64
	pong := map[*Conn]chan struct{}{}
	for _, c := range senders {
		if c != nil {
			pong[c] = make(chan struct{}, 1)
		}
	}
	swgR := w.serveAll(senders, func(c *Conn, e *Elem) {
		switch e.Local() {
		case "message":
			if e.Attr("type") == "error" {
				atomic.AddInt64(&w.p.MsgErrors, 1)
			} else if r := e.Child("received", nsReceipts); r != nil {
				if _, ok := idTime(r.Attr("id"), 'o'); ok {
					rcpt.Add(1)
				}
			}
		case "iq":
			if e.Attr("id") == "stored" {
				select {
				case pong[c] <- struct{}{}:
				default:
				}
			}
		}
	})
	t0, err := w.barrier("start")
	if err != nil {
		closeAll(senders)
		return err
	}
	w.measureStart()
	body := "<body>" + w.body() + "</body><request xmlns='" + nsReceipts + "'/></message>"
	var wg sync.WaitGroup
	var sent atomic.Int64
	var expected int64
	for k, c := range senders {
		if c == nil {
			continue
		}
		expected += int64(K)
		to := bareJID(w.cfg.User(recvIdx[k]), w.cfg.Opt.Domain)
		wg.Add(1)
		go func() {
			defer wg.Done()
			head := "<message to='" + escape(to) + "' type='chat' id='"
			for j := 0; j < K && w.ctx.Err() == nil; j++ {
				if c.Send(head+msgID('o', time.Now(), j)+"'>"+body) != nil {
					return
				}
				sent.Add(1)
			}
			// A ping answered means the server has handled every message
			// sent before it on this stream.
			if c.Ping("stored") != nil {
				return
			}
			select {
			case <-pong[c]:
				w.p.span("store", t0, time.Now())
			case <-w.ctx.Done():
			}
		}()
	}
	wg.Wait()
	w.p.Sent = sent.Load()
	w.p.Expected = expected
	if _, err := w.barrier("stored"); err != nil {
		closeAll(senders)
		return err
	}

	// Drain: receivers log in; each expects K messages from its sender.
	var recv atomic.Int64
	var last atomic.Int64
	perUser := make([]atomic.Int64, len(recvIdx))
	var doneUsers, recvOnline atomic.Int64
	msgs := w.p.series("messages", w.cfg)
	var whoMu sync.Mutex
	connOf := map[*Conn]int{}
	h := func(c *Conn, e *Elem) {
		if e.Local() != "message" || e.Child("body", "") == nil {
			return
		}
		if _, ok := idTime(e.Attr("id"), 'o'); !ok {
			return
		}
		now := time.Now()
		if e.Child("request", nsReceipts) != nil {
			receipt(c, e)
		}
		msgs.add(now)
		recv.Add(1)
		maxTime(&last, now.UnixNano())
		whoMu.Lock()
		k := connOf[c]
		whoMu.Unlock()
		if perUser[k].Add(1) == int64(K) {
			doneUsers.Add(1)
		}
	}
	dstart := time.Now()
	recvConns := make([]*Conn, len(recvIdx))
	var rwg sync.WaitGroup
	var serveWG sync.WaitGroup
	sem := make(chan struct{}, w.cfg.Concurrency)
	for k, i := range recvIdx {
		select {
		case sem <- struct{}{}:
		case <-w.ctx.Done():
		}
		if w.ctx.Err() != nil {
			break
		}
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			defer func() { <-sem }()
			// Log in without presence, start reading, then send presence:
			// offline messages follow initial presence.
			c, err := w.login(w.ctx, w.cfg.User(i), LoginOptions{})
			if err != nil {
				return
			}
			recvConns[k] = c
			whoMu.Lock()
			connOf[c] = k
			whoMu.Unlock()
			recvOnline.Add(1)
			serveWG.Add(1)
			go func() {
				defer serveWG.Done()
				err := c.Serve(func(e *Elem) { h(c, e) })
				if err != nil && w.ctx.Err() == nil {
					atomic.AddInt64(&w.p.Dropped, 1)
				}
			}()
			c.Send("<presence/>")
		}()
	}
	rwg.Wait()
	for w.ctx.Err() == nil && doneUsers.Load() < recvOnline.Load() {
		time.Sleep(5 * time.Millisecond)
	}
	w.p.span("drain", dstart, time.Unix(0, max(last.Load(), dstart.UnixNano())))
	// Receipts for the drained messages travel back to the senders.
	deadline := time.Now().Add(5 * time.Second)
	for rcpt.Load() < recv.Load() && time.Now().Before(deadline) && w.ctx.Err() == nil {
		time.Sleep(20 * time.Millisecond)
	}
	_, err = w.barrier("end")
	w.measureEnd()
	closeAll(recvConns)
	closeAll(senders)
	serveWG.Wait()
	swgR.Wait()
	w.p.Received, w.p.Receipts = recv.Load(), rcpt.Load()
	return err
}
