package admission

import (
	"sync"
	"time"
)

// RateLimiter counts events per key (a client address) in fixed windows. A
// window per minute is coarse but costs one map entry per active address,
// and the sweep keeps the map from growing with addresses seen once.
type RateLimiter struct {
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

// NewRateLimiter allows max events per key in each window.
func NewRateLimiter(max int, window time.Duration) *RateLimiter {
	return &RateLimiter{max: max, window: window, counts: map[string]*windowCount{}, lastSweep: time.Now()}
}

// Allow counts one event for key and reports whether it is within the limit.
func (r *RateLimiter) Allow(key string) bool {
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
