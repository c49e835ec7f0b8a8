package c2s

import (
	"net"
	"testing"
)

// The send queue is asked once per batch written to a client without
// stream management: its cost against the write it follows.
func BenchmarkSendQueue(b *testing.B) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			buf := make([]byte, 64<<10)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
			}
		}
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := make([]byte, 300)
	b.Run("write", func(b *testing.B) {
		for b.Loop() {
			c.Write(msg)
		}
	})
	b.Run("write+sendqueue", func(b *testing.B) {
		for b.Loop() {
			c.Write(msg)
			if _, ok := sendQueue(c); !ok {
				b.Fatal("SIOCOUTQ unavailable")
			}
		}
	})
}
