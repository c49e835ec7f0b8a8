// Package timed wraps a store.Store so that every operation is timed into
// bluetick_store_seconds{op, backend}: how long each kind of store call
// takes, on SQLite or PostgreSQL, as the server sees it (waiting for the
// write lock or a pool connection included).
//
// The methods are generated from store.Store by gen.go (go generate);
// TestGenerated fails when timed_gen.go is stale.
package timed

//go:generate go run gen.go

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"bluetick/internal/store"
)

// Store is a store.Store whose calls are timed.
type Store struct {
	store.Store
	backend string
	hist    *prometheus.HistogramVec
}

// New wraps st; backend names it in the metric (sqlite, postgres).
func New(st store.Store, backend string) *Store {
	return &Store{Store: st, backend: backend, hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "bluetick_store_seconds",
		Help:    "Time of store operations by operation (the store method) and backend, from the call to its return.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5},
	}, []string{"op", "backend"})}
}

// Collector is the histogram.
func (s *Store) Collector() prometheus.Collector { return s.hist }

func (s *Store) observe(op string, start time.Time) {
	s.hist.WithLabelValues(op, s.backend).Observe(time.Since(start).Seconds())
}

// Close closes the wrapped store (not timed: it happens once).
func (s *Store) Close() error { return s.Store.Close() }

// OfflineSeqBase passes on the optional method the offline journal asks
// the store for (package offline, UseLog): a wrapper without it would
// turn the single node's journal log off.
func (s *Store) OfflineSeqBase(ctx context.Context) (int64, error) {
	b, ok := s.Store.(interface {
		OfflineSeqBase(ctx context.Context) (int64, error)
	})
	if !ok {
		return 0, errors.New("timed: the wrapped store has no OfflineSeqBase")
	}
	defer s.observe("OfflineSeqBase", time.Now())
	return b.OfflineSeqBase(ctx)
}
