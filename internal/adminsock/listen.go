package adminsock

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxPath is the longest socket path the kernel takes (sun_path is 108
// bytes with its terminating NUL).
const maxPath = 107

// lockSuffix names the file, next to the socket, a server holds an
// flock(2) on while its socket lives.
const lockSuffix = ".lock"

// listen opens the Unix socket at path, owned by this process's user and
// readable and writable by it alone.
//
// A socket file left by a server that crashed is replaced; a live
// server's never is. Which is which is decided by a lock, not a guess:
// the server holds an flock on path+".lock" for as long as its socket
// lives, and the kernel drops it when the process ends however it ends.
// Whoever gets the lock may remove what is at path (after checking that
// it is a socket nobody answers on); whoever does not is refused.
func listen(path string) (*net.UnixListener, func(), error) {
	if len(path) > maxPath {
		return nil, nil, fmt.Errorf("admin socket %s: the path is %d bytes, Unix sockets take at most %d: set listen.admin to a shorter path (or \"\" to turn the socket off)", path, len(path), maxPath)
	}
	lf, err := os.OpenFile(path+lockSuffix, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, fmt.Errorf("admin socket lock: %v", err)
	}
	if err := syscall.Flock(int(lf.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path + lockSuffix)
		lf.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := "another process"
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				who = "process " + strconv.Itoa(pid)
			}
			return nil, nil, fmt.Errorf("admin socket %s belongs to a running server (%s): stop it, or give this server another listen.admin (or --data)", path, who)
		}
		return nil, nil, fmt.Errorf("admin socket lock %s: %v", path+lockSuffix, err)
	}
	release := func() {
		lf.Truncate(0)
		lf.Close()
	}
	if err := removeStale(path); err != nil {
		release()
		return nil, nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		release()
		return nil, nil, fmt.Errorf("admin socket %s: %v (set listen.admin to another path, or \"\" to turn it off)", path, err)
	}
	// The permissions are the authentication. Between bind and chmod the
	// socket has the umask's mode: a connection made in that instant
	// still meets the peer check of serve.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		release()
		return nil, nil, fmt.Errorf("admin socket %s: %v", path, err)
	}
	lf.Truncate(0)
	lf.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return ln, release, nil
}

// removeStale removes what a crashed server left at path: a socket that
// nobody answers on. Anything else is refused: a regular file is not
// ours to delete, and a socket that answers is alive (a server of a
// release without the lock, or one whose lock file was removed).
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("admin socket %s: %v", path, err)
	}
	if fi.Mode()&os.ModeSocket == 0 {
		return fmt.Errorf("admin socket %s: the path exists and is not a socket; remove it, or set listen.admin to another path", path)
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("admin socket %s: a process answers on it; stop it, or set listen.admin to another path", path)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("admin socket %s: removing the stale socket: %v", path, err)
	}
	return nil
}
