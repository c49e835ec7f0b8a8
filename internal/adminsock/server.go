package adminsock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// Backend does what the commands ask; the server's packages implement it
// (cmd/bluetick wires them). An error that is not an *Error is reported
// as CodeInternal.
type Backend interface {
	Status(ctx context.Context) (Status, error)
	Sessions(ctx context.Context) (SessionList, error)
	Kick(ctx context.Context, jid, reason string) (Count, error)
	Rooms(ctx context.Context) (RoomList, error)
	Destroy(ctx context.Context, room, reason string) (Count, error)
	Announce(ctx context.Context, subject, text string) (Count, error)
}

// Limits of the server: an admin socket serves a few operators and
// scripts, not a crowd.
const (
	maxConns    = 16               // connections served at once; more are refused
	idleTimeout = 5 * time.Minute  // a silent connection is closed
	opTimeout   = 60 * time.Second // one command
)

// Server serves the admin socket.
type Server struct {
	ln      *net.UnixListener
	release func()
	b       Backend
	log     *slog.Logger
	uid     int
	slots   chan struct{}
	wg      sync.WaitGroup

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  bool
}

// Listen opens the socket at path (see listen for how a stale socket is
// told from a live one) and serves b on it until Close.
func Listen(path string, b Backend, log *slog.Logger) (*Server, error) {
	ln, release, err := listen(path)
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, release: release, b: b, log: log.With("component", "adminsock"), uid: os.Getuid(),
		slots: make(chan struct{}, maxConns), conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops serving, ends the open connections, removes the socket and
// releases its lock.
func (s *Server) Close() {
	s.mu.Lock()
	s.done = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.ln.Close() // removes the socket file
	s.wg.Wait()
	s.release()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("admin socket: accept", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !s.allowed(c) {
			c.Close()
			continue
		}
		select {
		case s.slots <- struct{}{}:
		default:
			writeResponse(c, Response{V: Version, Error: Errorf(CodeInternal, "the admin socket is busy (%d connections): try again", maxConns)})
			c.Close()
			continue
		}
		s.mu.Lock()
		if s.done {
			s.mu.Unlock()
			c.Close()
			<-s.slots
			return
		}
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serve(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
			<-s.slots
		}()
	}
}

// allowed checks the peer's user: the server's, or root. The socket's
// mode already keeps others out; this holds even if the mode was changed
// or the socket was reached before its chmod.
func (s *Server) allowed(c *net.UnixConn) bool {
	raw, err := c.SyscallConn()
	if err != nil {
		return false
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil || cerr != nil {
		s.log.Warn("admin socket: peer credentials unreadable; connection refused", "err", errors.Join(err, cerr))
		return false
	}
	if int(cred.Uid) != s.uid && cred.Uid != 0 {
		s.log.Warn("admin socket: connection from another user refused", "uid", cred.Uid, "pid", cred.Pid)
		return false
	}
	return true
}

// serve answers the requests of one connection, in order.
func (s *Server) serve(c *net.UnixConn) {
	r := bufio.NewScanner(c)
	r.Buffer(make([]byte, 4096), maxLine)
	for {
		c.SetReadDeadline(time.Now().Add(idleTimeout))
		if !r.Scan() {
			if err := r.Err(); errors.Is(err, bufio.ErrTooLong) {
				writeResponse(c, Response{V: Version, Error: Errorf(CodeBadRequest, "request longer than %d bytes", maxLine)})
			}
			return
		}
		resp := s.handle(r.Bytes())
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if writeResponse(c, resp) != nil {
			return
		}
	}
}

func writeResponse(c net.Conn, resp Response) error {
	b, err := json.Marshal(resp)
	if err != nil {
		b, _ = json.Marshal(Response{V: Version, Error: Errorf(CodeInternal, "encoding the answer: %v", err)})
	}
	_, err = c.Write(append(b, '\n'))
	return err
}

// handle runs one request line.
func (s *Server) handle(line []byte) Response {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return Response{V: Version, Error: Errorf(CodeBadRequest, "not a JSON request: %v", err)}
	}
	if req.V != Version {
		return Response{V: Version, Error: Errorf(CodeVersion, "this server speaks admin protocol version %d, the request is version %d: use the bluetick binary of the server's release", Version, req.V)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	var res any
	var err error
	switch req.Op {
	case OpStatus:
		res, err = s.b.Status(ctx)
	case OpSessions:
		res, err = s.b.Sessions(ctx)
	case OpKick:
		res, err = s.b.Kick(ctx, req.JID, req.Reason)
	case OpRooms:
		res, err = s.b.Rooms(ctx)
	case OpDestroy:
		res, err = s.b.Destroy(ctx, req.JID, req.Reason)
	case OpAnnounce:
		res, err = s.b.Announce(ctx, req.Subject, req.Text)
	default:
		err = Errorf(CodeBadRequest, "unknown operation %q", req.Op)
	}
	if err != nil {
		var e *Error
		if !errors.As(err, &e) {
			s.log.Error("admin socket: "+req.Op, "err", err)
			e = Errorf(CodeInternal, "%s failed: %v", req.Op, err)
		}
		return Response{V: Version, Error: e}
	}
	b, err := json.Marshal(res)
	if err != nil {
		return Response{V: Version, Error: Errorf(CodeInternal, "encoding the answer: %v", err)}
	}
	return Response{V: Version, Result: b}
}
