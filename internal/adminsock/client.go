package adminsock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"syscall"
	"time"
)

// ErrNoServer is returned by Call when nothing listens on the socket: no
// file there, or a file left by a server that is gone.
var ErrNoServer = errors.New("no server is listening")

// Call sends one request to the socket at path and decodes the result
// into out. A refused command comes back as an *Error.
func Call(ctx context.Context, path string, req Request, out any) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		switch {
		case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTSOCK):
			return fmt.Errorf("%w on %s", ErrNoServer, path)
		case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
			return fmt.Errorf("admin socket %s: permission denied: run the command as the server's user (e.g. sudo -u bluetick bluetick ...) or as root", path)
		}
		return fmt.Errorf("admin socket %s: %v", path, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	} else {
		c.SetDeadline(time.Now().Add(2 * opTimeout))
	}
	req.V = Version
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("admin socket %s: %v", path, err)
	}
	r := bufio.NewScanner(c)
	r.Buffer(make([]byte, 4096), 64<<20)
	if !r.Scan() {
		if err := r.Err(); err != nil {
			return fmt.Errorf("admin socket %s: %v", path, err)
		}
		return fmt.Errorf("admin socket %s: the server closed the connection without an answer (a connection from another user is refused; see the server's log)", path)
	}
	var resp Response
	if err := json.Unmarshal(r.Bytes(), &resp); err != nil {
		return fmt.Errorf("admin socket %s: unreadable answer: %v", path, err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if resp.V != Version {
		return Errorf(CodeVersion, "the server speaks admin protocol version %d, this bluetick %d: use the bluetick binary of the server's release", resp.V, Version)
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(resp.Result, out)
}
