package c2s

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"testing"
	"unsafe"

	"bluetick/internal/certs"
)

// tlsPair returns a server *tls.Conn whose handshake with a client
// offering ML-KEM (Go's default, as browsers) is done, and the client.
func tlsPair(t *testing.T) (srv, cli *tls.Conn) {
	t.Helper()
	conf, err := certs.Load("", "", t.TempDir(), "localhost")
	if err != nil {
		t.Fatal(err)
	}
	a, b := net.Pipe()
	srv = tls.Server(a, conf)
	cli = tls.Client(b, &tls.Config{InsecureSkipVerify: true})
	t.Cleanup(func() { a.Close(); b.Close() }) // not tls Close: its close_notify would wait for a reader
	done := make(chan error, 1)
	go func() { done <- cli.Handshake() }()
	if err := srv.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cs := srv.ConnectionState(); cs.CurveID != tls.X25519MLKEM768 {
		t.Fatalf("key exchange %v, want X25519MLKEM768 (the big ClientHello)", cs.CurveID)
	}
	return srv, cli
}

// held is what the server's read buffers keep allocated.
func held(tc *tls.Conn) int {
	p := unsafe.Pointer(tc)
	return (*bytes.Buffer)(unsafe.Add(p, tlsBuffers.rawInput)).Cap() + (*bytes.Buffer)(unsafe.Add(p, tlsBuffers.hand)).Cap()
}

// send writes msg from cli in the background (net.Pipe blocks until read).
func send(cli *tls.Conn, msg string) { go cli.Write([]byte(msg)) }

// TestTLSReadBuffersReleased: crypto/tls still has the fields the release
// reaches (a Go release that changes them fails here), an idle
// connection's buffers are given back, and the connection reads on.
func TestTLSReadBuffersReleased(t *testing.T) {
	if tlsBuffers == nil {
		t.Fatal("crypto/tls.Conn has no rawInput/input/hand fields of the expected types: releaseTLSReadBuffers does nothing with this Go release")
	}
	srv, cli := tlsPair(t)
	send(cli, "<presence/>")
	buf := make([]byte, 64)
	if n, err := srv.Read(buf); err != nil || string(buf[:n]) != "<presence/>" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	before := held(srv)
	if before < 1500 {
		t.Fatalf("the buffers hold %d bytes after an ML-KEM handshake; expected the ClientHello's size", before)
	}
	if !releaseTLSReadBuffers(srv) {
		t.Fatal("nothing released from an idle connection")
	}
	if h := held(srv); h != 0 {
		t.Fatalf("%d bytes still held after the release (were %d)", h, before)
	}
	t.Logf("released %d bytes", before)
	for _, msg := range []string{"<message/>", "<iq type='get'/>"} {
		send(cli, msg)
		n, err := srv.Read(buf)
		if err != nil || string(buf[:n]) != msg {
			t.Fatalf("after the release: read %q, %v; want %q", buf[:n], err, msg)
		}
		releaseTLSReadBuffers(srv)
	}
}

// TestTLSReadBuffersKeepUnread: data read from the wire but not yet by
// the application stays.
func TestTLSReadBuffersKeepUnread(t *testing.T) {
	srv, cli := tlsPair(t)
	send(cli, "<presence/>")
	one := make([]byte, 1)
	if _, err := io.ReadFull(srv, one); err != nil {
		t.Fatal(err)
	}
	if releaseTLSReadBuffers(srv) {
		t.Fatal("released buffers that hold unread data")
	}
	rest := make([]byte, len("presence/>"))
	if _, err := io.ReadFull(srv, rest); err != nil || string(one)+string(rest) != "<presence/>" {
		t.Fatalf("read %q%q, %v", one, rest, err)
	}
}
