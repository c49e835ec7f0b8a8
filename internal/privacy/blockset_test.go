package privacy_test

import (
	"context"
	"path/filepath"
	"testing"

	"bluetick/internal/jid"
	"bluetick/internal/privacy"
	"bluetick/internal/store/sqlite"
)

// An empty blocklist — nearly every user's — is cached as the nil Set (no
// map kept per user, issue 19); a user who blocks someone gets a real one,
// and the cache forgets the empty one when the list changes.
func TestBlockerEmptySet(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.CreateUser(ctx, "alice", nil); err != nil {
		t.Fatal(err)
	}
	for _, cache := range []bool{true, false} {
		b := privacy.NewBlocker(st, cache)
		set, err := b.Set(ctx, "alice")
		if err != nil || set != nil {
			t.Fatalf("cache %v: empty blocklist gave %v, %v; want the nil Set", cache, set, err)
		}
		if set.Blocks(jid.MustParse("mallory@example.com")) {
			t.Fatal("the nil Set blocks")
		}
	}
	b := privacy.NewBlocker(st, true)
	b.Set(ctx, "alice") // cached empty
	if err := b.Block(ctx, "alice", []jid.JID{jid.MustParse("mallory@example.com")}); err != nil {
		t.Fatal(err)
	}
	set, err := b.Set(ctx, "alice")
	if err != nil || !set.Blocks(jid.MustParse("mallory@example.com/phone")) {
		t.Fatalf("after Block: %v, %v", set, err)
	}
}
