package xmlstream

import (
	"runtime"
	"testing"
	"time"
)

func TestCanonicalShares(t *testing.T) {
	a, err := Parse([]byte(`<presence xmlns='jabber:client'><show>away</show><x xmlns='vcard-temp:x:update'><photo/></x></presence>`), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Parse([]byte(`<presence xmlns="jabber:client"><show>away</show><x xmlns="vcard-temp:x:update"><photo/></x></presence>`), Limits{})
	c, _ := Parse([]byte(`<presence xmlns='jabber:client'><show>dnd</show></presence>`), Limits{})
	ca, cb, cc := Canonical(a), Canonical(b), Canonical(c)
	if ca != cb {
		t.Fatal("equal presences are not shared")
	}
	if ca == cc {
		t.Fatal("different presences are shared")
	}
	if got, want := string(Append(nil, ca, "")), string(Append(nil, a, "")); got != want {
		t.Fatalf("canonical form %s, want %s", got, want)
	}
	if ca == a || ca.Children[0].Elem == a.Children[0].Elem {
		t.Fatal("canonical element aliases its source")
	}
	if Canonical(nil) != nil {
		t.Fatal("Canonical(nil) != nil")
	}
	runtime.KeepAlive(cc)
}

// An element no one holds any more leaves the cache: it cannot grow with
// presences that are gone.
func TestCanonicalCollected(t *testing.T) {
	before := canonicalCount()
	for i := 0; i < 100; i++ {
		e := New(NSClient, "presence", "id", string(rune('a'+i%26))+string(rune('a'+i/26)))
		Canonical(e)
	}
	if canonicalCount() < before+100 {
		t.Fatalf("%d entries, want at least %d", canonicalCount(), before+100)
	}
	deadline := time.Now().Add(10 * time.Second)
	for canonicalCount() > before && time.Now().Before(deadline) {
		runtime.GC()
		time.Sleep(time.Millisecond) // cleanups run on their own goroutine
	}
	if n := canonicalCount(); n > before {
		t.Fatalf("%d entries left after the elements were collected, want %d", n, before)
	}
}

func BenchmarkCanonicalPresence(b *testing.B) {
	p, _ := Parse([]byte(`<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo/></x></presence>`), Limits{})
	retained(b, func() *Element { return Canonical(p) })
}

func BenchmarkCompactPresence(b *testing.B) {
	p, _ := Parse([]byte(`<presence xmlns='jabber:client'><x xmlns='vcard-temp:x:update'><photo/></x></presence>`), Limits{})
	retained(b, func() *Element { return p.Compact() })
}

// retained runs keep b.N times, holding every result, and reports the live
// heap they hold per call (what an idle session pays for its presence).
func retained(b *testing.B, keep func() *Element) {
	held := make([]*Element, 0, 1024)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		held = append(held, keep())
		n++
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	per := (float64(m1.HeapAlloc) - float64(m0.HeapAlloc) - float64(cap(held))*8) / float64(n)
	b.ReportMetric(max(per, 0), "retained-B/op")
	runtime.KeepAlive(held)
}

// BenchmarkIdleDecoder: the live heap an idle connection's decoder holds
// after its stream header and a presence (read buffer given back by Idle).
func BenchmarkIdleDecoder(b *testing.B) {
	in := []byte(`<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'><presence><show>away</show></presence>`)
	held := make([]*Decoder, 0, 1024)
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	n := 0
	for b.Loop() {
		d := NewDecoder(&onceReader{p: in}, Limits{})
		for i := 0; i < 2; i++ {
			if _, err := d.Next(); err != nil {
				b.Fatal(err)
			}
		}
		d.Idle()
		held = append(held, d)
		n++
	}
	b.StopTimer()
	runtime.GC()
	runtime.ReadMemStats(&m1)
	b.ReportMetric(max(float64(m1.HeapAlloc)-float64(m0.HeapAlloc)-float64(cap(held))*8, 0)/float64(n), "retained-B/op")
	runtime.KeepAlive(held)
}

type onceReader struct{ p []byte }

func (r *onceReader) Read(b []byte) (int, error) {
	n := copy(b, r.p)
	r.p = r.p[n:]
	return n, nil
}
