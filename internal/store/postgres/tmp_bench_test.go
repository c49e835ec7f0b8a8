package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	"bluetick/internal/pgtest"
	"bluetick/internal/store"
)

func BenchmarkTmpQueued(b *testing.B) {
	dsn := pgtest.Start(b)
	for _, n := range []int{0, 1000, 5000, 9000} {
		b.Run(fmt.Sprint("queued=", n), func(b *testing.B) {
			s := openSchema(b, dsn)
			defer s.Close()
			ctx := context.Background()
			s.CreateUser(ctx, "alice", nil)
			s.pool.Exec(ctx, `INSERT INTO offline (username, stanza_id, sender, stored, data) SELECT 'alice', 'x', 'y', now(), '\x00' FROM generate_series(1, $1)`, n)
			for b.Loop() {
				if _, err := s.StoreOffline(ctx, "alice", store.OfflineMessage{Stored: time.Now(), Data: []byte("x")}, 10_000_000); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}
