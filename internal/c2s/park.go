package c2s

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// defaultParkAfter is how long a bound connection may stay silent before its
// goroutine is given up and the socket handed to the poller. Long enough
// that a conversation in progress keeps its goroutine (no extra wake-up per
// message), short enough that the idle majority of a messaging server's
// connections — phones in pockets — hold no goroutine stack.
const defaultParkAfter = 2 * time.Second

// errParked ends a stream loop whose connection was parked: it continues on
// a new goroutine when input arrives.
var errParked = errors.New("c2s: connection parked")

// parker is implemented by transports that can wait for input without a
// goroutine.
type parker interface {
	// armIdle bounds the next blocking read to about d, so that the read
	// of a silent connection returns an error idle recognises.
	armIdle(d time.Duration)
	// idle reports whether err only says the connection was silent.
	idle(err error) bool
	// park waits for input without a goroutine: wake runs once, on a new
	// goroutine's behalf, when input arrives or the connection is closed.
	// It reports false if the connection cannot be parked (the caller then
	// keeps reading).
	park(wake func()) bool
}

// Parking states of a connection.
const (
	running int32 = iota
	parked
)

// parkState is the part of a parkable connection (TCP, WebSocket) the
// poller works on.
type parkState struct {
	poller       *poller // set while parked
	state        atomic.Int32
	closing      atomic.Bool
	wake         func()
	pkey         uint64 // registration key with the poller, 0 until first parked
	pfd          int
	pregistered  bool
	readDeadline time.Time // owned by the reading goroutine
}

// armDeadline bounds the next read of c to about d.
func (ps *parkState) armDeadline(c net.Conn, d time.Duration) {
	now := time.Now()
	// Moving the deadline is a timer update in the runtime: do it once per
	// half period, not once per stanza.
	if ps.readDeadline.Sub(now) < d/2 {
		ps.readDeadline = now.Add(d)
		c.SetReadDeadline(ps.readDeadline)
	}
}

// parkConn hands raw (the socket under any TLS) to the poller: wake runs
// once when input arrives or the connection is closed (see parker.park).
func (ps *parkState) parkConn(raw net.Conn, wake func()) bool {
	p, err := sharedPoller()
	if err != nil {
		return false
	}
	ps.wake = wake
	ps.poller = p
	// Parked before armed: an event that fires at once must find it so.
	ps.state.Store(parked)
	if !p.arm(ps, raw) {
		// Closed meanwhile: whoever closed it runs wake.
		return !ps.state.CompareAndSwap(parked, running)
	}
	if ps.closing.Load() {
		ps.unpark()
	}
	return true
}

// unpark runs wake if the connection is parked; only one caller wins.
func (ps *parkState) unpark() {
	if ps.state.CompareAndSwap(parked, running) {
		ps.poller.forget(ps)
		ps.wake()
	}
}

// wakeClosed tells a parked connection that it was closed: it wakes, reads
// the error and ends.
func (ps *parkState) wakeClosed() {
	ps.closing.Store(true)
	ps.unpark()
}

func (t *tcpTransport) armIdle(d time.Duration) { t.armDeadline(t.raw, d) }

// idle: a read that timed out left every buffer consistent (crypto/tls
// keeps a partial record and treats the timeout as temporary; the decoder
// resumes mid-element), so parking is safe even inside a stanza.
func (t *tcpTransport) idle(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

func (t *tcpTransport) park(wake func()) bool {
	t.dec.Idle()
	if tc, ok := t.conn.(*tls.Conn); ok {
		releaseTLSReadBuffers(tc)
	}
	return t.parkConn(t.raw, wake)
}
