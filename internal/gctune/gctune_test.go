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
