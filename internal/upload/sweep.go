package upload

import (
	"context"
	"strings"
	"time"
)

// grace spares objects written this recently from the sweeper's garbage
// collection: an upload in progress (tmp/), a slot whose PUT may still
// come, and a blob whose reference a concurrent PUT is writing.
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
			s.log.Info("upload sweep", "removed_slots", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// SweepOnce deletes expired slots, slots whose PUT never came, blobs no
// slot references any more and abandoned partial uploads. It only lists
// keys (whose names carry what it needs: creation times in users/,
// references in refs/) and reads no object, so it stays cheap on S3 with
// many files. It returns the number of slots removed.
func (s *Service) SweepOnce(ctx context.Context) (int, error) {
	now := s.now()
	// Blobs are listed before the references: a reference written after
	// the listing belongs to a blob that is young, hence spared by grace.
	blobs, err := s.backend.List(ctx, "blobs/")
	if err != nil {
		return 0, err
	}
	refList, err := s.backend.List(ctx, "refs/")
	if err != nil {
		return 0, err
	}
	refs := map[string]string{} // slot id -> blob
	for _, e := range refList {
		if id, sum, ok := parseRefKey(e.Key); ok {
			refs[id] = sum
		}
	}
	index, err := s.backend.List(ctx, "users/")
	if err != nil {
		return 0, err
	}
	removed := 0
	live := map[string]bool{}
	for _, e := range index {
		created, _, id, ok := parseIndexKey(e.Key)
		if !ok {
			continue
		}
		sum, filled := refs[id]
		expired := !created.Add(s.lim.Expiry).After(now)
		abandoned := !filled && now.Sub(created) > s.lim.TokenLifetime+grace
		if !expired && !abandoned {
			live[id] = true
			continue
		}
		// The index entry goes last: until it is gone, the next sweep
		// finds the slot again and finishes the job.
		if err := s.backend.Delete(ctx, metaKey(id)); err != nil {
			return removed, err
		}
		if filled {
			if err := s.backend.Delete(ctx, refKey(id, sum)); err != nil {
				return removed, err
			}
			delete(refs, id)
		}
		if err := s.backend.Delete(ctx, e.Key); err != nil {
			return removed, err
		}
		removed++
	}
	used := map[string]bool{}
	for id, sum := range refs {
		if live[id] {
			used[sum] = true
		}
	}
	for _, b := range blobs {
		sum := strings.TrimPrefix(b.Key, "blobs/")
		if used[sum] || now.Sub(b.ModTime) <= grace {
			continue
		}
		// Look again right before deleting: a PUT of the same content may
		// have referenced the blob since the listing above.
		if r, err := s.backend.List(ctx, "refs/"+sum+"/"); err != nil || len(r) > 0 && s.anyLive(r, live) {
			continue
		}
		if err := s.backend.Delete(ctx, b.Key); err != nil {
			return removed, err
		}
	}
	// Metadata and references without an index entry: left by a crash or
	// by a PUT that finished after its slot was swept.
	metas, err := s.backend.List(ctx, "meta/")
	if err != nil {
		return removed, err
	}
	for _, e := range metas {
		id, _ := strings.CutSuffix(strings.TrimPrefix(e.Key, "meta/"), ".json")
		if !live[id] && now.Sub(e.ModTime) > grace {
			s.backend.Delete(ctx, e.Key)
		}
	}
	for _, e := range refList {
		if id, _, ok := parseRefKey(e.Key); ok && !live[id] && now.Sub(e.ModTime) > grace {
			s.backend.Delete(ctx, e.Key)
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

// anyLive says whether one of the references is not of a slot this sweep
// removed (a new one, or a live one).
func (s *Service) anyLive(refs []Entry, live map[string]bool) bool {
	for _, e := range refs {
		if id, _, ok := parseRefKey(e.Key); ok && (live[id] || s.now().Sub(e.ModTime) <= grace) {
			return true
		}
	}
	return false
}
