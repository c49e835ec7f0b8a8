package fault_test

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"bluetick/internal/natstest"
)

// latencyProxy listens on a loopback port and forwards every connection to
// target, delaying each direction by oneWay with byte order kept: a mobile
// link with a round-trip time of 2*oneWay. On bare loopback a client
// answers the server's <r/> within microseconds, which hides races between
// the server's ack requests and what it writes next; real phones answer a
// round trip later. The proxy and its connections close at cleanup.
func latencyProxy(t *testing.T, target string, oneWay time.Duration) string {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	closed := false
	track := func(c ...net.Conn) bool {
		mu.Lock()
		defer mu.Unlock()
		if closed {
			for _, x := range c {
				x.Close()
			}
			return false
		}
		conns = append(conns, c...)
		return true
	}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		closed = true
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			if !track(c, s) {
				return
			}
			go delayPipe(s, c, oneWay)
			go delayPipe(c, s, oneWay)
		}
	}()
	return addr
}

// delayPipe copies src to dst, each chunk oneWay after it was read; at
// src's end it half-closes dst (so a FIN travels on, delayed too) or, if
// dst fails, closes src.
func delayPipe(dst, src net.Conn, oneWay time.Duration) {
	type chunk struct {
		at time.Time
		b  []byte
	}
	ch := make(chan chunk, 4096)
	go func() {
		defer close(ch)
		for {
			buf := make([]byte, 32<<10)
			n, err := src.Read(buf)
			if n > 0 {
				ch <- chunk{time.Now().Add(oneWay), buf[:n]}
			}
			if err != nil {
				return
			}
		}
	}()
	for c := range ch {
		time.Sleep(time.Until(c.at))
		dst.SetWriteDeadline(time.Now().Add(30 * time.Second))
		if _, err := dst.Write(c.b); err != nil {
			src.Close()
			for range ch {
			}
			return
		}
	}
	time.Sleep(oneWay)
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}
