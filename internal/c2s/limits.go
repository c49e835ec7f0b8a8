package c2s

import (
	"net"
	"sync"
	"time"
)

// rateLimiter counts events per key (a client address) in fixed windows. A
// window per minute is coarse but costs one map entry per active address,
// and the sweep keeps the map from growing with addresses seen once.
type rateLimiter struct {
	max    int
	window time.Duration

	mu        sync.Mutex
	counts    map[string]*windowCount
	lastSweep time.Time
}

type windowCount struct {
	start time.Time
	n     int
}

func newRateLimiter(max int, window time.Duration) *rateLimiter {
	return &rateLimiter{max: max, window: window, counts: map[string]*windowCount{}, lastSweep: time.Now()}
}

// allow counts one event for key and reports whether it is within the limit.
func (r *rateLimiter) allow(key string) bool {
	now := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if now.Sub(r.lastSweep) > r.window {
		for k, c := range r.counts {
			if now.Sub(c.start) > r.window {
				delete(r.counts, k)
			}
		}
		r.lastSweep = now
	}
	c := r.counts[key]
	if c == nil || now.Sub(c.start) > r.window {
		c = &windowCount{start: now}
		r.counts[key] = c
	}
	c.n++
	return c.n <= r.max
}

// hostOf strips the port from an address.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
