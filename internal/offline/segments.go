package offline

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"bluetick/internal/store"
)

// segments is the journal's append-only log on a single node (SQLite): a
// message handed to a live session is made durable by one append and one
// fdatasync shared by the whole batch, not by a row in the database. Most
// such messages are acked by their recipient seconds later; the ack
// appends a tombstone (no sync of its own), and a segment whose every
// message is acked or moved to the database is deleted. A message still
// unacked when its session ends, or when its segment grows old, moves to
// the database (spill), where the offline drain finds it. At startup,
// whatever a crash left in the segments without a tombstone goes to the
// database before the server takes clients.
//
// A cluster does not use it: a node's disk dies with the node, and the
// other nodes must find every acknowledged message in PostgreSQL.
type segments struct {
	dir  string
	f    *os.File
	num  int   // current segment
	size int64 // bytes in the current segment
	segs map[int]*segment
}

// segment is one file's bookkeeping: the records logged in it and not yet
// tombstoned.
type segment struct {
	opened time.Time
	live   map[*Record]struct{}
}

// segmentMax is the size at which a new segment starts.
const segmentMax = 32 << 20

// spillAge is how long a closed segment may keep unacked records before
// they move to the database, so old segments do not pile up behind a
// client that never acks.
const spillAge = 30 * time.Second

// Record kinds in a segment.
const (
	kindInsert    = 1
	kindTombstone = 2
)

// openSegments makes dir if needed; the caller recovers what is in it
// (recoverSegments) before it starts a segment.
func openSegments(dir string) (*segments, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return &segments{dir: dir, segs: map[int]*segment{}}, nil
}

func segName(num int) string { return fmt.Sprintf("%09d.log", num) }

// listSegments returns the segment numbers in dir, oldest first.
func listSegments(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var nums []int
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".log") {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSuffix(name, ".log"))
		if err == nil {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	return nums, nil
}

// recoverSegments reads every segment of dir and returns the inserts
// without a tombstone, in seq order, the highest seq seen, and the segment
// numbers read (to delete once the inserts are in the database). A torn
// record at the end of a segment (a crash during a write) ends that
// segment: it was never synced, so never acknowledged.
func recoverSegments(dir string) (pending []*store.OfflineWrite, maxSeq int64, nums []int, err error) {
	nums, err = listSegments(dir)
	if err != nil {
		return nil, 0, nil, err
	}
	ins := map[int64]*store.OfflineWrite{}
	for _, n := range nums {
		f, err := os.Open(filepath.Join(dir, segName(n)))
		if errors.Is(err, os.ErrNotExist) {
			continue // a running server deleted it: nothing in it was unacked (see Unacked)
		}
		if err != nil {
			return nil, 0, nil, err
		}
		r := bufio.NewReaderSize(f, 1<<20)
		for {
			kind, seq, w, err := readRecord(r)
			if err != nil {
				break // io.EOF or a torn tail
			}
			maxSeq = max(maxSeq, seq)
			switch kind {
			case kindInsert:
				ins[seq] = w
			case kindTombstone:
				delete(ins, seq)
			}
		}
		f.Close()
	}
	for _, w := range ins {
		pending = append(pending, w)
	}
	sort.Slice(pending, func(i, j int) bool { return pending[i].Seq < pending[j].Seq })
	return pending, maxSeq, nums, nil
}

// Record layout: length u32 (of what follows, CRC included), kind u8,
// seq i64, then for an insert: user, stanza-id, from (u16 length + bytes
// each), stored (i64 Unix µs), data (u32 length + bytes); last a CRC-32
// (Castagnoli) of kind through the end of the body.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var errTorn = errors.New("offline: torn segment record")

func appendRecord(b []byte, kind byte, seq int64, user string, m *store.OfflineMessage) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0, kind)
	b = binary.LittleEndian.AppendUint64(b, uint64(seq))
	if kind == kindInsert {
		for _, s := range []string{user, m.StanzaID, m.From} {
			b = binary.LittleEndian.AppendUint16(b, uint16(len(s)))
			b = append(b, s...)
		}
		b = binary.LittleEndian.AppendUint64(b, uint64(m.Stored.UnixMicro()))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(m.Data)))
		b = append(b, m.Data...)
	}
	b = binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start+4:], castagnoli))
	binary.LittleEndian.PutUint32(b[start:], uint32(len(b)-start-4))
	return b
}

func readRecord(r *bufio.Reader) (kind byte, seq int64, w *store.OfflineWrite, err error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, 0, nil, err
	}
	n := binary.LittleEndian.Uint32(hdr[:])
	if n < 13 || n > 64<<20 {
		return 0, 0, nil, errTorn
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, 0, nil, errTorn
	}
	payload, sum := body[:n-4], binary.LittleEndian.Uint32(body[n-4:])
	if crc32.Checksum(payload, castagnoli) != sum {
		return 0, 0, nil, errTorn
	}
	kind, seq = payload[0], int64(binary.LittleEndian.Uint64(payload[1:9]))
	if kind != kindInsert {
		return kind, seq, nil, nil
	}
	p := payload[9:]
	var strs [3]string
	for i := range strs {
		if len(p) < 2 {
			return 0, 0, nil, errTorn
		}
		l := int(binary.LittleEndian.Uint16(p))
		if len(p) < 2+l {
			return 0, 0, nil, errTorn
		}
		strs[i], p = string(p[2:2+l]), p[2+l:]
	}
	if len(p) < 12 {
		return 0, 0, nil, errTorn
	}
	stored := time.UnixMicro(int64(binary.LittleEndian.Uint64(p))).UTC()
	l := int(binary.LittleEndian.Uint32(p[8:]))
	if len(p) != 12+l {
		return 0, 0, nil, errTorn
	}
	m := &store.OfflineMessage{StanzaID: strs[1], From: strs[2], Stored: stored, Data: append([]byte(nil), p[12:]...)}
	return kind, seq, &store.OfflineWrite{User: strs[0], Msg: m, Seq: seq}, nil
}

// start opens segment num for appending.
func (s *segments) start(num int) error {
	f, err := os.OpenFile(filepath.Join(s.dir, segName(num)), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if s.f != nil {
		s.f.Close()
	}
	s.f, s.num, s.size = f, num, 0
	s.segs[num] = &segment{opened: time.Now(), live: map[*Record]struct{}{}}
	// The new file's name must survive a crash too.
	if d, err := os.Open(s.dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// write appends buf and makes it durable.
func (s *segments) write(buf []byte) error {
	if len(buf) == 0 {
		return nil
	}
	if _, err := s.f.Write(buf); err != nil {
		return err
	}
	s.size += int64(len(buf))
	return s.f.Sync()
}

// release forgets rec in the segment that logged it and deletes closed
// segments that hold nothing live any more.
func (s *segments) release(rec *Record) {
	if seg := s.segs[rec.seg]; seg != nil {
		delete(seg.live, rec)
	}
	s.collect()
}

// collect deletes every closed segment with nothing live.
func (s *segments) collect() {
	for num, seg := range s.segs {
		if num != s.num && len(seg.live) == 0 {
			os.Remove(filepath.Join(s.dir, segName(num)))
			delete(s.segs, num)
		}
	}
}

// old returns the records of closed segments older than spillAge.
func (s *segments) old() []*Record {
	var out []*Record
	for num, seg := range s.segs {
		if num != s.num && time.Since(seg.opened) > spillAge {
			for r := range seg.live {
				out = append(out, r)
			}
		}
	}
	return out
}

func (s *segments) close() {
	if s.f != nil {
		s.f.Close()
		s.f = nil
	}
	s.collect()
	if seg := s.segs[s.num]; seg != nil && len(seg.live) == 0 {
		os.Remove(filepath.Join(s.dir, segName(s.num)))
		delete(s.segs, s.num)
	}
}

// Unacked returns the messages logged in dir that no tombstone covers, in
// seq order: what the next start would move to the store. It may run while
// a server appends to the log (bluetick backup). A segment deleted meanwhile
// is skipped: each of its messages was acked by its recipient or moved to
// the store (committed there before its tombstone was written). A record
// being written at the end of a segment reads as torn and is left out: it
// is not synced yet, so not acknowledged to its sender either.
func Unacked(dir string) ([]*store.OfflineWrite, error) {
	pending, _, _, err := recoverSegments(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil // no log: durable delivery off, or never started
	}
	return pending, err
}
