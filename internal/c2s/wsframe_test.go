package c2s

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"testing"
)

// clientFrame builds a masked client frame (RFC 6455 §5.2) the way a
// browser does, with any length encoding.
func clientFrame(fin bool, op byte, payload []byte, key [4]byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = binary.BigEndian.AppendUint16(append(b, 0x80|126), uint16(n))
	default:
		b = binary.BigEndian.AppendUint64(append(b, 0x80|127), uint64(n))
	}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i&3])
	}
	return b
}

// feedAll runs the reader over input cut at the given sizes (cycled),
// copying every frame it yields.
func feedAll(r *wsReader, input []byte, cuts []int) ([]wsFrame, error) {
	var out []wsFrame
	in := append([]byte(nil), input...) // feed unmasks in place
	for i := 0; len(in) > 0; i++ {
		k := len(in)
		if len(cuts) > 0 {
			k = min(max(cuts[i%len(cuts)], 1), len(in))
		}
		chunk := in[:k]
		in = in[k:]
		for len(chunk) > 0 {
			n, f, ok, err := r.feed(chunk)
			if err != nil {
				return out, err
			}
			chunk = chunk[n:]
			if ok {
				out = append(out, wsFrame{op: f.op, payload: append([]byte{}, f.payload...)})
			}
			if n == 0 && !ok {
				break
			}
		}
	}
	return out, nil
}

// A message fragmented in many frames with control frames between them
// comes out whole, in order after the controls, whatever the reads cut.
func TestWSReaderFragmentsAndControls(t *testing.T) {
	key := [4]byte{1, 2, 3, 4}
	msg := bytes.Repeat([]byte("<message>héllo</message>"), 20)
	var in []byte
	in = append(in, clientFrame(false, wsOpText, msg[:7], key)...)
	in = append(in, clientFrame(true, wsOpPing, []byte("p1"), key)...)
	in = append(in, clientFrame(false, wsOpCont, msg[7:300], [4]byte{9, 8, 7, 6})...)
	in = append(in, clientFrame(true, wsOpPong, nil, key)...)
	in = append(in, clientFrame(true, wsOpCont, msg[300:], key)...)
	in = append(in, clientFrame(true, wsOpText, []byte("<a/>"), key)...)
	in = append(in, clientFrame(true, wsOpClose, append([]byte{0x03, 0xe8}, "bye"...), key)...)
	for _, cuts := range [][]int{nil, {1}, {2, 3}, {13}, {500}} {
		var r wsReader
		r.max = 1 << 20
		got, err := feedAll(&r, in, cuts)
		if err != nil {
			t.Fatalf("cuts %v: %v", cuts, err)
		}
		want := []wsFrame{{wsOpPing, []byte("p1")}, {wsOpPong, nil}, {wsOpText, msg}, {wsOpText, []byte("<a/>")}, {wsOpClose, append([]byte{0x03, 0xe8}, "bye"...)}}
		if len(got) != len(want) {
			t.Fatalf("cuts %v: got %d frames, want %d", cuts, len(got), len(want))
		}
		for i := range want {
			if got[i].op != want[i].op || !bytes.Equal(got[i].payload, want[i].payload) {
				t.Fatalf("cuts %v: frame %d = %x %q, want %x %q", cuts, i, got[i].op, got[i].payload, want[i].op, want[i].payload)
			}
		}
	}
}

// Every RFC 6455 rule a client can break fails the connection with the
// right close code.
func TestWSReaderRejects(t *testing.T) {
	key := [4]byte{5, 6, 7, 8}
	unmasked := clientFrame(true, wsOpText, []byte("<a/>"), key)
	unmasked[1] &^= 0x80
	rsv := clientFrame(true, wsOpText, []byte("<a/>"), key)
	rsv[0] |= 0x40 // permessage-deflate was not negotiated
	huge := []byte{0x81, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}
	for _, c := range []struct {
		name string
		in   []byte
		code uint16
	}{
		{"unmasked", unmasked, wsCloseProtocol},
		{"reserved bits", rsv, wsCloseProtocol},
		{"unknown opcode", clientFrame(true, 0x3, nil, key), wsCloseProtocol},
		{"fragmented ping", clientFrame(false, wsOpPing, nil, key), wsCloseProtocol},
		{"long ping", clientFrame(true, wsOpPing, make([]byte, 126), key), wsCloseProtocol},
		{"continuation first", clientFrame(true, wsOpCont, []byte("x"), key), wsCloseProtocol},
		{"text inside text", append(clientFrame(false, wsOpText, []byte("x"), key), clientFrame(true, wsOpText, []byte("y"), key)...), wsCloseProtocol},
		{"too big in one frame", clientFrame(true, wsOpText, make([]byte, 101), key), wsCloseTooBig},
		{"too big in fragments", append(clientFrame(false, wsOpText, make([]byte, 60), key), clientFrame(true, wsOpCont, make([]byte, 41), key)...), wsCloseTooBig},
		{"length with the top bit", huge, wsCloseProtocol},
		{"close with one byte", clientFrame(true, wsOpClose, []byte{3}, key), wsCloseProtocol},
		{"close with a reserved code", clientFrame(true, wsOpClose, []byte{0x03, 0xed}, key), wsCloseProtocol},
		{"close reason not UTF-8", clientFrame(true, wsOpClose, []byte{0x03, 0xe8, 0xff}, key), wsCloseInvalidData},
	} {
		r := wsReader{max: 100}
		_, err := feedAll(&r, c.in, []int{3})
		var we *wsError
		if !errors.As(err, &we) || we.code != c.code {
			t.Errorf("%s: err %v, want close code %d", c.name, err, c.code)
		}
	}
}

// After a message, a parked reader holds no buffer.
func TestWSReaderIdleHoldsNothing(t *testing.T) {
	r := wsReader{max: 1 << 10}
	key := [4]byte{1, 1, 1, 1}
	in := append(clientFrame(false, wsOpText, []byte("<a>"), key), clientFrame(true, wsOpCont, []byte("</a>"), key)...)
	if _, err := feedAll(&r, in, []int{2}); err != nil {
		t.Fatal(err)
	}
	r.idle()
	if r.msg != nil || r.ctl != nil || r.inPayload || r.hn != 0 {
		t.Fatalf("idle reader keeps state: %+v", r)
	}
}

// FuzzWSReader: arbitrary bytes never panic or yield a message over the
// limit; and messages framed from the fuzzer's data — fragmented, with
// pings between fragments, read in the fuzzer's cuts — come out exactly.
func FuzzWSReader(f *testing.F) {
	f.Add([]byte("<message/>"), uint64(1), []byte{0x81, 0x85, 1, 2, 3, 4, 'a', 'b', 'c', 'd', 'e'})
	f.Add(bytes.Repeat([]byte("x"), 300), uint64(7), []byte{0x01, 0xfe, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, payload []byte, seed uint64, junk []byte) {
		const limit = 1 << 12
		rng := rand.New(rand.NewPCG(seed, seed>>3))
		var cuts []int
		for range 8 {
			cuts = append(cuts, 1+rng.IntN(40))
		}
		r := wsReader{max: limit}
		got, _ := feedAll(&r, junk, cuts)
		for _, fr := range got {
			if fr.op&0x8 == 0 && len(fr.payload) > limit {
				t.Fatalf("message of %d bytes over the %d limit", len(fr.payload), limit)
			}
			if fr.op&0x8 != 0 && len(fr.payload) > 125 {
				t.Fatalf("control frame of %d bytes", len(fr.payload))
			}
		}

		// The oracle: frame the payload ourselves.
		var in []byte
		rest := payload
		first := true
		var pings int
		for {
			k := len(rest)
			if k > 0 && rng.IntN(3) == 0 {
				k = rng.IntN(k)
			}
			var key [4]byte
			binary.LittleEndian.PutUint32(key[:], rng.Uint32())
			op := byte(wsOpCont)
			if first {
				op = wsOpText
			}
			fin := k == len(rest)
			in = append(in, clientFrame(fin, op, rest[:k], key)...)
			rest = rest[k:]
			first = false
			if fin {
				break
			}
			if rng.IntN(2) == 0 {
				in = append(in, clientFrame(true, wsOpPing, []byte{byte(pings)}, key)...)
				pings++
			}
		}
		r = wsReader{max: limit}
		got, err := feedAll(&r, in, cuts)
		if len(payload) > limit {
			var we *wsError
			if !errors.As(err, &we) || we.code != wsCloseTooBig {
				t.Fatalf("%d-byte message: err %v, want too big", len(payload), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != pings+1 {
			t.Fatalf("%d frames, want %d pings and the message", len(got), pings)
		}
		for i, fr := range got[:pings] {
			if fr.op != wsOpPing || len(fr.payload) != 1 || fr.payload[0] != byte(i) {
				t.Fatalf("frame %d = %x %v, want ping %d", i, fr.op, fr.payload, i)
			}
		}
		if m := got[pings]; m.op != wsOpText || !bytes.Equal(m.payload, payload) {
			t.Fatalf("message %q, want %q", m.payload, payload)
		}
	})
}
