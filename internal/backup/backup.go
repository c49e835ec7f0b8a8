// Package backup copies a single node's state into one file while the
// server runs, and puts such a file back: the SQLite store, the messages
// the offline journal holds in its log (offline/segments.go) and the keys
// the server generated in its data directory. Uploaded files are not in
// it: they are copied with rsync (docs/operations.md). In cluster mode the
// state is in PostgreSQL, backed up with its own tools.
//
// # Why the copy is consistent
//
// An acknowledged message (the sender's ✓) is, at any instant, in the
// database, in the journal's log without a tombstone, or acked by its
// recipient's client. The log is read first, then the database is copied
// with VACUUM INTO, which sees one committed state. A message logged when
// the backup starts is found in the log; if its segment is gone by the
// time it is read, the message was acked by its recipient, or moved to
// the database — committed there before its segment could go — so the
// later database copy has it. A message in the database when the backup
// starts leaves it only when its recipient acks it. So every message
// acknowledged before the backup starts is in the backup or was
// delivered; the log's messages are merged into the copy's offline store
// (a seq already there is skipped), so the copy stands on its own.
package backup

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"bluetick/internal/offline"
	"bluetick/internal/store"
	"bluetick/internal/store/sqlite"
)

// Names inside a backup file, which is a tar archive (gzip-compressed
// when its name ends in .gz).
const (
	ManifestName = "bluetick-backup.json"
	DBName       = "bluetick.db"
)

// StateFiles are the files of the data directory a backup carries besides
// the database: the generated TLS certificate (clients pinned it), the
// Web Push VAPID key (browsers' subscriptions are bound to it), the
// upload token secret (links handed out stay valid) and the TURN secret.
// Each is included when it exists.
var StateFiles = []string{"cert.pem", "key.pem", "vapid.pem", "upload.secret", "turn-secret"}

// Manifest describes a backup; it is the archive's first entry.
type Manifest struct {
	Format      int       `json:"format"` // 1
	Created     time.Time `json:"created"`
	Version     string    `json:"bluetick_version"`
	Domain      string    `json:"domain"`
	DataDir     string    `json:"data_dir"`
	Users       int64     `json:"users"`
	Offline     int64     `json:"offline_messages"`
	FromJournal int       `json:"offline_from_journal"` // messages of the journal's log merged in
	DBBytes     int64     `json:"db_bytes"`
	Files       []string  `json:"files"`
	Note        string    `json:"note"`
}

// betweenLogAndSnapshot lets a test act between Create's two reads.
var betweenLogAndSnapshot func()

// Result is what Create did.
type Result struct {
	Manifest
	Bytes int64         // size of the backup file
	Took  time.Duration // from start to the file in place
}

// Create writes a backup of the data directory dataDir (database dbPath)
// to file, which must not exist. It works while a server runs there,
// without stopping it (see the package doc); version and domain go into
// the manifest.
func Create(ctx context.Context, dataDir, dbPath, file, version, domain string) (Result, error) {
	start := time.Now()
	res := Result{Manifest: Manifest{Format: 1, Created: start.UTC(), Version: version, Domain: domain, DataDir: dataDir,
		Note: "uploaded files are not included: copy the upload directory with rsync (docs/operations.md)"}}
	if _, err := os.Stat(dbPath); err != nil {
		return res, fmt.Errorf("no database at %s (is --data or data_dir right?)", dbPath)
	}
	if _, err := os.Lstat(file); err == nil {
		return res, fmt.Errorf("%s exists; choose a new name (backups are never overwritten)", file)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(file), ".bluetick-backup-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(tmp)

	// The log first, then the database: see the package doc.
	pending, err := offline.Unacked(filepath.Join(dataDir, "journal"))
	if err != nil {
		return res, fmt.Errorf("reading the journal's log: %v", err)
	}
	if betweenLogAndSnapshot != nil {
		betweenLogAndSnapshot()
	}
	copyPath := filepath.Join(tmp, DBName)
	if err := sqlite.Snapshot(ctx, dbPath, copyPath); err != nil {
		return res, err
	}
	if len(pending) > 0 {
		if res.FromJournal, err = merge(ctx, copyPath, pending); err != nil {
			return res, err
		}
	}
	sum, err := sqlite.Seal(ctx, copyPath)
	if err != nil {
		return res, err
	}
	res.Users, res.Offline, res.DBBytes = sum.Users, sum.Offline, sum.Bytes
	var extra []string
	for _, name := range StateFiles {
		if fi, err := os.Stat(filepath.Join(dataDir, name)); err == nil && fi.Mode().IsRegular() {
			extra = append(extra, name)
		}
	}
	res.Files = append([]string{DBName}, extra...)

	partial := file + ".partial"
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) // password hashes and keys
	if err != nil {
		return res, err
	}
	err = writeArchive(f, strings.HasSuffix(file, ".gz"), res.Manifest, copyPath, dataDir, extra)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(partial, file)
	}
	if err != nil {
		os.Remove(partial)
		return res, fmt.Errorf("writing %s: %v", file, err)
	}
	syncDir(filepath.Dir(file))
	if fi, err := os.Stat(file); err == nil {
		res.Bytes = fi.Size()
	}
	res.Took = time.Since(start)
	return res, nil
}

// merge puts the journal's unacknowledged messages into the copy's
// offline store, under the seqs the log gave them, and returns how many
// were written (a message whose account was deleted is not).
func merge(ctx context.Context, path string, pending []*store.OfflineWrite) (int, error) {
	st, err := sqlite.Open(path)
	if err != nil {
		return 0, err
	}
	defer st.Close()
	n := 0
	for i := 0; i < len(pending); i += 1000 {
		chunk := pending[i:min(i+1000, len(pending))]
		if err := st.ApplyOffline(ctx, chunk); err != nil {
			return 0, fmt.Errorf("merging the journal's messages into the copy: %v", err)
		}
		for _, w := range chunk {
			if w.Err == nil {
				n++
			}
		}
	}
	return n, st.Close()
}

func writeArchive(w io.Writer, compress bool, m Manifest, dbCopy, dataDir string, extra []string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var out io.Writer = bw
	var gz *gzip.Writer
	if compress {
		gz = gzip.NewWriter(bw)
		out = gz
	}
	tw := tar.NewWriter(out)
	js, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	js = append(js, '\n')
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(js)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	if _, err := tw.Write(js); err != nil {
		return err
	}
	add := func(name, path string) error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		mode := int64(fi.Mode().Perm() & 0o644) // cert.pem stays readable, keys stay private
		if name == DBName {
			mode = 0o600
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err = io.Copy(tw, f)
		return err
	}
	if err := add(DBName, dbCopy); err != nil {
		return err
	}
	for _, name := range extra {
		if err := add(name, filepath.Join(dataDir, name)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if gz != nil {
		if err := gz.Close(); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// RestoreResult is what Restore did.
type RestoreResult struct {
	Manifest
	Aside string // where the data directory's previous state went, "" if there was none
}

// Restore puts the backup in file into the data directory dataDir
// (database dbPath must be dataDir/bluetick.db). It refuses while a server
// runs there (ErrRunning). The database, its WAL, the journal's log and
// each state file the backup replaces are moved to a before-restore-TIME
// directory inside dataDir first, never deleted; the backup is unpacked
// and checked (SQLite's quick_check) before anything is moved.
func Restore(ctx context.Context, file, dataDir string) (RestoreResult, error) {
	var res RestoreResult
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return res, err
	}
	unlock, err := Lock(dataDir)
	if err != nil {
		return res, err
	}
	defer unlock()
	stamp := time.Now().UTC().Format("20060102T150405Z")
	stage, err := os.MkdirTemp(dataDir, ".restore-")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(stage)
	if res.Manifest, err = unpack(file, stage); err != nil {
		return res, fmt.Errorf("%s: %v", file, err)
	}
	if _, err := sqlite.Seal(ctx, filepath.Join(stage, DBName)); err != nil {
		return res, fmt.Errorf("%s: the database in it: %v", file, err)
	}

	aside := filepath.Join(dataDir, "before-restore-"+stamp)
	for n := 2; ; n++ { // two restores within a second
		if _, err := os.Lstat(aside); errors.Is(err, os.ErrNotExist) {
			break
		}
		aside = filepath.Join(dataDir, fmt.Sprintf("before-restore-%s-%d", stamp, n))
	}
	moved := false
	moveAside := func(name string) error {
		p := filepath.Join(dataDir, name)
		if _, err := os.Lstat(p); errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if !moved {
			if err := os.Mkdir(aside, 0o700); err != nil {
				return err
			}
			moved = true
		}
		return os.Rename(p, filepath.Join(aside, name))
	}
	// The journal's log belongs to the old database: started on the
	// restored one, a server would move its messages there.
	for _, name := range append([]string{DBName, DBName + "-wal", DBName + "-shm", "journal"}, res.Files...) {
		if err := moveAside(name); err != nil {
			return res, fmt.Errorf("moving the previous %s aside: %v", name, err)
		}
	}
	if moved {
		res.Aside = aside
	}
	for _, name := range res.Files {
		if err := os.Rename(filepath.Join(stage, name), filepath.Join(dataDir, name)); err != nil {
			return res, fmt.Errorf("putting %s in place: %v (the previous state is in %s)", name, err, aside)
		}
	}
	syncDir(dataDir)
	return res, nil
}

// unpack extracts the backup in file into dir and returns its manifest.
// Only the names a backup holds are accepted.
func unpack(file, dir string) (Manifest, error) {
	var m Manifest
	f, err := os.Open(file)
	if err != nil {
		return m, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var r io.Reader = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return m, err
		}
		r = gz
	}
	allowed := map[string]bool{DBName: true}
	for _, n := range StateFiles {
		allowed[n] = true
	}
	tr := tar.NewReader(r)
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return m, fmt.Errorf("not a Bluetick backup (tar): %v", err)
		}
		switch {
		case h.Name == ManifestName:
			if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&m); err != nil {
				return m, fmt.Errorf("manifest: %v", err)
			}
			if m.Format != 1 {
				return m, fmt.Errorf("backup format %d is not known to this version", m.Format)
			}
			continue
		case !allowed[h.Name] || h.Typeflag != tar.TypeReg:
			return m, fmt.Errorf("unexpected entry %q: not a Bluetick backup", h.Name)
		}
		out, err := os.OpenFile(filepath.Join(dir, h.Name), os.O_WRONLY|os.O_CREATE|os.O_EXCL, os.FileMode(h.Mode).Perm()&0o644|0o600)
		if err != nil {
			return m, err
		}
		_, err = io.Copy(out, tr)
		if err == nil {
			err = out.Sync()
		}
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return m, err
		}
		seen[h.Name] = true
	}
	if m.Format == 0 {
		return m, errors.New("no manifest: not a Bluetick backup")
	}
	if !seen[DBName] {
		return m, errors.New("no database in it")
	}
	for _, n := range m.Files {
		if !seen[n] {
			return m, fmt.Errorf("%s is listed but missing (truncated file?)", n)
		}
	}
	return m, nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
