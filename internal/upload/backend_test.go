package upload

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sort"
	"strings"
	"testing"
)

func TestBackend(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			b := bk.new(t)
			ctx := context.Background()
			if _, err := b.Get(ctx, "meta/none.json"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("Get missing: %v, want ErrNotFound", err)
			}
			data := bytes.Repeat([]byte("0123456789"), 1000)
			if err := b.Put(ctx, "tmp/a", bytes.NewReader(data), int64(len(data))); err != nil {
				t.Fatal(err)
			}
			if err := b.Move(ctx, "tmp/a", "blobs/x"); err != nil {
				t.Fatal(err)
			}
			o, err := b.Get(ctx, "blobs/x")
			if err != nil {
				t.Fatal(err)
			}
			if o.Size() != int64(len(data)) {
				t.Fatalf("size %d", o.Size())
			}
			o.Seek(5000, io.SeekStart)
			got, _ := io.ReadAll(o)
			o.Close()
			if !bytes.Equal(got, data[5000:]) {
				t.Fatalf("seek+read: %d bytes, want %d", len(got), len(data)-5000)
			}
			if _, err := b.Get(ctx, "tmp/a"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("moved source still there: %v", err)
			}
			// A short body leaves nothing behind.
			if err := b.Put(ctx, "tmp/short", bytes.NewReader(data[:10]), 100); err == nil {
				t.Fatal("short body accepted")
			}
			if _, err := b.Get(ctx, "tmp/short"); !errors.Is(err, ErrNotFound) {
				t.Fatalf("partial object left: %v", err)
			}
			putSmall(ctx, b, "users/aa/1", nil)
			putSmall(ctx, b, "users/aa/2", nil)
			putSmall(ctx, b, "users/ab/3", nil)
			l, err := b.List(ctx, "users/aa/")
			if err != nil {
				t.Fatal(err)
			}
			var keys []string
			for _, e := range l {
				keys = append(keys, e.Key)
			}
			sort.Strings(keys)
			if strings.Join(keys, ",") != "users/aa/1,users/aa/2" {
				t.Fatalf("List = %v", keys)
			}
			if err := b.Delete(ctx, "users/aa/1"); err != nil {
				t.Fatal(err)
			}
			if err := b.Delete(ctx, "users/aa/1"); err != nil {
				t.Fatalf("deleting a missing key: %v", err)
			}
			for _, bad := range []string{"../x", "a/../../x", "/abs", "a//b", "a/./b", "sp ace", ""} {
				if err := b.Put(ctx, bad, strings.NewReader("x"), 1); err == nil {
					t.Errorf("Put(%q) accepted", bad)
				}
			}
		})
	}
}
