//go:build linux

package pgtest

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
	"runtime"
	"strconv"
	"syscall"
)

// runAs is the unprivileged user the server runs as when the tests run as
// root.
type runAs struct{ uid, gid int }

// serverCredential returns the user to run initdb and postgres as: nil (the
// current user) unless that is root, which PostgreSQL refuses; then the
// postgres user that Debian's package creates, or nobody.
func serverCredential() (*runAs, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	for _, name := range []string{"postgres", "nobody"} {
		u, err := user.Lookup(name)
		if err != nil {
			continue
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err1 == nil && err2 == nil && uid != 0 {
			return &runAs{uid: uid, gid: gid}, nil
		}
	}
	return nil, errors.New("running as root, and there is no postgres or nobody user to run PostgreSQL as (it refuses to run as root)")
}

// sysProcAttr drops to cred, with no supplementary groups, and has the
// kernel send the child SIGQUIT (PostgreSQL's immediate shutdown) if the
// test binary dies without stopping it, say on a test timeout, so no
// orphaned server keeps running.
func sysProcAttr(cred *runAs) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Pdeathsig: syscall.SIGQUIT}
	if cred != nil {
		a.Credential = &syscall.Credential{Uid: uint32(cred.uid), Gid: uint32(cred.gid), Groups: []uint32{}}
	}
	return a
}

// startDaemon starts cmd and closes exited when it has exited.
//
// Pdeathsig fires when the thread that forked the child exits, not the
// process, and the Go runtime ends a thread whose goroutine exits while
// locked to it. So the child is started from a goroutine locked to its
// thread that lives until the child exits: no other goroutine runs on that
// thread, so nothing ends it early.
func startDaemon(cmd *exec.Cmd, exited chan<- struct{}) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		errc <- nil
		cmd.Wait()
		close(exited)
		// Still locked: the thread ends with this goroutine, which is
		// harmless now that the child is gone.
	}()
	return <-errc
}

// processAlive reports whether a process with this PID exists: signal 0
// checks without disturbing it (EPERM means it exists but is not ours).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
