package c2s

import (
	"net"
	"syscall"

	"golang.org/x/sys/unix"
)

// sendQueue returns how many bytes written to c the peer has not
// acknowledged yet (SIOCOUTQ: unsent plus sent but unacknowledged).
func sendQueue(c net.Conn) (int, bool) {
	n, ok := -1, false
	control(c, func(fd int) {
		if v, err := unix.IoctlGetInt(fd, unix.SIOCOUTQ); err == nil {
			n, ok = v, true
		}
	})
	return n, ok
}

// resetOnClose makes closing c discard what it still holds unsent (SO_LINGER
// 0: a reset instead of a FIN after the data).
func resetOnClose(c net.Conn) {
	control(c, func(fd int) {
		unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	})
}

func control(c net.Conn, f func(fd int)) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	rc.Control(func(fd uintptr) { f(int(fd)) })
}
