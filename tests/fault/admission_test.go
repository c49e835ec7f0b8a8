package fault_test

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/natstest"
)

// dialFrom opens a TCP connection to addr from the loopback address src
// (127.0.0.0/8 is all ours: each test address is another client).
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
	return d.Dial("tcp", addr)
}

// keepAlive opens an HTTP/1.1 connection from src, makes one request on
// it and leaves it open and idle, as a browser or an attacker does. It
// returns nil if the server refused the connection.
func keepAlive(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	c, err := dialFrom(src, addr)
	if err != nil {
		return nil
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		c.Close()
		return nil
	}
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	return c
}

// closedByServer reports whether the server has closed c (a read returns
// EOF or a reset within wait).
func closedByServer(c net.Conn, wait time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, 512)
	for {
		// A refused HTTP connection gets a 503 first.
		if _, err := c.Read(buf); err != nil {
			ne, ok := err.(net.Error)
			return !(ok && ne.Timeout())
		}
	}
}

// TestHTTPKeepAliveClosedAndCapped: idle keep-alive connections are
// closed after limits.http_idle_timeout, and one address holds at most
// limits.connections_per_ip connections on the HTTP port — while a client
// from another address logs in on 5222 and chats.
func TestHTTPKeepAliveClosedAndCapped(t *testing.T) {
	const perIP, tries = 20, 200
	metrics := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	s := startServer(t, fmt.Sprintf("[listen]\nmetrics = %q\n[limits]\nexempt_loopback = false\nconnections_per_ip = %d\nconnections_per_ip_per_minute = 100000\nhttp_idle_timeout = \"2s\"\n", metrics, perIP))
	var held []net.Conn
	for i := 0; i < tries; i++ {
		if c := keepAlive(t, "127.0.0.2", s.http); c != nil {
			held = append(held, c)
		}
	}
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	if len(held) != perIP {
		t.Errorf("one address holds %d of %d keep-alive connections, want the cap %d", len(held), tries, perIP)
	}
	if n := scrape(t, metrics, "bluetick_connections_refused_total", "listener", "http", "reason", "per_address"); n != tries-perIP {
		t.Errorf("bluetick_connections_refused_total{listener=http,reason=per_address} = %v, want %d", n, tries-perIP)
	}
	// The address is at its cap: another login from elsewhere works.
	a := login(t, s.c2s, "s01", "pc", true)
	b := login(t, s.c2s, "r01", "phone", true)
	if err := a.message(outMsg{to: b.jid, id: msgID("s01", "r01", 1)}); err != nil {
		t.Fatal(err)
	}
	if !b.waitFor(5*time.Second, func() bool { return len(b.msgs) == 1 }) {
		t.Fatal("a chat between two other clients stalled while one address held its cap")
	}
	// Idle for the idle timeout: every one is closed.
	start := time.Now()
	for i, c := range held {
		if !closedByServer(c, 6*time.Second-time.Since(start)) {
			t.Fatalf("keep-alive connection %d still open %v after the 2 s idle timeout", i, time.Since(start).Round(time.Millisecond))
		}
	}
	t.Logf("%d keep-alive connections held of %d tried; all closed within %v", len(held), tries, time.Since(start).Round(time.Millisecond))
}

// TestLowDescriptorsRefusedEarly: with the process's open-files limit at
// 256, many addresses open every connection they can. The server refuses
// new ones before it runs out of descriptors (never "too many open files"
// on accept), and the users already connected go on chatting.
func TestLowDescriptorsRefusedEarly(t *testing.T) {
	s := startServerLimited(t, "[limits]\nexempt_loopback = false\nconnections_per_ip_per_minute = 100000\n", 256)
	a := login(t, s.c2s, "s01", "pc", true)
	b := login(t, s.c2s, "r01", "phone", true)
	var mu sync.Mutex
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	refused := 0
	for src := 2; src < 40; src++ {
		for i := 0; i < 60; i++ {
			addr := s.http
			if i%2 == 1 {
				addr = s.c2s
			}
			c, err := dialFrom(fmt.Sprintf("127.0.0.%d", src), addr)
			if err != nil {
				refused++
				continue
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}
	time.Sleep(300 * time.Millisecond)
	open := 0
	for _, c := range held {
		if !closedByServer(c, 20*time.Millisecond) {
			open++
		}
	}
	t.Logf("flood: %d connections attempted from 38 addresses, %d held open by the server", len(held)+refused, open)
	if open > 256 {
		t.Fatalf("%d connections held with 256 descriptors", open)
	}
	for i := 1; i <= 3; i++ {
		if err := a.message(outMsg{to: b.jid, id: msgID("s01", "r01", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if !b.waitFor(5*time.Second, func() bool { return len(b.msgs) == 3 }) {
		t.Fatalf("connected users stalled under the flood: %d of 3 messages", len(b.msgs))
	}
	log, _ := os.ReadFile(s.logPath)
	if !strings.Contains(string(log), "file descriptors low") {
		t.Error("no log line says descriptors ran low")
	}
	if strings.Contains(string(log), "too many open files") {
		t.Errorf("the process ran out of descriptors:\n%s", lastLines(string(log), 10))
	}
}
