package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// LockFile is the file in the data directory a server (and a restore)
// holds an exclusive lock on while it uses the SQLite database there.
const LockFile = "bluetick.lock"

// ErrRunning is the answer of Lock when a process holds the data
// directory: a running server, or a restore in progress.
var ErrRunning = errors.New("in use")

// Lock takes the data directory's lock, or fails with ErrRunning (naming
// the process holding it) without waiting. The lock is an flock(2) on
// LockFile, so the kernel releases it when its process ends, however it
// ends: a kill -9 leaves no stale lock. unlock releases it.
func Lock(dataDir string) (unlock func(), err error) {
	path := filepath.Join(dataDir, LockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data_dir lock %s: %v", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := os.ReadFile(path)
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			who := "another process"
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && pid > 0 {
				who = "process " + strconv.Itoa(pid)
			}
			return nil, fmt.Errorf("%s is %w by %s (a running bluetick server, or a restore)", dataDir, ErrRunning, who)
		}
		return nil, fmt.Errorf("data_dir lock %s: %v", path, err)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() {
		f.Truncate(0)
		f.Close() // releases the flock
	}, nil
}
