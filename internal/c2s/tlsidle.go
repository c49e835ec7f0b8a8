package c2s

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"unsafe"
)

// A *tls.Conn keeps its read buffers for its whole life: rawInput (the
// records read), input (the application data of the last one) and hand
// (handshake messages). They grow to the largest record met, and the
// largest is usually the ClientHello: 1.8 KB when a client offers ML-KEM
// key shares, as browsers do. crypto/tls has no way to give them back
// (Go issues 43563 and 81348), so a parked connection held ~3 KiB of
// empty buffers, a third of its cost (docs/benchmarks.md, "Ten kilobytes
// per idle session").
//
// releaseTLSReadBuffers empties them when they hold nothing: the next
// read allocates afresh, once per wake-up. It reaches the unexported
// fields through their offsets, found once by reflection with their exact
// names and types; if a Go release changes them, tlsBuffers is nil and
// nothing is released (TestTLSReadBuffersReleased fails, so the change is
// seen). It must run only while no Read is in progress (parking: the
// reading goroutine is the caller); writes do not touch these fields.
func releaseTLSReadBuffers(tc *tls.Conn) bool {
	if tlsBuffers == nil {
		return false
	}
	p := unsafe.Pointer(tc)
	raw := (*bytes.Buffer)(unsafe.Add(p, tlsBuffers.rawInput))
	in := (*bytes.Reader)(unsafe.Add(p, tlsBuffers.input))
	hand := (*bytes.Buffer)(unsafe.Add(p, tlsBuffers.hand))
	// A partial record or unread data stays where it is.
	if raw.Len() != 0 || in.Len() != 0 || hand.Len() != 0 {
		return false
	}
	*raw = bytes.Buffer{}
	*hand = bytes.Buffer{}
	in.Reset(nil) // it points into rawInput's old array
	return true
}

// tlsBuffers holds the offsets of tls.Conn's read buffers, or nil.
var tlsBuffers = func() *struct{ rawInput, input, hand uintptr } {
	t := reflect.TypeFor[tls.Conn]()
	off := func(name string, want reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		return f.Offset, ok && f.Type == want && len(f.Index) == 1
	}
	buf, rd := reflect.TypeFor[bytes.Buffer](), reflect.TypeFor[bytes.Reader]()
	raw, ok1 := off("rawInput", buf)
	in, ok2 := off("input", rd)
	hand, ok3 := off("hand", buf)
	if !ok1 || !ok2 || !ok3 {
		return nil
	}
	return &struct{ rawInput, input, hand uintptr }{raw, in, hand}
}()
