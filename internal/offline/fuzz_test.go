package offline

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzReadRecord: whatever a crash (or a disk) leaves in a segment,
// recovery reads it without panicking, and a record it accepts
// round-trips.
func FuzzReadRecord(f *testing.F) {
	m := message(1)
	f.Add(appendRecord(nil, kindInsert, 7, "bob", &m))
	f.Add(appendRecord(nil, kindTombstone, 7, "", nil))
	f.Add([]byte{0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bufio.NewReader(bytes.NewReader(b))
		for i := 0; i < 100; i++ {
			kind, seq, w, err := readRecord(r)
			if err != nil {
				return
			}
			if kind == kindInsert {
				again := appendRecord(nil, kindInsert, seq, w.User, w.Msg)
				_, seq2, w2, err := readRecord(bufio.NewReader(bytes.NewReader(again)))
				if err != nil || seq2 != seq || w2.User != w.User || !bytes.Equal(w2.Msg.Data, w.Msg.Data) {
					t.Fatalf("record does not round-trip: %v", err)
				}
			}
		}
	})
}
