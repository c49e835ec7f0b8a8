// Package ratelimit has the token buckets behind Bluetick's rate limits:
// one Bucket per connection for the c2s stanza shaper, and Keyed, a bucket
// per account, for limits such as new subscription requests per minute.
package ratelimit

import (
	"sync"
	"time"
)

// Bucket is a token bucket: it fills at Rate tokens per second up to
// Burst, and each event takes tokens. It may go into debt (Take), which
// is how a shaper slows a sender instead of refusing it. The zero value
// is unusable; a Bucket is not safe for concurrent use.
type Bucket struct {
	rate, burst float64
	tokens      float64
	last        time.Time
}

// NewBucket returns a full bucket.
func NewBucket(rate, burst float64, now time.Time) *Bucket {
	return &Bucket{rate: rate, burst: burst, tokens: burst, last: now}
}

func (b *Bucket) refill(now time.Time) {
	if dt := now.Sub(b.last); dt > 0 {
		b.tokens = min(b.burst, b.tokens+dt.Seconds()*b.rate)
		b.last = now
	}
}

// Take takes n tokens at now, going into debt if there are not enough,
// and returns how long until the debt is paid (0 if there was none): a
// shaper waits that long before it reads again.
func (b *Bucket) Take(n float64, now time.Time) time.Duration {
	b.refill(now)
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// Allow takes n tokens at now if the bucket holds them, and reports
// whether it did.
func (b *Bucket) Allow(n float64, now time.Time) bool {
	b.refill(now)
	if b.tokens < n {
		return false
	}
	b.tokens -= n
	return true
}

// full reports whether the bucket would be full at now: such a bucket is
// the same as a fresh one, so a Keyed limiter may forget it.
func (b *Bucket) full(now time.Time) bool {
	return b.tokens+now.Sub(b.last).Seconds()*b.rate >= b.burst
}

// Keyed is a Bucket per key (an account, an address), safe for concurrent
// use. It keeps only the buckets that are not full: memory grows with the
// keys active within one refill time (Burst/Rate), not with all keys ever
// seen.
type Keyed struct {
	rate, burst float64
	now         func() time.Time

	mu        sync.Mutex
	buckets   map[string]*Bucket
	lastSweep time.Time
}

// NewKeyed returns a limiter allowing burst events at once per key and
// rate events per second after that.
func NewKeyed(rate, burst float64) *Keyed {
	return &Keyed{rate: rate, burst: burst, now: time.Now, buckets: map[string]*Bucket{}}
}

// Allow counts one event for key and reports whether it is within the
// limit; an event over it is not counted.
func (k *Keyed) Allow(key string) bool {
	now := k.now()
	k.mu.Lock()
	defer k.mu.Unlock()
	if now.Sub(k.lastSweep) > time.Duration(k.burst/k.rate*float64(time.Second)) {
		for key, b := range k.buckets {
			if b.full(now) {
				delete(k.buckets, key)
			}
		}
		k.lastSweep = now
	}
	b := k.buckets[key]
	if b == nil {
		b = NewBucket(k.rate, k.burst, now)
		k.buckets[key] = b
	}
	return b.Allow(1, now)
}

// Len is the number of buckets held (for tests).
func (k *Keyed) Len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.buckets)
}
