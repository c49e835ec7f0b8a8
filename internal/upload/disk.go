package upload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Disk stores objects as files under a root directory, one file per key.
// Writes go to a temporary file in the same directory first and are renamed
// into place, so a reader never sees a half-written object and a crash
// leaves only a temp file (removed by the sweeper).
type Disk struct {
	root string
}

// NewDisk opens (creating) the storage directory.
func NewDisk(root string) (*Disk, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("upload storage %s: %v", root, err)
	}
	return &Disk{root: root}, nil
}

func (d *Disk) path(key string) (string, error) {
	if !validKey(key) {
		return "", fmt.Errorf("upload: invalid key %q", key)
	}
	return filepath.Join(d.root, filepath.FromSlash(key)), nil
}

func (d *Disk) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	f, err := d.createTemp(filepath.Dir(p))
	if err != nil {
		return err
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if err == nil && n != size {
		err = io.ErrUnexpectedEOF
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = d.rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// createTemp makes a temp file in dir, creating dir; it retries when a
// concurrent Delete pruned the directory in between.
func (d *Disk) createTemp(dir string) (f *os.File, err error) {
	for range 3 {
		if err = os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
		if f, err = os.CreateTemp(dir, ".put-*"); !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
	}
	return nil, err
}

// rename moves src to dst, creating dst's directory, with the same retry.
func (d *Disk) rename(src, dst string) (err error) {
	for range 3 {
		if err = os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return err
		}
		if err = os.Rename(src, dst); !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if _, serr := os.Stat(src); serr != nil {
			return ErrNotFound
		}
	}
	return err
}

type diskObject struct {
	*os.File
	info fs.FileInfo
}

func (o diskObject) Size() int64        { return o.info.Size() }
func (o diskObject) ModTime() time.Time { return o.info.ModTime() }

func (d *Disk) Get(ctx context.Context, key string) (Object, error) {
	p, err := d.path(key)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return diskObject{f, info}, nil
}

func (d *Disk) Move(ctx context.Context, src, dst string) error {
	ps, err := d.path(src)
	if err != nil {
		return err
	}
	pd, err := d.path(dst)
	if err != nil {
		return err
	}
	return d.rename(ps, pd)
}

func (d *Disk) Delete(ctx context.Context, key string) error {
	p, err := d.path(key)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err == nil && strings.Count(key, "/") == 2 {
		// Drop a user's index directory or a blob's reference directory
		// once empty: there is one per user and per blob. (os.Remove
		// fails on a non-empty directory.)
		os.Remove(filepath.Dir(p))
	}
	return err
}

// List walks the directory of the prefix's last slash; temp files of
// in-progress writes (".put-*") are not objects and are skipped.
func (d *Disk) List(ctx context.Context, prefix string) ([]Entry, error) {
	dir := d.root
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		p, err := d.path(prefix[:i])
		if err != nil {
			return nil, err
		}
		dir = p
	}
	var out []Entry
	err := filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if e.IsDir() || strings.HasPrefix(e.Name(), ".put-") {
			return nil
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !strings.HasPrefix(key, prefix) {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			return nil // removed meanwhile
		}
		out = append(out, Entry{Key: key, Size: info.Size(), ModTime: info.ModTime()})
		return nil
	})
	return out, err
}

// cleanTemp removes temporary files of writes that a crash interrupted.
func (d *Disk) cleanTemp(age time.Duration) {
	filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), ".put-") {
			if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > age {
				os.Remove(p)
			}
		}
		return nil
	})
}
