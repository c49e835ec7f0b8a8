package upload

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzHandler sends arbitrary methods, paths, tokens, content types and
// bodies to the HTTP handler (disk backend, one real slot in the seeds):
// whatever comes in, the answer is a 2xx/3xx/4xx status, never a 5xx or a
// panic, and nothing is ever served that was not uploaded through a slot.
func FuzzHandler(f *testing.F) {
	d, err := NewDisk(filepath.Join(f.TempDir(), "upload"))
	if err != nil {
		f.Fatal(err)
	}
	svc, err := New(d, testSecret, "http://media.test", defaultLimits(), nil)
	if err != nil {
		f.Fatal(err)
	}
	slot, err := svc.RequestSlot(context.Background(), "alice", "a b.txt", "5", "text/plain")
	if err != nil {
		f.Fatal(err)
	}
	tok := "Bearer " + svc.signer.Sign(slot.ID, slot.Size, slot.ContentType, slot.Created.Add(svc.lim.TokenLifetime))
	p := slotPath(slot.ID, slot.Filename)
	f.Add("PUT", p, tok, "text/plain", []byte("hello"))
	f.Add("PUT", p, tok, "text/html", []byte("hello"))
	f.Add("PUT", p, tok, "text/plain", []byte("hello world"))
	f.Add("GET", p, "", "", []byte(nil))
	f.Add("HEAD", "/upload/../"+slot.ID+"/a b.txt", "", "", []byte(nil))
	f.Add("OPTIONS", p, "", "", []byte(nil))
	f.Add("PUT", "/upload/"+slot.ID+"/..", tok, "text/plain", []byte("hello"))
	handler := svc.Handler()
	f.Fuzz(func(t *testing.T, method, path, auth, ctype string, body []byte) {
		u, err := url.Parse("http://media.test")
		if err != nil {
			t.Fatal(err)
		}
		u.Path = path
		req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
		if err != nil {
			return // not a request net/http would hand us
		}
		req.URL.Path = path // as the server would have unescaped it
		req.Header.Set("Authorization", strings.ToValidUTF8(auth, ""))
		req.Header.Set("Content-Type", ctype)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %q: %d %s", method, path, rec.Code, rec.Body)
		}
		if (method == "GET" || method == "HEAD") && rec.Code == http.StatusOK {
			s, err := loadSlot(context.Background(), d, slot.ID)
			if err != nil || s.SHA256 == "" || !strings.HasPrefix(path, "/upload/"+slot.ID+"/") {
				t.Fatalf("%s %q served %q without an upload", method, path, rec.Body)
			}
		}
		io.Copy(io.Discard, rec.Body)
	})
}
