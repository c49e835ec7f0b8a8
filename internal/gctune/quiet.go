package gctune

import (
	"runtime/debug"
	"runtime/metrics"
)

// Memory a server that went quiet still holds: after a wave of logins (or
// disconnections) the heap keeps the garbage of the handshakes — up to the
// whole headroom — and the pages it freed, until the next collection and
// the runtime's slow scavenger give them back. A messaging server then
// sits for hours with thousands of idle sessions and that memory in its
// RSS. So once the process has allocated almost nothing for a few seconds
// while holding much more than its live heap, the tuner collects and
// returns the free pages to the OS at once (debug.FreeOSMemory): one
// collection when the server goes quiet, none while it is busy, so it
// costs no latency to a session that wakes.

const (
	// quietAlloc: allocating less than this per tick counts as quiet
	// (idle sessions' watchdog pings allocate far less).
	quietAlloc = 1 << 20
	// quietTicks: how many quiet ticks in a row before releasing.
	quietTicks = 5
	// releaseAbove: release only when this much could be returned.
	releaseAbove = 16 << 20
)

// quiet decides when to release. One release per quiet spell: it is armed
// again only after a busy tick.
type quiet struct {
	lastAlloc uint64
	calm      int
	released  bool
}

// tick takes the cumulative bytes allocated and the bytes a release would
// return, and reports whether to release now.
func (q *quiet) tick(allocated, excess uint64) bool {
	delta := allocated - q.lastAlloc
	q.lastAlloc = allocated
	if delta >= quietAlloc {
		q.calm, q.released = 0, false
		return false
	}
	q.calm++
	if q.released || q.calm < quietTicks || excess < releaseAbove {
		return false
	}
	q.released = true
	return true
}

// quietSamples are the metrics tick needs.
var quietSamples = []string{
	"/gc/heap/allocs:bytes",              // cumulative allocation
	"/gc/heap/live:bytes",                // live heap after the last collection
	"/memory/classes/heap/objects:bytes", // live + garbage not yet collected
	"/memory/classes/heap/free:bytes",    // free pages not yet returned
}

// excessOf is what a collection and a release would return: the garbage
// and the free pages still held.
func excessOf(s []metrics.Sample) (allocated, excess uint64) {
	v := func(i int) uint64 {
		if s[i].Value.Kind() != metrics.KindUint64 {
			return 0
		}
		return s[i].Value.Uint64()
	}
	allocated = v(0)
	live, objects, free := v(1), v(2), v(3)
	if objects > live {
		excess = objects - live
	}
	return allocated, excess + free
}

// releaseIfQuiet reads the metrics into s and releases when q says so.
func releaseIfQuiet(q *quiet, s []metrics.Sample) bool {
	metrics.Read(s)
	if q.tick(excessOf(s)) {
		debug.FreeOSMemory()
		return true
	}
	return false
}
