package admission

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

func serveDeadlines(t *testing.T, h http.HandlerFunc) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Deadlines(h, 300*time.Millisecond, 300*time.Millisecond)}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// A body that stops coming is cut; one that keeps coming, however slowly
// in total, is read to the end.
func TestBodyProgressDeadline(t *testing.T) {
	got := make(chan string, 2)
	addr := serveDeadlines(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		got <- fmt.Sprintf("%d %v", len(b), err != nil)
	})
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
	for i := 0; i < 6; i++ { // 6 bytes over 1.2 s, 200 ms apart
		time.Sleep(200 * time.Millisecond)
		c.Write([]byte("x"))
	}
	// then stall
	if r := <-got; r != "6 true" {
		t.Fatalf("stalled body: read %q, want 6 bytes then an error", r)
	}
	c2, _ := net.Dial("tcp", addr)
	defer c2.Close()
	fmt.Fprintf(c2, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n")
	for i := 0; i < 5; i++ {
		time.Sleep(200 * time.Millisecond)
		c2.Write([]byte("x"))
	}
	if r := <-got; r != "5 false" {
		t.Fatalf("slow but steady body: %q, want all 5 bytes", r)
	}
}

// A response held for longer than the write timeout (a BOSH long poll)
// is fine; a client that does not read a big response is cut.
func TestResponseProgressDeadline(t *testing.T) {
	done := make(chan error, 2)
	addr := serveDeadlines(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/poll" {
			time.Sleep(time.Second)
			_, err := io.WriteString(w, "late")
			done <- err
			return
		}
		var err error
		chunk := strings.Repeat("y", 64<<10)
		for i := 0; i < 1000 && err == nil; i++ {
			_, err = io.WriteString(w, chunk)
		}
		done <- err
	})
	c, _ := net.Dial("tcp", addr)
	defer c.Close()
	fmt.Fprintf(c, "GET /poll HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "late" || <-done != nil {
		t.Fatalf("long poll answered %q", b)
	}
	c2, _ := net.Dial("tcp", addr)
	defer c2.Close()
	c2.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(c2, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a 64 MB response to a client that reads nothing was written in full")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the write to a client that reads nothing was never cut")
	}
}
