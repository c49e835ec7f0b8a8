//go:build !linux

package pgtest

import (
	"errors"
	"os"
	"os/exec"
	"syscall"
)

// runAs is unused outside Linux: there the tests must not run as root.
type runAs struct{ uid, gid int }

func serverCredential() (*runAs, error) {
	if os.Geteuid() == 0 {
		return nil, errors.New("PostgreSQL refuses to run as root: run the tests as another user, or set " + EnvDSN)
	}
	return nil, nil
}

func sysProcAttr(*runAs) *syscall.SysProcAttr { return nil }

// startDaemon starts cmd and closes exited when it has exited.
func startDaemon(cmd *exec.Cmd, exited chan<- struct{}) error {
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		cmd.Wait()
		close(exited)
	}()
	return nil
}

// processAlive is conservative where it cannot cheaply tell: a stale
// directory with a PID file is left alone.
func processAlive(int) bool { return true }
