package xmpptest

import (
	"net"
	"testing"
	"time"

	"bluetick/internal/xmlstream"
)

// DialFrom connects to addr from the local address src, e.g. "127.0.0.7":
// on Linux every 127.0.0.0/8 address is the loopback interface's, so one
// test can play clients on many addresses.
func DialFrom(t testing.TB, addr, domain, src string) *Client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &Client{T: t, Conn: c, Domain: domain, dec: xmlstream.NewDecoder(c, xmlstream.Limits{MaxElementBytes: 1 << 20})}
}
