package upload

import (
	"context"
	"errors"
	"strings"
	"time"
)

// grace spares objects written this recently from the sweeper's garbage
// collection: an upload in progress (tmp/), and a blob whose slot metadata
// a concurrent PUT is writing.
const grace = time.Hour

// Sweep runs SweepOnce every interval until ctx ends. Every node of a
// cluster may run it: all its deletions are idempotent.
func (s *Service) Sweep(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.SweepOnce(ctx); err != nil {
			s.log.Warn("upload sweep failed", "err", err)
		} else if n > 0 {
			s.log.Info("upload sweep", "expired_slots", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SweepOnce deletes expired slots, slots whose PUT never came, index
// entries without a slot, blobs no slot references any more and abandoned
// partial uploads. It returns the number of slots removed.
func (s *Service) SweepOnce(ctx context.Context) (int, error) {
	now := s.now()
	// Blobs are listed before the metadata: a blob written after this
	// listing is not considered, and one referenced by metadata written
	// after the metadata listing is young, hence spared by grace.
	blobs, err := s.backend.List(ctx, "blobs/")
	if err != nil {
		return 0, err
	}
	metas, err := s.backend.List(ctx, "meta/")
	if err != nil {
		return 0, err
	}
	live := map[string]bool{} // slot ids kept
	refs := map[string]bool{} // blob hashes referenced
	removed := 0
	for _, e := range metas {
		id, ok := strings.CutSuffix(strings.TrimPrefix(e.Key, "meta/"), ".json")
		if !ok || !validID(id) {
			continue
		}
		slot, err := loadSlot(ctx, s.backend, id)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			s.log.Warn("upload sweep: unreadable slot", "slot", id, "err", err)
			live[id] = true // keep what we cannot judge
			continue
		}
		abandoned := slot.SHA256 == "" && now.After(slot.Created.Add(s.lim.TokenLifetime+grace))
		if !slot.Expires.After(now) || abandoned {
			if err := s.backend.Delete(ctx, indexKey(slot)); err != nil {
				return removed, err
			}
			if err := s.backend.Delete(ctx, metaKey(id)); err != nil {
				return removed, err
			}
			removed++
			continue
		}
		live[id] = true
		if slot.SHA256 != "" {
			refs[slot.SHA256] = true
		}
	}
	for _, b := range blobs {
		sum := strings.TrimPrefix(b.Key, "blobs/")
		if !refs[sum] && now.Sub(b.ModTime) > grace {
			if err := s.backend.Delete(ctx, b.Key); err != nil {
				return removed, err
			}
		}
	}
	// Index entries whose slot is gone (a crash between the two writes).
	users, err := s.backend.List(ctx, "users/")
	if err != nil {
		return removed, err
	}
	for _, e := range users {
		created, _, id, ok := parseIndexKey(e.Key)
		if ok && !live[id] && now.Sub(created) > grace {
			if _, err := loadSlot(ctx, s.backend, id); errors.Is(err, ErrNotFound) {
				s.backend.Delete(ctx, e.Key)
			}
		}
	}
	tmps, err := s.backend.List(ctx, "tmp/")
	if err != nil {
		return removed, err
	}
	for _, e := range tmps {
		if now.Sub(e.ModTime) > grace {
			s.backend.Delete(ctx, e.Key)
		}
	}
	if c, ok := s.backend.(interface{ cleanTemp(time.Duration) }); ok {
		c.cleanTemp(grace)
	}
	return removed, nil
}
