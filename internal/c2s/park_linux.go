package c2s

import (
	"net"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// poller waits for input on parked connections with one epoll instance and
// one goroutine for the whole process. A parked connection has no goroutine
// of its own: an idle session costs no goroutine stack (8 KiB after a TLS
// read, the largest single item of an idle session's memory) and no read
// buffer. The connection's file descriptor stays registered with Go's own
// netpoller too; this second, one-shot registration only tells us when to
// start a goroutine again.
type poller struct {
	epfd int

	mu     sync.Mutex
	parked map[uint64]*parkState // by registration key
	next   uint64
}

var sharedPoller = sync.OnceValues(func() (*poller, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	p := &poller{epfd: fd, parked: map[uint64]*parkState{}}
	go p.loop()
	return p, nil
})

// loop wakes parked connections when their sockets become readable (or
// hang up: the resumed goroutine reads the error and ends the stream).
func (p *poller) loop() {
	evs := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, evs, -1)
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			panic("c2s: epoll_wait: " + err.Error())
		}
		for _, ev := range evs[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			p.mu.Lock()
			t := p.parked[key]
			delete(p.parked, key)
			p.mu.Unlock()
			if t != nil {
				t.unpark()
			}
		}
	}
}

// arm registers t's socket for one readiness event. It reports false if the
// socket cannot be watched (the caller then keeps its goroutine).
func (p *poller) arm(t *parkState, raw net.Conn) bool {
	if t.pkey == 0 {
		sc, ok := raw.(syscall.Conn)
		if !ok {
			return false
		}
		rc, err := sc.SyscallConn()
		if err != nil {
			return false
		}
		fd := -1
		if rc.Control(func(f uintptr) { fd = int(f) }) != nil || fd < 0 {
			return false
		}
		p.mu.Lock()
		p.next++
		t.pkey = p.next
		p.mu.Unlock()
		t.pfd = fd
	}
	ev := unix.EpollEvent{
		Events: unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT,
		Fd:     int32(uint32(t.pkey)),
		Pad:    int32(uint32(t.pkey >> 32)),
	}
	op := unix.EPOLL_CTL_MOD
	if !t.pregistered {
		op = unix.EPOLL_CTL_ADD
		t.pregistered = true
	}
	// Every write to t comes before this unlock, which the waker's lock
	// follows; once armed, t belongs to whoever wakes it.
	p.mu.Lock()
	p.parked[t.pkey] = t
	p.mu.Unlock()
	if err := unix.EpollCtl(p.epfd, op, t.pfd, &ev); err != nil {
		p.forget(t)
		return false
	}
	return true
}

// forget drops t's registration key (its socket was closed or woke).
func (p *poller) forget(t *parkState) {
	p.mu.Lock()
	delete(p.parked, t.pkey)
	p.mu.Unlock()
}

// canPark reports whether this platform parks idle connections.
func canPark() bool {
	_, err := sharedPoller()
	return err == nil
}
