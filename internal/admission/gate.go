// Package admission decides, as each connection is accepted, whether it
// may take one of the process's file descriptors. Every listener (XMPP on
// 5222 and 5223, HTTP with WebSocket, BOSH and uploads) goes through one
// Gate, so that no address, and no listener, can take what the others
// need: one address holds at most its share of the descriptors, opens at
// most so many connections a minute, and when descriptors run low the
// server refuses new connections early — while there are still enough
// for the store, the journal and the users already connected.
package admission

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"bluetick/internal/config"
)

// Refusal reasons, as in the log and the metric's reason label.
const (
	ReasonPerAddress = "per_address" // the address holds its share of descriptors
	ReasonRate       = "rate"        // the address opened too many this minute
	ReasonLowFDs     = "low_fds"     // the process is close to its descriptor limit
	ReasonAccept     = "accept_error"
)

// Gate admits connections on every listener of a process.
type Gate struct {
	perIP  int // connections one address may hold open
	budget int // connections all addresses may hold open
	exempt bool
	rate   *RateLimiter
	log    *slog.Logger

	mu    sync.Mutex
	open  map[netip.Addr]int
	total int

	refused  sync.Map // "listener\x00reason" -> *atomic.Uint64
	lastLog  sync.Map // reason -> unix nanos of the last log line
	fdLimit  int
	accepted atomic.Uint64
}

// New returns a gate for the process's current open-files limit (raise it
// first). Of the descriptors, a tenth (at least 64) is kept for everything
// that is not a client connection; one address gets at most
// limits.connections_per_ip of the rest, and never more than a quarter.
func New(l config.Limits, log *slog.Logger) *Gate {
	return newGate(l, fileLimit(), log)
}

func newGate(l config.Limits, fdLimit int, log *slog.Logger) *Gate {
	budget := fdLimit - max(64, fdLimit/10)
	g := &Gate{
		perIP:   min(l.ConnectionsPerIP, max(1, budget/4)),
		budget:  max(1, budget),
		exempt:  l.ExemptLoopback,
		rate:    NewRateLimiter(l.ConnectionsPerIPPerMinute, time.Minute),
		log:     log,
		open:    map[netip.Addr]int{},
		fdLimit: fdLimit,
	}
	log.Info("admission: connection limits", "open_files_limit", fdLimit, "connections_max", g.budget,
		"connections_per_address", g.perIP, "connections_per_address_per_minute", l.ConnectionsPerIPPerMinute,
		"loopback_exempt", l.ExemptLoopback)
	return g
}

// fileLimit is RLIMIT_NOFILE's soft limit.
func fileLimit() int {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil || l.Cur > 1<<30 {
		return 1 << 20
	}
	return int(l.Cur)
}

// Open is the number of connections the gate holds.
func (g *Gate) Open() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.total
}

// PerAddress and Budget are the effective caps.
func (g *Gate) PerAddress() int { return g.perIP }
func (g *Gate) Budget() int     { return g.budget }

// admit takes a place for a connection from addr, or says why not.
func (g *Gate) admit(addr netip.Addr) (reason string) {
	exempt := g.exempt && addr.IsLoopback()
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.total >= g.budget:
		return ReasonLowFDs
	case !exempt && g.open[addr] >= g.perIP:
		return ReasonPerAddress
	case !exempt && !g.rate.Allow(addr.String()):
		return ReasonRate
	}
	g.open[addr]++
	g.total++
	return ""
}

func (g *Gate) release(addr netip.Addr) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.total--
	if n := g.open[addr] - 1; n > 0 {
		g.open[addr] = n
	} else {
		delete(g.open, addr)
	}
}

// refuse counts a refusal and logs it, at most once a second per reason:
// a flood must not fill the disk with log lines.
func (g *Gate) refuse(listener, reason string, remote net.Addr) {
	key := listener + "\x00" + reason
	c, _ := g.refused.LoadOrStore(key, new(atomic.Uint64))
	n := c.(*atomic.Uint64).Add(1)
	now := time.Now().UnixNano()
	last, _ := g.lastLog.LoadOrStore(reason, new(atomic.Int64))
	if l := last.(*atomic.Int64); now-l.Load() > int64(time.Second) {
		l.Store(now)
		msg := map[string]string{
			ReasonPerAddress: "admission: connection refused: this address holds its share of connections (limits.connections_per_ip)",
			ReasonRate:       "admission: connection refused: too many new connections from this address (limits.connections_per_ip_per_minute)",
			ReasonLowFDs:     "admission: connection refused: file descriptors low, keeping the rest for connected users (raise the open-files limit)",
			ReasonAccept:     "admission: accept failed",
		}[reason]
		g.log.Warn(msg, "listener", listener, "remote", remote.String(), "refused_so_far", n, "open", g.Open(), "limit", g.budget)
	}
}

// Refused returns the number of connections refused on listener for
// reason.
func (g *Gate) Refused(listener, reason string) uint64 {
	if c, ok := g.refused.Load(listener + "\x00" + reason); ok {
		return c.(*atomic.Uint64).Load()
	}
	return 0
}

// Listener returns ln with every accepted connection going through the
// gate; name labels its log lines and metrics. A refused connection is
// closed at once; on an HTTP listener it first gets a 503 that says why.
func (g *Gate) Listener(ln net.Listener, name string, http bool) net.Listener {
	// Every listener and reason is exported from the start (at 0), so a
	// rate or an alert on it has a series before the first refusal.
	for _, r := range []string{ReasonPerAddress, ReasonRate, ReasonLowFDs, ReasonAccept} {
		g.refused.LoadOrStore(name+"\x00"+r, new(atomic.Uint64))
	}
	return &listener{Listener: ln, g: g, name: name, http: http}
}

type listener struct {
	net.Listener
	g    *Gate
	name string
	http bool
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				// EMFILE and the like: the caller backs off and retries.
				l.g.refuse(l.name, ReasonAccept, l.Listener.Addr())
			}
			return nil, err
		}
		addr := addrOf(c.RemoteAddr())
		if reason := l.g.admit(addr); reason != "" {
			l.g.refuse(l.name, reason, c.RemoteAddr())
			if l.http {
				c.SetWriteDeadline(time.Now().Add(10 * time.Millisecond))
				io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\nRetry-After: 60\r\n\r\n"+
					map[string]string{ReasonLowFDs: "server busy: too many connections\n"}[reason]+
					map[string]string{ReasonPerAddress: "too many connections from your address\n", ReasonRate: "too many new connections from your address; retry in a minute\n"}[reason])
			}
			c.Close()
			continue
		}
		l.g.accepted.Add(1)
		return &conn{Conn: c, g: l.g, addr: addr}, nil
	}
}

// conn gives its place back when closed.
type conn struct {
	net.Conn
	g      *Gate
	addr   netip.Addr
	closed atomic.Bool
}

func (c *conn) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.g.release(c.addr)
	}
	return c.Conn.Close()
}

// SyscallConn exposes the socket (the c2s poller and send-queue checks
// need its descriptor).
func (c *conn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := c.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, syscall.EINVAL
}

// ReadFrom keeps sendfile for HTTP downloads.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// CloseWrite half-closes TCP (TLS close_notify uses it when present).
func (c *conn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(ta.IP)
		return ip.Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
