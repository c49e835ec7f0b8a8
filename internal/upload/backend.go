package upload

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"
)

// ErrNotFound is returned by a Backend for a key that does not exist.
var ErrNotFound = errors.New("upload: object not found")

// Backend is object storage: everything the service keeps, blobs and the
// slot metadata alike, goes through it, so nodes sharing one backend share
// all state (cluster mode needs nothing else). Keys are internal names made
// by this package ("blobs/<sha256>", "meta/<slot>.json", ...), checked by
// validKey; user input never becomes a key.
type Backend interface {
	// Put stores exactly size bytes read from r under key, streaming. On
	// any error nothing is left under key.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// Get opens key for reading; the Object seeks (Range requests) without
	// loading the whole object.
	Get(ctx context.Context, key string) (Object, error)
	// Move renames src to dst, replacing dst.
	Move(ctx context.Context, src, dst string) error
	// Delete removes key; a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List returns the objects whose key starts with prefix.
	List(ctx context.Context, prefix string) ([]Entry, error)
}

// Object is an open stored object.
type Object interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// Entry is one listed object.
type Entry struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// validKey accepts only the keys this package makes: slash-separated
// segments of [A-Za-z0-9._-], none of them "." or "..", so a key can never
// name a path outside the storage root whatever the backend does with it.
func validKey(key string) bool {
	if key == "" || len(key) > 512 {
		return false
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return false
			}
		}
	}
	return true
}

// readSmall reads a whole small object (slot metadata).
func readSmall(ctx context.Context, b Backend, key string) ([]byte, error) {
	o, err := b.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer o.Close()
	return io.ReadAll(io.LimitReader(o, 1<<20))
}

// putSmall writes a small object from memory.
func putSmall(ctx context.Context, b Backend, key string, data []byte) error {
	return b.Put(ctx, key, strings.NewReader(string(data)), int64(len(data)))
}
