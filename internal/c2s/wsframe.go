package c2s

import (
	"encoding/binary"
	"unicode/utf8"
)

// WebSocket framing, server side (RFC 6455 §5). A library's reader would
// own the connection and block a goroutine in it; this one is fed
// whatever bytes a read returned and keeps between feeds only the state a
// parked connection needs to resume mid-frame: a partial header (at most
// 14 bytes), the mask and the bytes left of the current frame, and the
// fragments of a message not yet complete.

// Opcodes (RFC 6455 §5.2).
const (
	wsOpCont   = 0x0
	wsOpText   = 0x1
	wsOpBinary = 0x2
	wsOpClose  = 0x8
	wsOpPing   = 0x9
	wsOpPong   = 0xA
)

// Close codes (RFC 6455 §7.4.1).
const (
	wsCloseNormal      = 1000
	wsCloseProtocol    = 1002
	wsCloseInvalidData = 1007
	wsClosePolicy      = 1008
	wsCloseTooBig      = 1009
)

// wsError is a violation of RFC 6455 by the client: the connection is
// failed with a Close frame carrying code (§7.1.7).
type wsError struct {
	code uint16
	text string
}

func (e *wsError) Error() string { return "websocket: " + e.text }

// wsFrame is what the reader yields: a complete data message (text or
// binary, fragments joined) or a control frame.
type wsFrame struct {
	op      byte
	payload []byte // unmasked; valid until the next feed
}

// wsReader parses client-to-server frames: masked, with the fragmentation
// and control-frame rules of RFC 6455 §5.4-5.5, messages bounded by max.
type wsReader struct {
	max int // largest message accepted

	hdr  [14]byte // the header being read
	hn   uint8    // bytes of hdr read
	need uint8    // length of the header, once its second byte is known

	inPayload bool
	op        byte // opcode of the current frame
	fin       bool
	mask      [4]byte
	mpos      int    // payload bytes of the current frame unmasked so far
	left      uint64 // payload bytes of the current frame still to come

	msgOp byte   // opcode of the message being assembled, 0 when none
	msg   []byte // fragments of that message so far
	ctl   []byte // a control frame split across reads
}

// feed consumes bytes of p until it completes a message or a control frame
// (ok true) or p is used up. n is the number of bytes consumed; the rest
// of p is for the next call. Payloads are unmasked in place in p.
func (r *wsReader) feed(p []byte) (n int, f wsFrame, ok bool, err error) {
	for {
		if !r.inPayload {
			for r.need == 0 || r.hn < r.need {
				if n == len(p) {
					return n, wsFrame{}, false, nil
				}
				r.hdr[r.hn] = p[n]
				r.hn++
				n++
				if r.hn == 2 {
					r.need = 6 // 2 + the masking key
					switch r.hdr[1] & 0x7f {
					case 126:
						r.need += 2
					case 127:
						r.need += 8
					}
				}
			}
			if err := r.header(); err != nil {
				return n, wsFrame{}, false, err
			}
		}
		control := r.op&0x8 != 0
		if avail := uint64(len(p) - n); avail < r.left {
			// Part of the payload: keep it and wait for more.
			seg := p[n:]
			r.unmask(seg)
			r.left -= avail
			if control {
				r.ctl = append(r.ctl, seg...)
			} else {
				r.msg = append(r.msg, seg...)
			}
			return len(p), wsFrame{}, false, nil
		}
		seg := p[n : n+int(r.left)]
		n += int(r.left)
		r.unmask(seg)
		r.left = 0
		r.inPayload = false
		if control {
			payload := seg
			if len(r.ctl) > 0 {
				r.ctl = append(r.ctl, seg...)
				payload = r.ctl
				r.ctl = r.ctl[:0]
			}
			if r.op == wsOpClose {
				if err := checkClosePayload(payload); err != nil {
					return n, wsFrame{}, false, err
				}
			}
			return n, wsFrame{op: r.op, payload: payload}, true, nil
		}
		if !r.fin {
			r.msg = append(r.msg, seg...)
			continue
		}
		op := r.msgOp
		r.msgOp = 0
		if len(r.msg) == 0 {
			// The common case, a message in one frame within one read:
			// no copy at all.
			return n, wsFrame{op: op, payload: seg}, true, nil
		}
		r.msg = append(r.msg, seg...)
		payload := r.msg
		r.msg = r.msg[:0]
		return n, wsFrame{op: op, payload: payload}, true, nil
	}
}

// header checks the complete header in r.hdr and starts its payload.
func (r *wsReader) header() error {
	b0, b1 := r.hdr[0], r.hdr[1]
	r.fin = b0&0x80 != 0
	r.op = b0 & 0x0f
	length := uint64(b1 & 0x7f)
	i := 2
	switch length {
	case 126:
		length = uint64(binary.BigEndian.Uint16(r.hdr[2:]))
		i = 4
	case 127:
		length = binary.BigEndian.Uint64(r.hdr[2:])
		i = 10
	}
	copy(r.mask[:], r.hdr[i:i+4])
	r.hn, r.need = 0, 0
	switch {
	case b0&0x70 != 0:
		return &wsError{wsCloseProtocol, "reserved bits set (no extension was negotiated)"}
	case b1&0x80 == 0:
		return &wsError{wsCloseProtocol, "client frames must be masked"}
	case length>>63 != 0:
		return &wsError{wsCloseProtocol, "frame length out of range"}
	}
	switch r.op {
	case wsOpClose, wsOpPing, wsOpPong:
		if !r.fin {
			return &wsError{wsCloseProtocol, "fragmented control frame"}
		}
		if length > 125 {
			return &wsError{wsCloseProtocol, "control frame longer than 125 bytes"}
		}
	case wsOpText, wsOpBinary:
		if r.msgOp != 0 {
			return &wsError{wsCloseProtocol, "new message before the last fragment of the previous one"}
		}
		r.msgOp = r.op
	case wsOpCont:
		if r.msgOp == 0 {
			return &wsError{wsCloseProtocol, "continuation frame without a message"}
		}
	default:
		return &wsError{wsCloseProtocol, "unknown opcode"}
	}
	if r.op&0x8 == 0 && uint64(len(r.msg))+length > uint64(r.max) {
		return &wsError{wsCloseTooBig, "message larger than the limit"}
	}
	r.left = length
	r.mpos = 0
	r.inPayload = true
	return nil
}

// unmask XORs seg, the next bytes of the current frame's payload, with
// the masking key (RFC 6455 §5.3).
func (r *wsReader) unmask(seg []byte) {
	k := r.mpos & 3
	for i := range seg {
		seg[i] ^= r.mask[(k+i)&3]
	}
	r.mpos += len(seg)
}

// idle drops buffers that hold nothing, so a parked connection keeps only
// the fixed-size state above.
func (r *wsReader) idle() {
	if len(r.msg) == 0 {
		r.msg = nil
	}
	if len(r.ctl) == 0 {
		r.ctl = nil
	}
}

// checkClosePayload applies RFC 6455 §5.5.1 and §7.4: no payload, or a
// status code a peer may send followed by UTF-8 text.
func checkClosePayload(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	if len(p) == 1 {
		return &wsError{wsCloseProtocol, "close frame with a one-byte payload"}
	}
	if !validCloseCode(binary.BigEndian.Uint16(p)) {
		return &wsError{wsCloseProtocol, "close frame with an invalid status code"}
	}
	if !utf8.Valid(p[2:]) {
		return &wsError{wsCloseInvalidData, "close reason is not UTF-8"}
	}
	return nil
}

// validCloseCode: the codes of §7.4.1 that may appear on the wire, and
// the ranges for libraries and applications.
func validCloseCode(c uint16) bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1011, c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// appendWSHeader appends the header of an unmasked, final server frame.
func appendWSHeader(b []byte, op byte, n int) []byte {
	b = append(b, 0x80|op)
	switch {
	case n < 126:
		return append(b, byte(n))
	case n <= 0xffff:
		return binary.BigEndian.AppendUint16(append(b, 126), uint16(n))
	}
	return binary.BigEndian.AppendUint64(append(b, 127), uint64(n))
}

// appendWSClose appends a Close frame; code 0 sends none.
func appendWSClose(b []byte, code uint16, reason string) []byte {
	if code == 0 {
		return appendWSHeader(b, wsOpClose, 0)
	}
	if len(reason) > 123 {
		reason = reason[:123]
		for !utf8.ValidString(reason) {
			reason = reason[:len(reason)-1]
		}
	}
	b = appendWSHeader(b, wsOpClose, 2+len(reason))
	b = binary.BigEndian.AppendUint16(b, code)
	return append(b, reason...)
}
