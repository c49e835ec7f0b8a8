// Package gctune bounds the garbage collector's memory headroom.
//
// Go's default (GOGC=100) lets the heap grow to twice the live heap before
// the next collection, and the runtime keeps what it freed up to that goal
// rather than returning it to the OS. For a messaging server the live heap
// is mostly long-lived session state (TLS keys, parser, queues: ~8 KiB per
// idle session) while the garbage per second is small, so doubling the
// live heap buys nothing but memory: 100,000 idle sessions would hold
// ~800 MiB of headroom. The tuner instead keeps the headroom at a fixed
// size (default 64 MiB) — as a percentage, never above Go's 100 and never
// below MinPercent, so a huge heap still collects at a sane rate.
//
// When the process goes quiet holding far more than its live heap, the
// tuner also returns that memory to the OS at once (quiet.go).
//
// An operator who sets GOGC or GOMEMLIMIT in the environment has chosen
// already: the tuner then does nothing.
package gctune

import (
	"os"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// MinPercent is the lowest GOGC the tuner sets: below it, a large heap
// would spend most of its CPU collecting.
const MinPercent = 25

// Percent is the GOGC that gives live bytes of live heap the headroom
// bytes of room, within [MinPercent, 100].
func Percent(live, headroom uint64) int {
	if live == 0 {
		return 100
	}
	p := headroom * 100 / live
	return int(min(max(p, MinPercent), 100))
}

// Start adjusts GOGC every interval until stop is called. headroom 0, or
// GOGC/GOMEMLIMIT in the environment, leaves the runtime as it is.
func Start(headroom uint64, interval time.Duration) (stop func()) {
	if headroom == 0 || os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return func() {}
	}
	done := make(chan struct{})
	go func() {
		sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		qs := make([]metrics.Sample, len(quietSamples))
		for i, n := range quietSamples {
			qs[i].Name = n
		}
		var q quiet
		cur := 100
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			metrics.Read(sample)
			if sample[0].Value.Kind() == metrics.KindUint64 {
				// Move only on a real change, so the pacer is not
				// disturbed by noise.
				if p := Percent(sample[0].Value.Uint64(), headroom); p < cur-2 || p > cur+2 {
					debug.SetGCPercent(p)
					cur = p
				}
			}
			releaseIfQuiet(&q, qs) // see quiet.go
			select {
			case <-done:
				debug.SetGCPercent(100)
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done) }
}
