package ratelimit

import (
	"testing"
	"time"
)

func TestBucketTakeGoesIntoDebt(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := NewBucket(10, 5, t0) // 10/s, burst 5
	for i := range 5 {
		if d := b.Take(1, t0); d != 0 {
			t.Fatalf("take %d within the burst waits %v", i, d)
		}
	}
	if d := b.Take(1, t0); d != 100*time.Millisecond {
		t.Fatalf("first take past the burst waits %v, want 100ms", d)
	}
	if d := b.Take(2, t0); d != 300*time.Millisecond {
		t.Fatalf("debt of 3 waits %v, want 300ms", d)
	}
	// 300 ms later the debt is paid; the next token comes 100 ms after.
	if d := b.Take(1, t0.Add(300*time.Millisecond)); d != 100*time.Millisecond {
		t.Fatalf("after paying: wait %v, want 100ms", d)
	}
	// A long pause refills to the burst, never beyond.
	later := t0.Add(time.Hour)
	for i := range 5 {
		if d := b.Take(1, later); d != 0 {
			t.Fatalf("take %d after a pause waits %v", i, d)
		}
	}
	if d := b.Take(1, later); d == 0 {
		t.Fatal("the bucket filled past its burst")
	}
}

func TestBucketAllow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := NewBucket(1, 2, t0)
	if !b.Allow(1, t0) || !b.Allow(1, t0) {
		t.Fatal("burst of 2 refused")
	}
	if b.Allow(1, t0) {
		t.Fatal("third allowed at once")
	}
	if b.Allow(1, t0.Add(500*time.Millisecond)) {
		t.Fatal("allowed before a token refilled")
	}
	if !b.Allow(1, t0.Add(time.Second)) {
		t.Fatal("refused after a token refilled")
	}
}

func TestKeyedPerKeyAndForgets(t *testing.T) {
	now := time.Unix(1000, 0)
	k := NewKeyed(3.0/60, 3) // 3 a minute
	k.now = func() time.Time { return now }
	for i := range 3 {
		if !k.Allow("a") {
			t.Fatalf("a's event %d refused", i)
		}
	}
	if k.Allow("a") {
		t.Fatal("a's 4th event in a minute allowed")
	}
	if !k.Allow("b") {
		t.Fatal("b is limited by a's events")
	}
	now = now.Add(20 * time.Second)
	if !k.Allow("a") {
		t.Fatal("a refused after a token refilled")
	}
	// Once every bucket would be full again, they are forgotten.
	now = now.Add(10 * time.Minute)
	k.Allow("c")
	if n := k.Len(); n != 1 {
		t.Fatalf("%d buckets held after all refilled, want 1 (c)", n)
	}
}
