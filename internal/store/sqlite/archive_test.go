package sqlite

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"bluetick/internal/store"
)

// TestArchivePagingUsesIndex pins the query plans of archive paging: each
// page is a range scan of an index in archive order, never a sort of the
// user's whole archive (a temporary B-tree), whatever the filters.
func TestArchivePagingUsesIndex(t *testing.T) {
	s := openTemp(t)
	defer s.Close()
	for _, q := range []string{
		`SELECT id FROM archive WHERE user = ? AND (stored, seq) > (?, ?) ORDER BY stored, seq LIMIT 51`,
		`SELECT id FROM archive WHERE user = ? AND stored >= ? AND stored <= ? ORDER BY stored DESC, seq DESC LIMIT 51`,
		`SELECT id FROM archive WHERE user = ? AND with_bare = ? AND (stored, seq) < (?, ?) ORDER BY stored DESC, seq DESC LIMIT 51`,
	} {
		n := strings.Count(q, "?")
		args := make([]any, n)
		for i := range args {
			args[i] = 1
		}
		rows, err := s.db.Query(`EXPLAIN QUERY PLAN `+q, args...)
		if err != nil {
			t.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			rows.Scan(&id, &parent, &notused, &detail)
			plan = append(plan, detail)
		}
		rows.Close()
		p := strings.Join(plan, "; ")
		if strings.Contains(p, "TEMP B-TREE") || !strings.Contains(p, "INDEX archive_user_") {
			t.Errorf("plan of %s: %s", q, p)
		}
	}
}

// BenchmarkArchivePage measures one 50-message page deep inside a day of
// traffic (20,000 messages in the archive).
func BenchmarkArchivePage(b *testing.B) {
	s := openTemp(b)
	defer s.Close()
	ctx := b.Context()
	s.CreateUser(ctx, "alice", nil)
	t0 := time.Now().Add(-24 * time.Hour)
	var batch []store.ArchiveEntry
	for i := range 20000 {
		batch = append(batch, store.ArchiveEntry{User: "alice", ArchivedMessage: store.ArchivedMessage{
			ID: fmt.Sprintf("id%05d", i), With: fmt.Sprintf("c%d@localhost/r", i%20),
			Stored: t0.Add(time.Duration(i) * 4 * time.Second), Data: []byte("<message><body>hello there</body></message>")}})
		if len(batch) == 1000 {
			if err := s.AppendArchive(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = nil
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := s.QueryArchive(ctx, "alice", store.ArchiveQuery{Max: 50, After: []string{"id15000"}, With: "c3@localhost"})
		if err != nil || len(p.Messages) != 50 {
			b.Fatal(len(p.Messages), err)
		}
	}
}
