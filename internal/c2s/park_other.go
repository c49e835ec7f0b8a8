//go:build !linux

package c2s

import (
	"errors"
	"net"
)

// Without epoll, idle connections keep their goroutine: parking is an
// optimisation, never needed for correctness.
type poller struct{}

var sharedPoller = func() (*poller, error) { return nil, errors.New("c2s: parking needs Linux epoll") }

func (p *poller) arm(t *parkState, raw net.Conn) bool { return false }
func (p *poller) forget(t *parkState)                 {}
func canPark() bool                                   { return false }
