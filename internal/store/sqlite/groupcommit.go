package sqlite

import (
	"context"
	"database/sql"
	"sync"
)

// maxBatch bounds the requests one group-commit transaction takes.
const maxBatch = 256

// groupCommit shares write transactions between concurrent callers: with
// synchronous=FULL every commit is an fsync, so a store of many messages
// a second must not commit each alone. The first caller to find no leader
// becomes it and commits, in batches, every request queued meanwhile
// (its own in the first batch); the others wait for theirs.
//
// apply runs one request inside the batch's transaction. A refusal that is
// that request's answer (no such user, quota, duplicate id) it records in
// the request and returns nil, so the batch goes on; an error it returns
// fails the whole batch, and failed records it in every request.
type groupCommit[R any] struct {
	apply  func(tx *sql.Tx, r R) error
	failed func(r R, err error)

	mu      sync.Mutex
	queue   []*queued[R]
	leading bool
}

type queued[R any] struct {
	r    R
	done chan struct{}
}

// do queues r and returns once its batch is committed or failed. It does
// not take a context: once queued, a request is part of a transaction.
func (g *groupCommit[R]) do(s *Store, r R) {
	q := &queued[R]{r: r, done: make(chan struct{})}
	g.mu.Lock()
	g.queue = append(g.queue, q)
	lead := !g.leading
	g.leading = true
	g.mu.Unlock()
	if lead {
		g.lead(s)
	}
	<-q.done
}

// lead commits queued requests in batches until none is left.
func (g *groupCommit[R]) lead(s *Store) {
	for {
		g.mu.Lock()
		batch := g.queue[:min(len(g.queue), maxBatch)]
		g.queue = g.queue[len(batch):]
		if len(batch) == 0 {
			g.queue = nil
			g.leading = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		err := s.write(context.Background(), func(tx *sql.Tx) error {
			for _, q := range batch {
				if err := g.apply(tx, q.r); err != nil {
					return err
				}
			}
			return nil
		})
		for _, q := range batch {
			if err != nil {
				g.failed(q.r, err)
			}
			close(q.done)
		}
	}
}
