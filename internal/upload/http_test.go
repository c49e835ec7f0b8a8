package upload

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"bluetick/internal/jid"
	"bluetick/internal/server"
	"bluetick/internal/stanza"
	"bluetick/internal/xmlstream"
)

// env is one service on one backend behind a real HTTP server, with a
// clock the test moves.
type env struct {
	t   testing.TB
	svc *Service
	b   Backend
	srv *httptest.Server
	now time.Time
}

func newEnv(t testing.TB, newBackend func(testing.TB) Backend, lim Limits) *env {
	t.Helper()
	e := &env{t: t, b: newBackend(t), now: time.Now()}
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	svc, err := New(e.b, testSecret, e.srv.URL, lim, nil)
	if err != nil {
		t.Fatal(err)
	}
	svc.now = func() time.Time { return e.now }
	e.svc = svc
	mux := http.NewServeMux()
	mux.Handle("/upload/", svc.Handler())
	e.srv.Config.Handler = mux
	return e
}

func defaultLimits() Limits {
	return Limits{MaxFileSize: 10 << 20, Quota: 1 << 30, UploadsPerHour: 100, Expiry: 30 * 24 * time.Hour, TokenLifetime: 5 * time.Minute}
}

type slotResp struct {
	put, get, auth string
}

// request asks for a slot through the IQ handler, as a client would.
func (e *env) request(user, filename string, size int64, ctype string) (slotResp, error) {
	e.t.Helper()
	req := xmlstream.New(NS, "request", "filename", filename, "size", fmt.Sprint(size))
	if ctype != "" {
		req.SetAttr("content-type", ctype)
	}
	res, err := e.svc.handleRequest(context.Background(), &server.IQ{From: jid.MustParse(user + "@localhost/phone"), To: jid.MustParse("localhost"), Type: "get", Payload: req})
	if err != nil {
		return slotResp{}, err
	}
	put := res.Child(NS, "put")
	get := res.Child(NS, "get")
	if put == nil || get == nil {
		e.t.Fatalf("slot without put/get: %s", res)
	}
	h := put.Child(NS, "header")
	if h == nil || h.Attr("name") != "Authorization" {
		e.t.Fatalf("slot without Authorization header: %s", res)
	}
	return slotResp{put: put.Attr("url"), get: get.Attr("url"), auth: h.Text()}, nil
}

func (e *env) mustSlot(user, filename string, size int64, ctype string) slotResp {
	e.t.Helper()
	s, err := e.request(user, filename, size, ctype)
	if err != nil {
		e.t.Fatalf("slot request: %v", err)
	}
	return s
}

func (e *env) put(s slotResp, body []byte, ctype string, hdr ...string) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest("PUT", s.put, bytes.NewReader(body))
	req.Header.Set("Authorization", s.auth)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func (e *env) do(method, url string, hdr ...string) (*http.Response, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func wantStatus(t testing.TB, what string, resp *http.Response, code int) {
	t.Helper()
	if resp.StatusCode != code {
		t.Fatalf("%s: status %d, want %d", what, resp.StatusCode, code)
	}
}

func wantStanzaError(t *testing.T, err error, cond string) *stanza.Error {
	t.Helper()
	se, ok := err.(*stanza.Error)
	if !ok || se.Condition != cond {
		t.Fatalf("error %v, want stanza error %s", err, cond)
	}
	return se
}

// TestHTTP runs the behaviour suite on every backend.
func TestHTTP(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			t.Run("PutGetIdentical", func(t *testing.T) { testPutGet(t, bk.new) })
			t.Run("RangeHeadETag", func(t *testing.T) { testRangeHeadETag(t, bk.new) })
			t.Run("Oversize", func(t *testing.T) { testOversize(t, bk.new) })
			t.Run("WrongContentType", func(t *testing.T) { testContentType(t, bk.new) })
			t.Run("PathTraversal", func(t *testing.T) { testTraversal(t, bk.new) })
			t.Run("ForgedExpiredToken", func(t *testing.T) { testTokens(t, bk.new) })
			t.Run("FilledSlotConflict", func(t *testing.T) { testConflict(t, bk.new) })
			t.Run("Quota", func(t *testing.T) { testQuota(t, bk.new) })
			t.Run("QuotaConcurrent", func(t *testing.T) { testQuotaConcurrent(t, bk.new) })
			t.Run("Rate", func(t *testing.T) { testRate(t, bk.new) })
			t.Run("ExpirySweep", func(t *testing.T) { testSweep(t, bk.new) })
			t.Run("Dedup", func(t *testing.T) { testDedup(t, bk.new) })
			t.Run("PartialUploadRemoved", func(t *testing.T) { testPartial(t, bk.new) })
			t.Run("StalledUploadCutOff", func(t *testing.T) { testStalled(t, bk.new) })
			t.Run("SafeHeadersCORS", func(t *testing.T) { testSafeHeaders(t, bk.new) })
		})
	}
}

func testPutGet(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	data := randBytes(3<<20 + 17)
	s := e.mustSlot("alice", "très cool.jpg", int64(len(data)), "image/jpeg")
	if s.put != s.get || !strings.Contains(s.get, "/tr%C3%A8s%20cool.jpg") {
		t.Fatalf("urls %q %q: want the same URL with the name percent-encoded", s.put, s.get)
	}
	resp := e.put(s, data, "image/jpeg")
	wantStatus(t, "PUT", resp, http.StatusCreated)
	resp, got := e.do("GET", s.get)
	wantStatus(t, "GET", resp, http.StatusOK)
	if !bytes.Equal(got, data) {
		t.Fatalf("GET returned %d bytes, not the %d uploaded", len(got), len(data))
	}
	sum := sha256.Sum256(data)
	if et := resp.Header.Get("ETag"); et != `"`+hex.EncodeToString(sum[:])+`"` {
		t.Fatalf("ETag %q, want the SHA-256", et)
	}
	if cc := resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
		t.Fatalf("Cache-Control %q", cc)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "image/jpeg" {
		t.Fatalf("Content-Type %q", ct)
	}
	// The file name is for display only: another name is another URL.
	resp, _ = e.do("GET", strings.Replace(s.get, "cool.jpg", "cool.png", 1))
	wantStatus(t, "GET with another name", resp, http.StatusNotFound)
}

func testRangeHeadETag(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	data := randBytes(100000)
	s := e.mustSlot("alice", "v.mp4", int64(len(data)), "video/mp4")
	wantStatus(t, "PUT", e.put(s, data, "video/mp4"), http.StatusCreated)

	resp, got := e.do("GET", s.get, "Range", "bytes=1000-1999")
	wantStatus(t, "Range GET", resp, http.StatusPartialContent)
	if !bytes.Equal(got, data[1000:2000]) || resp.Header.Get("Content-Range") != "bytes 1000-1999/100000" {
		t.Fatalf("range: %d bytes, Content-Range %q", len(got), resp.Header.Get("Content-Range"))
	}
	resp, got = e.do("GET", s.get, "Range", "bytes=-10")
	wantStatus(t, "suffix Range", resp, http.StatusPartialContent)
	if !bytes.Equal(got, data[len(data)-10:]) {
		t.Fatal("suffix range returned other bytes")
	}
	resp, _ = e.do("GET", s.get, "Range", "bytes=200000-")
	wantStatus(t, "unsatisfiable Range", resp, http.StatusRequestedRangeNotSatisfiable)

	resp, got = e.do("HEAD", s.get)
	wantStatus(t, "HEAD", resp, http.StatusOK)
	if len(got) != 0 || resp.ContentLength != int64(len(data)) || resp.Header.Get("Accept-Ranges") != "bytes" {
		t.Fatalf("HEAD: body %d, Content-Length %d, Accept-Ranges %q", len(got), resp.ContentLength, resp.Header.Get("Accept-Ranges"))
	}
	resp, got = e.do("GET", s.get, "If-None-Match", resp.Header.Get("ETag"))
	wantStatus(t, "If-None-Match", resp, http.StatusNotModified)
	if len(got) != 0 {
		t.Fatal("304 with a body")
	}
	resp, _ = e.do("GET", s.get, "If-None-Match", `"other"`)
	wantStatus(t, "If-None-Match other", resp, http.StatusOK)
}

func testOversize(t *testing.T, nb func(testing.TB) Backend) {
	lim := defaultLimits()
	lim.MaxFileSize = 5000
	e := newEnv(t, nb, lim)
	_, err := e.request("alice", "big.bin", 5001, "")
	se := wantStanzaError(t, err, "not-acceptable")
	if se.App == nil || se.App.Name != "file-too-large" || se.App.ChildText(NS, "max-file-size") != "5000" {
		t.Fatalf("oversize error without <file-too-large><max-file-size>5000: %v", se.App)
	}
	if !strings.Contains(se.Element("").String(), "<max-file-size>5000</max-file-size>") {
		t.Fatalf("rendered error: %s", se.Element(""))
	}
	// A body bigger than the slot is refused before it is stored.
	s := e.mustSlot("alice", "a.bin", 1000, "")
	wantStatus(t, "PUT bigger", e.put(s, randBytes(2000), "application/octet-stream"), http.StatusRequestEntityTooLarge)
	wantStatus(t, "PUT smaller", e.put(s, randBytes(999), "application/octet-stream"), http.StatusBadRequest)
	// Chunked (no Content-Length) is refused: the length must match.
	req, _ := http.NewRequest("PUT", s.put, io.MultiReader(bytes.NewReader(randBytes(1000))))
	req.Header.Set("Authorization", s.auth)
	req.ContentLength = -1
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	wantStatus(t, "PUT chunked", resp, http.StatusLengthRequired)
	// The slot is still usable with the right body.
	wantStatus(t, "PUT right", e.put(s, randBytes(1000), ""), http.StatusCreated)
	for _, size := range []string{"0", "-1", "abc", "", "99999999999999999999"} {
		req := xmlstream.New(NS, "request", "filename", "a", "size", size)
		_, err := e.svc.handleRequest(context.Background(), &server.IQ{From: jid.MustParse("alice@localhost/r"), Payload: req})
		if err == nil {
			t.Errorf("size %q accepted", size)
		}
	}
}

func testContentType(t *testing.T, nb func(testing.TB) Backend) {
	lim := defaultLimits()
	lim.ContentTypes = []string{"image/*", "video/mp4"}
	e := newEnv(t, nb, lim)
	_, err := e.request("alice", "x.html", 10, "text/html")
	wantStanzaError(t, err, "not-acceptable")
	_, err = e.request("alice", "x", 10, "not a type")
	wantStanzaError(t, err, "not-acceptable")
	s := e.mustSlot("alice", "p.png", 10, "image/png")
	wantStatus(t, "PUT other type", e.put(s, randBytes(10), "text/html"), http.StatusUnsupportedMediaType)
	wantStatus(t, "PUT no type", e.put(s, randBytes(10), ""), http.StatusUnsupportedMediaType)
	wantStatus(t, "PUT type with params", e.put(s, randBytes(10), "image/PNG; q=1"), http.StatusCreated)
}

func testTraversal(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	for _, name := range []string{"../../etc/passwd", "..", ".", "a/b", `a\b`, "", "a\x00b", "a\nb"} {
		_, err := e.request("alice", name, 10, "")
		wantStanzaError(t, err, "not-acceptable")
	}
	s := e.mustSlot("alice", "ok.txt", 5, "text/plain")
	wantStatus(t, "PUT", e.put(s, []byte("hello"), "text/plain"), http.StatusCreated)
	id := strings.Split(strings.TrimPrefix(s.get, e.srv.URL+"/upload/"), "/")[0]
	for _, p := range []string{
		"/upload/../../etc/passwd",
		"/upload/" + id + "/../../../etc/passwd",
		"/upload/" + id + "/..%2f..%2fetc%2fpasswd",
		"/upload/..%2f..%2f" + id + "/ok.txt",
		"/upload/%2e%2e/ok.txt",
		"/upload/" + strings.ToUpper(id) + "/ok.txt",
		"/upload/" + id + "x/ok.txt",
		"/upload/" + id,
		"/upload/" + id + "/ok.txt/extra",
	} {
		conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", p)
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		conn.Close()
		if resp.StatusCode == http.StatusOK || bytes.Contains(body, []byte("root:")) {
			t.Errorf("GET %s: %d %q", p, resp.StatusCode, body)
		}
	}
}

func testTokens(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	s := e.mustSlot("alice", "a.bin", 10, "")
	other := e.mustSlot("alice", "b.bin", 10, "")
	data := randBytes(10)
	forged := s
	forged.auth = s.auth[:len(s.auth)-3] + "AAA"
	wantStatus(t, "forged", e.put(forged, data, ""), http.StatusForbidden)
	swapped := s
	swapped.auth = other.auth
	wantStatus(t, "other slot's token", e.put(swapped, data, ""), http.StatusForbidden)
	none := s
	none.auth = ""
	wantStatus(t, "no token", e.put(none, data, ""), http.StatusForbidden)
	basic := s
	basic.auth = "Basic " + strings.TrimPrefix(s.auth, "Bearer ")
	wantStatus(t, "wrong scheme", e.put(basic, data, ""), http.StatusForbidden)
	// Unknown slot with a well-formed token.
	unknown := s
	unknown.put = strings.Replace(s.put, "/upload/", "/upload/"+newID()+"/", 1)
	unknown.put = unknown.put[:strings.LastIndex(unknown.put, "/")]
	wantStatus(t, "unknown slot", e.put(unknown, data, ""), http.StatusForbidden)

	e.now = e.now.Add(5*time.Minute + 2*time.Second)
	wantStatus(t, "expired", e.put(s, data, ""), http.StatusForbidden)
	resp, _ := e.do("GET", s.get)
	wantStatus(t, "GET of an unfilled slot", resp, http.StatusNotFound)
}

func testConflict(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	s := e.mustSlot("alice", "a.bin", 10, "")
	wantStatus(t, "first PUT", e.put(s, randBytes(10), ""), http.StatusCreated)
	wantStatus(t, "second PUT", e.put(s, randBytes(10), ""), http.StatusConflict)
}

func testQuota(t *testing.T, nb func(testing.TB) Backend) {
	lim := defaultLimits()
	lim.Quota = 2500
	e := newEnv(t, nb, lim)
	e.mustSlot("alice", "1", 1000, "")
	e.mustSlot("alice", "2", 1000, "")
	_, err := e.request("alice", "3", 1000, "")
	se := wantStanzaError(t, err, "resource-constraint")
	if se.Type != "wait" || se.App == nil || se.App.Name != "retry" || se.App.Space != NS {
		t.Fatalf("quota error %+v, want wait with <retry/>", se)
	}
	stamp, perr := time.Parse(time.RFC3339, se.App.Attr("stamp"))
	if perr != nil || stamp.Before(e.now.Add(lim.Expiry-time.Minute)) {
		t.Fatalf("retry stamp %q, want about when the oldest file expires", se.App.Attr("stamp"))
	}
	e.mustSlot("alice", "4", 500, "") // still fits
	e.mustSlot("bob", "1", 2000, "")  // other users are not affected
	_, err = e.request("alice", "whole", 3000, "")
	wantStanzaError(t, err, "not-acceptable")
	// Once the files expire, the quota is free again.
	e.now = e.now.Add(lim.Expiry + time.Second)
	e.mustSlot("alice", "5", 2000, "")
}

func testRate(t *testing.T, nb func(testing.TB) Backend) {
	lim := defaultLimits()
	lim.UploadsPerHour = 3
	e := newEnv(t, nb, lim)
	start := e.now
	for i := 0; i < 3; i++ {
		e.mustSlot("alice", "f", 10, "")
		e.now = e.now.Add(time.Minute)
	}
	_, err := e.request("alice", "f", 10, "")
	se := wantStanzaError(t, err, "resource-constraint")
	want := start.UTC().Truncate(time.Second).Add(time.Hour).Format("2006-01-02T15:04:05Z")
	if se.App == nil || se.App.Attr("stamp") != want {
		t.Fatalf("retry %v, want stamp %s", se.App, want)
	}
	e.mustSlot("bob", "f", 10, "")
	e.now = start.Add(time.Hour + time.Second)
	e.mustSlot("alice", "f", 10, "")
}

func testSweep(t *testing.T, nb func(testing.TB) Backend) {
	lim := defaultLimits()
	lim.Expiry = 48 * time.Hour
	e := newEnv(t, nb, lim)
	ctx := context.Background()
	data := randBytes(5000)
	s := e.mustSlot("alice", "old.bin", int64(len(data)), "")
	wantStatus(t, "PUT", e.put(s, data, ""), http.StatusCreated)
	abandoned := e.mustSlot("alice", "never.bin", 10, "")
	_ = abandoned
	e.now = e.now.Add(24 * time.Hour)
	fresh := e.mustSlot("alice", "fresh.bin", 100, "")
	wantStatus(t, "PUT fresh", e.put(fresh, randBytes(100), ""), http.StatusCreated)
	if n, err := e.svc.SweepOnce(ctx); err != nil || n != 1 {
		t.Fatalf("first sweep removed %d (%v), want the abandoned slot", n, err)
	}
	resp, _ := e.do("GET", s.get)
	wantStatus(t, "GET before expiry", resp, http.StatusOK)

	e.now = e.now.Add(24*time.Hour + time.Minute)
	resp, _ = e.do("GET", s.get)
	wantStatus(t, "GET after expiry, before the sweep", resp, http.StatusNotFound)
	if n, err := e.svc.SweepOnce(ctx); err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v), want 1", n, err)
	}
	sum := sha256.Sum256(data)
	if _, err := e.b.Get(ctx, blobKey(hex.EncodeToString(sum[:]))); err != ErrNotFound {
		t.Fatalf("expired blob still stored: %v", err)
	}
	metas, _ := e.b.List(ctx, "meta/")
	users, _ := e.b.List(ctx, "users/")
	blobs, _ := e.b.List(ctx, "blobs/")
	refs, _ := e.b.List(ctx, "refs/")
	if len(metas) != 1 || len(users) != 1 || len(blobs) != 1 || len(refs) != 1 {
		t.Fatalf("after sweep: %d metas, %d index entries, %d blobs, %d refs; want only the fresh file's", len(metas), len(users), len(blobs), len(refs))
	}
	resp, _ = e.do("GET", fresh.get)
	wantStatus(t, "GET fresh", resp, http.StatusOK)
}

func testDedup(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	ctx := context.Background()
	data := randBytes(20000)
	a := e.mustSlot("alice", "a.jpg", int64(len(data)), "image/jpeg")
	b := e.mustSlot("bob", "b.jpg", int64(len(data)), "image/jpeg")
	wantStatus(t, "PUT a", e.put(a, data, "image/jpeg"), http.StatusCreated)
	wantStatus(t, "PUT b", e.put(b, data, "image/jpeg"), http.StatusCreated)
	blobs, _ := e.b.List(ctx, "blobs/")
	if len(blobs) != 1 {
		t.Fatalf("%d blobs for two identical uploads, want 1", len(blobs))
	}
	for _, s := range []slotResp{a, b} {
		resp, got := e.do("GET", s.get)
		wantStatus(t, "GET", resp, http.StatusOK)
		if !bytes.Equal(got, data) {
			t.Fatal("dedup'd file differs")
		}
	}
	// Carol uploaded the same content long ago: her slot expiring does not
	// take the blob from Alice and Bob, whose slots still reference it.
	now := e.now
	e.now = now.Add(-e.svc.lim.Expiry + time.Hour)
	c := e.mustSlot("carol", "c.jpg", int64(len(data)), "image/jpeg")
	wantStatus(t, "PUT c", e.put(c, data, "image/jpeg"), http.StatusCreated)
	e.now = now.Add(2 * time.Hour)
	if n, err := e.svc.SweepOnce(ctx); err != nil || n != 1 {
		t.Fatalf("sweep removed %d (%v), want carol's slot", n, err)
	}
	resp, _ := e.do("GET", c.get)
	wantStatus(t, "GET c after expiry", resp, http.StatusNotFound)
	resp, got := e.do("GET", a.get)
	wantStatus(t, "GET a after c expired", resp, http.StatusOK)
	if !bytes.Equal(got, data) {
		t.Fatal("shared blob damaged")
	}
}

func testPartial(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	ctx := context.Background()
	s := e.mustSlot("alice", "a.bin", 1<<20, "")
	// The client announces 1 MiB, sends half and hangs up.
	u := strings.TrimPrefix(s.put, e.srv.URL)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", u, s.auth, 1<<20)
	conn.Write(randBytes(1 << 19))
	time.Sleep(100 * time.Millisecond)
	conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		tmps, _ := e.b.List(ctx, "tmp/")
		blobs, _ := e.b.List(ctx, "blobs/")
		e.svc.putMu.Lock()
		busy := len(e.svc.putting)
		e.svc.putMu.Unlock()
		if len(tmps) == 0 && len(blobs) == 0 && busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partial upload left %d tmp objects, %d blobs", len(tmps), len(blobs))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d, ok := e.b.(*Disk); ok {
		filepath.WalkDir(d.root, func(p string, de fs.DirEntry, err error) error {
			if err == nil && strings.HasPrefix(de.Name(), ".put-") {
				t.Errorf("partial temp file left: %s", p)
			}
			return nil
		})
	}
	// The slot can be retried.
	data := randBytes(1 << 20)
	wantStatus(t, "PUT retry", e.put(s, data, ""), http.StatusCreated)
	resp, got := e.do("GET", s.get)
	wantStatus(t, "GET", resp, http.StatusOK)
	if !bytes.Equal(got, data) {
		t.Fatal("retried upload differs")
	}
}

func testSafeHeaders(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	for _, c := range []struct {
		ctype, disp string
	}{
		{"text/html", "attachment"},
		{"image/svg+xml", "attachment"},
		{"application/xhtml+xml", "attachment"},
		{"application/javascript", "attachment"},
		{"image/jpeg", "inline"},
	} {
		body := []byte("<script>alert(1)</script>")
		s := e.mustSlot("alice", "x", int64(len(body)), c.ctype)
		wantStatus(t, "PUT "+c.ctype, e.put(s, body, c.ctype), http.StatusCreated)
		resp, _ := e.do("GET", s.get)
		h := resp.Header
		if !strings.HasPrefix(h.Get("Content-Disposition"), c.disp) {
			t.Errorf("%s: Content-Disposition %q, want %s", c.ctype, h.Get("Content-Disposition"), c.disp)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Content-Security-Policy") != "default-src 'none'; sandbox" {
			t.Errorf("%s: nosniff %q, CSP %q", c.ctype, h.Get("X-Content-Type-Options"), h.Get("Content-Security-Policy"))
		}
		if h.Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("GET without CORS header")
		}
	}
	s := e.mustSlot("alice", "y", 1, "")
	resp, _ := e.do("OPTIONS", s.put, "Origin", "https://web.example", "Access-Control-Request-Method", "PUT",
		"Access-Control-Request-Headers", "authorization,content-type")
	wantStatus(t, "OPTIONS", resp, http.StatusNoContent)
	h := resp.Header
	if h.Get("Access-Control-Allow-Origin") != "*" || !strings.Contains(h.Get("Access-Control-Allow-Methods"), "PUT") ||
		!strings.Contains(h.Get("Access-Control-Allow-Headers"), "Authorization") || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "Content-Type") {
		t.Fatalf("preflight headers %v", h)
	}
	resp, _ = e.do("DELETE", s.put)
	wantStatus(t, "DELETE", resp, http.StatusMethodNotAllowed)
}

func testStalled(t *testing.T, nb func(testing.TB) Backend) {
	e := newEnv(t, nb, defaultLimits())
	e.svc.bodyIdle = 300 * time.Millisecond
	ctx := context.Background()
	s := e.mustSlot("alice", "a.bin", 1<<20, "")
	u := strings.TrimPrefix(s.put, e.srv.URL)
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "PUT %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Length: %d\r\n\r\n", u, s.auth, 1<<20)
	// Slow but flowing: 4 chunks 200 ms apart is fine...
	for i := 0; i < 4; i++ {
		conn.Write(randBytes(1000))
		time.Sleep(200 * time.Millisecond)
	}
	// ...then it stalls: the server cuts it off and removes the partial.
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("stalled PUT answered %d", resp.StatusCode)
		}
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("stalled PUT not cut off within 5s")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		tmps, _ := e.b.List(ctx, "tmp/")
		e.svc.putMu.Lock()
		busy := len(e.svc.putting)
		e.svc.putMu.Unlock()
		if len(tmps) == 0 && busy == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("stalled upload left %d tmp objects, %d in progress", len(tmps), busy)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Concurrent slot requests of one user cannot overshoot the quota together.
func testQuotaConcurrent(t *testing.T, nb func(testing.TB) Backend) {
	lim := defaultLimits()
	lim.Quota = 5000
	e := newEnv(t, nb, lim)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.RequestSlot(context.Background(), "alice", "f", "1000", ""); err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 5 {
		t.Fatalf("%d concurrent 1000-byte slots granted under a 5000-byte quota, want 5", ok)
	}
}
