package xmlstream

import (
	"runtime"
	"sync"
	"weak"
)

// Canonical returns a compact, read-only element equal to e, shared with
// every other live caller that canonicalized an equal element.
//
// Why: each session keeps its last presence for its whole life, and most
// sessions' presences are the same few bytes (an empty <presence/> with the
// server's vCard-update child, a <show>away</show>). A private compact copy
// of each costs ~0.7 KiB per idle session (three elements, their child lists
// and strings); one shared copy costs nothing per session.
//
// The cache holds weak pointers, so an element no session keeps any more is
// collected and its entry removed: the cache never outgrows the distinct
// presences alive. Equality is by serialization (Append), so attribute
// order matters; callers must never modify the result (Copy it first).
func Canonical(e *Element) *Element {
	if e == nil {
		return nil
	}
	buf := Append(getCanonBuf(), e, "")
	defer putCanonBuf(buf)
	canon.mu.Lock()
	if wp, ok := canon.m[string(buf)]; ok { // no allocation for the lookup
		if c := wp.Value(); c != nil {
			canon.mu.Unlock()
			return c
		}
	}
	key := string(buf)
	c := e.Compact()
	canon.m[key] = weak.Make(c)
	canon.mu.Unlock()
	runtime.AddCleanup(c, dropCanonical, canonEntry{key: key, wp: canon.m[key]})
	return c
}

// canonEntry names the cache entry of one canonical element.
type canonEntry struct {
	key string
	wp  weak.Pointer[Element]
}

// dropCanonical removes a collected element's entry, unless an equal
// element has replaced it meanwhile.
func dropCanonical(ce canonEntry) {
	canon.mu.Lock()
	if cur, ok := canon.m[ce.key]; ok && cur == ce.wp {
		delete(canon.m, ce.key)
	}
	canon.mu.Unlock()
}

var canon = struct {
	mu sync.Mutex
	m  map[string]weak.Pointer[Element]
}{m: map[string]weak.Pointer[Element]{}}

// canonicalCount is the number of cache entries (for tests).
func canonicalCount() int {
	canon.mu.Lock()
	defer canon.mu.Unlock()
	return len(canon.m)
}

var canonBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func getCanonBuf() []byte { return (*canonBufs.Get().(*[]byte))[:0] }

func putCanonBuf(b []byte) {
	if cap(b) <= 4096 {
		canonBufs.Put(&b)
	}
}
