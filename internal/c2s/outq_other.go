//go:build !linux

package c2s

import "net"

// sendQueue is unknown off Linux: messages count as delivered once written.
func sendQueue(net.Conn) (int, bool) { return 0, false }

func resetOnClose(net.Conn) {}
