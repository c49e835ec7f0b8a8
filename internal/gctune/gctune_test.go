package gctune

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"
)

func TestPercent(t *testing.T) {
	const mib = 1 << 20
	for _, c := range []struct {
		live, headroom uint64
		want           int
	}{
		{0, 64 * mib, 100},
		{32 * mib, 64 * mib, 100},  // small heap: Go's default
		{128 * mib, 64 * mib, 50},  // headroom fixed at 64 MiB
		{256 * mib, 64 * mib, 25},  // ...
		{1024 * mib, 64 * mib, 25}, // floor: a huge heap still collects sanely
	} {
		if got := Percent(c.live, c.headroom); got != c.want {
			t.Errorf("Percent(%d MiB, %d MiB) = %d, want %d", c.live/mib, c.headroom/mib, got, c.want)
		}
	}
}

// With a large live heap the tuner lowers GOGC, and restores it on stop.
func TestStartLowersGOGC(t *testing.T) {
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	keep := make([][]byte, 0, 64)
	for range 64 {
		keep = append(keep, make([]byte, 1<<20))
	}
	runtime.GC()
	stop := Start(8<<20, 10*time.Millisecond) // 8 MiB headroom over ~64 MiB live
	deadline := time.Now().Add(2 * time.Second)
	got := 100
	for time.Now().Before(deadline) && got == 100 {
		time.Sleep(20 * time.Millisecond)
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		got = int(s[0].Value.Uint64())
	}
	stop()
	runtime.KeepAlive(keep)
	if got >= 100 || got < MinPercent {
		t.Fatalf("GOGC = %d with 64 MiB live and 8 MiB headroom, want in [%d, 100)", got, MinPercent)
	}
}

// The quiet release fires once per quiet spell: after quietTicks ticks of
// little allocation, only when there is enough to return, and again only
// after the process was busy in between.
func TestQuietRelease(t *testing.T) {
	const mib = 1 << 20
	var q quiet
	alloc := uint64(0)
	step := func(delta, excess uint64) bool { alloc += delta; return q.tick(alloc, excess) }
	step(100*mib, 64*mib) // a login wave
	for i := 1; i < quietTicks; i++ {
		if step(10, 64*mib) {
			t.Fatalf("released after %d quiet ticks, want %d", i, quietTicks)
		}
	}
	if !step(10, 64*mib) {
		t.Fatal("not released after quietTicks quiet ticks")
	}
	for i := 0; i < 3*quietTicks; i++ {
		if step(10, 64*mib) {
			t.Fatal("released twice in one quiet spell")
		}
	}
	step(5*mib, 64*mib) // busy again
	for i := 0; i < quietTicks; i++ {
		if step(10, releaseAbove-1) {
			t.Fatal("released with too little to return")
		}
	}
	if !step(10, releaseAbove) {
		t.Fatal("not released once there is enough to return")
	}
}

// A real release returns the free heap to the OS.
func TestReleaseIfQuiet(t *testing.T) {
	garbage := make([][]byte, 0, 64)
	for i := 0; i < 64; i++ {
		garbage = append(garbage, make([]byte, 1<<20))
	}
	garbage = nil
	runtime.GC()
	qs := make([]metrics.Sample, len(quietSamples))
	for i, n := range quietSamples {
		qs[i].Name = n
	}
	q := quiet{calm: quietTicks}
	metrics.Read(qs)
	q.lastAlloc, _ = excessOf(qs)
	if !releaseIfQuiet(&q, qs) {
		_, ex := excessOf(qs)
		t.Fatalf("no release with %d MiB to return", ex>>20)
	}
	metrics.Read(qs)
	if _, ex := excessOf(qs); ex >= releaseAbove {
		t.Fatalf("%d MiB still held after the release", ex>>20)
	}
	runtime.KeepAlive(garbage)
}
