package timed

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"bluetick/internal/metrics"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
	"bluetick/internal/store/storetest"
)

// TestGenerated: timed_gen.go is what gen.go makes of store.Store today.
func TestGenerated(t *testing.T) {
	// gen.go is a main package behind a build tag: it is run, not linked.
	want, err := exec.Command("go", "run", "gen.go", "-stdout").Output()
	if err != nil {
		t.Fatalf("go run gen.go: %v", err)
	}
	have, err := os.ReadFile("timed_gen.go")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(have, want) {
		t.Fatal("timed_gen.go is stale: run go generate ./internal/store/timed")
	}
}

// The wrapped store passes the whole store contract and times what it
// does.
func TestContract(t *testing.T) {
	open := func(t *testing.T) *Store {
		st, err := sqlite.Open(filepath.Join(t.TempDir(), "bluetick.db"))
		if err != nil {
			t.Fatal(err)
		}
		return New(st, "sqlite")
	}
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })

	st := open(t)
	defer st.Close()
	if err := st.CreateUser(context.Background(), "alice", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := st.OfflineSeqBase(context.Background()); err != nil {
		t.Errorf("OfflineSeqBase through the wrapper: %v", err)
	}
	text, err := metrics.Text(st.Collector())
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"CreateUser", "OfflineSeqBase"} {
		if !strings.Contains(text, `bluetick_store_seconds_count{backend="sqlite",op="`+op+`"} 1`) {
			t.Errorf("%s not timed once:\n%.2000s", op, text)
		}
	}
}
