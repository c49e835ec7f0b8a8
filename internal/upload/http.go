package upload

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Handler serves /upload/<slot id>/<file name>: PUT stores the file of a
// slot once, GET and HEAD serve it to anyone holding the link (the random
// slot id is the capability), OPTIONS answers CORS preflights so web
// clients on other origins can upload. Bodies stream both ways: memory per
// request is bounded whatever the file size.
func (s *Service) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", "*")
		h.Set("Access-Control-Allow-Methods", "OPTIONS, HEAD, GET, PUT")
		h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
		h.Set("Access-Control-Expose-Headers", "Content-Length, Content-Range, ETag")
		h.Set("Access-Control-Max-Age", "86400")
		h.Set("X-Content-Type-Options", "nosniff")
		switch r.Method {
		case http.MethodOptions:
			w.WriteHeader(http.StatusNoContent)
		case http.MethodPut:
			s.put(w, r)
		case http.MethodGet, http.MethodHead:
			s.get(w, r)
		default:
			h.Set("Allow", "OPTIONS, HEAD, GET, PUT")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		}
	})
}

func (s *Service) put(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, filename, err := parseSlotPath(r.URL.Path)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	tok := bearer(r.Header.Get("Authorization"))
	if tok == "" {
		http.Error(w, "missing upload token (Authorization: Bearer ...)", http.StatusForbidden)
		return
	}
	// The token is checked against itself first (cheap, no storage read)
	// so forged requests cost nothing; then against the slot.
	if _, _, err := parseToken(tok); err != nil {
		http.Error(w, "invalid upload token", http.StatusForbidden)
		return
	}
	slot, err := loadSlot(ctx, s.backend, id)
	if errors.Is(err, ErrNotFound) {
		http.Error(w, "invalid upload token", http.StatusForbidden)
		return
	}
	if err != nil {
		s.fail(w, "loading slot", err)
		return
	}
	switch err := s.signer.Verify(tok, slot.ID, slot.Size, slot.ContentType, s.now()); {
	case errors.Is(err, ErrTokenExpired):
		http.Error(w, "upload token expired; request a new slot", http.StatusForbidden)
		return
	case err != nil:
		http.Error(w, "invalid upload token", http.StatusForbidden)
		return
	}
	if filename != slot.Filename {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if slot.SHA256 != "" {
		http.Error(w, "this slot is already filled", http.StatusConflict)
		return
	}
	switch {
	case r.ContentLength < 0:
		http.Error(w, "Content-Length is required", http.StatusLengthRequired)
		return
	case r.ContentLength > slot.Size:
		http.Error(w, "body larger than the slot's size "+strconv.FormatInt(slot.Size, 10), http.StatusRequestEntityTooLarge)
		return
	case r.ContentLength != slot.Size:
		http.Error(w, "Content-Length must equal the slot's size "+strconv.FormatInt(slot.Size, 10), http.StatusBadRequest)
		return
	}
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		ct = "application/octet-stream"
	}
	if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != slot.ContentType {
		http.Error(w, "Content-Type must be "+slot.ContentType+" as announced in the slot request", http.StatusUnsupportedMediaType)
		return
	}
	if !s.claim(id) {
		http.Error(w, "this slot is being uploaded", http.StatusConflict)
		return
	}
	defer s.release(id)

	body := &idleReader{r: http.MaxBytesReader(w, r.Body, slot.Size), rc: http.NewResponseController(w), idle: s.bodyIdle}
	sum, err := s.store(ctx, slot, body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			http.Error(w, "body larger than the slot's size", http.StatusRequestEntityTooLarge)
			return
		}
		var ne net.Error
		if ctx.Err() != nil || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) && ne.Timeout() {
			s.log.Info("upload aborted", "slot", id, "err", err)
			http.Error(w, "upload incomplete", http.StatusBadRequest)
			return
		}
		s.fail(w, "storing upload", err)
		return
	}
	s.m.files.Inc()
	s.m.bytes.Add(float64(slot.Size))
	w.Header().Set("ETag", `"`+sum+`"`)
	w.WriteHeader(http.StatusCreated)
}

// store streams the body into tmp/<slot> while hashing it, records the hash
// in the slot and a reference refs/<sha256>/<slot>, then moves the object
// to blobs/<sha256>. Moving over an existing blob of the same hash replaces
// identical bytes and refreshes it, so the sweeper (which spares recently
// written blobs) cannot remove it under a new reference. Any failure
// removes the partial object.
func (s *Service) store(ctx context.Context, slot *Slot, body io.Reader) (string, error) {
	tmp := tmpKey(slot.ID)
	hr := &hashReader{r: body, h: sha256.New()}
	if err := s.backend.Put(ctx, tmp, hr, slot.Size); err != nil {
		s.backend.Delete(context.WithoutCancel(ctx), tmp)
		return "", err
	}
	if hr.n != slot.Size {
		s.backend.Delete(context.WithoutCancel(ctx), tmp)
		return "", io.ErrUnexpectedEOF
	}
	sum := hex.EncodeToString(hr.h.Sum(nil))
	// From here on the client has sent everything: finish even if it hangs
	// up now.
	ctx = context.WithoutCancel(ctx)
	filled := *slot
	filled.SHA256 = sum
	filled.Filled = s.now().UTC()
	// The reference exists before the blob does under its name, so a
	// concurrent sweep never sees the blob unreferenced.
	undo := func() {
		s.backend.Delete(ctx, tmp)
		s.backend.Delete(ctx, refKey(slot.ID, sum))
		saveSlot(ctx, s.backend, slot) // back to empty: the client may retry
	}
	if err := putSmall(ctx, s.backend, refKey(slot.ID, sum), nil); err != nil {
		undo()
		return "", err
	}
	if err := saveSlot(ctx, s.backend, &filled); err != nil {
		undo()
		return "", err
	}
	if err := s.backend.Move(ctx, tmp, blobKey(sum)); err != nil {
		undo()
		return "", err
	}
	return sum, nil
}

// idleReader pushes the connection's read deadline forward before each
// read, so a PUT may take as long as it needs while data flows, but a body
// that stops for idle is cut off.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
}

func (r *idleReader) Read(p []byte) (int, error) {
	r.rc.SetReadDeadline(time.Now().Add(r.idle))
	return r.r.Read(p)
}

type hashReader struct {
	r io.Reader
	h hash.Hash
	n int64
}

func (h *hashReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.h.Write(p[:n])
	h.n += int64(n)
	return n, err
}

func (s *Service) claim(id string) bool {
	s.putMu.Lock()
	defer s.putMu.Unlock()
	if s.putting[id] {
		return false
	}
	s.putting[id] = true
	return true
}

func (s *Service) release(id string) {
	s.putMu.Lock()
	delete(s.putting, id)
	s.putMu.Unlock()
}

// inlineTypes are shown in the browser; everything else is served as an
// attachment, so an uploaded HTML, SVG or script can never run in the
// server's origin (the CSP sandbox is the second fence).
func inline(mt string) bool {
	switch {
	case mt == "image/jpeg", mt == "image/png", mt == "image/gif", mt == "image/webp",
		mt == "image/avif", mt == "image/heic", mt == "image/heif", mt == "image/bmp",
		mt == "text/plain", mt == "application/pdf":
		return true
	case strings.HasPrefix(mt, "audio/"), strings.HasPrefix(mt, "video/"):
		return true
	}
	return false
}

func (s *Service) get(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	id, filename, err := parseSlotPath(r.URL.Path)
	if err != nil {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	slot, err := loadSlot(ctx, s.backend, id)
	if errors.Is(err, ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		s.fail(w, "loading slot", err)
		return
	}
	now := s.now()
	if slot.SHA256 == "" || filename != slot.Filename || !s.expires(slot).After(now) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	obj, err := s.backend.Get(ctx, blobKey(slot.SHA256))
	if errors.Is(err, ErrNotFound) {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	if err != nil {
		s.fail(w, "opening blob", err)
		return
	}
	defer obj.Close()
	h := w.Header()
	h.Set("Content-Type", slot.ContentType)
	disp := "attachment"
	if inline(slot.ContentType) {
		disp = "inline"
	}
	if cd := mime.FormatMediaType(disp, map[string]string{"filename": slot.Filename}); cd != "" {
		disp = cd
	}
	h.Set("Content-Disposition", disp)
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	h.Set("ETag", `"`+slot.SHA256+`"`)
	h.Set("Cache-Control", "public, max-age="+strconv.FormatInt(int64(s.expires(slot).Sub(now)/time.Second), 10)+", immutable")
	http.ServeContent(w, r, "", slot.Filled, obj)
}

func (s *Service) fail(w http.ResponseWriter, what string, err error) {
	s.log.Error("upload: "+what, "err", err)
	http.Error(w, "storage error", http.StatusInternalServerError)
}
