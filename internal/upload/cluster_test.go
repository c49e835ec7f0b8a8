package upload

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTwoNodesShareOneBackend: a slot handed out by one node is filled
// through another and served by both, because slots, index and blobs all
// live in the backend and the nodes share the token secret.
func TestTwoNodesShareOneBackend(t *testing.T) {
	for _, bk := range backends {
		t.Run(bk.name, func(t *testing.T) {
			a := newEnv(t, bk.new, defaultLimits())
			srvB := httptest.NewServer(nil)
			t.Cleanup(srvB.Close)
			b, err := New(a.b, testSecret, srvB.URL, defaultLimits(), nil)
			if err != nil {
				t.Fatal(err)
			}
			mux := http.NewServeMux()
			mux.Handle("/upload/", b.Handler())
			srvB.Config.Handler = mux

			data := randBytes(50000)
			s := a.mustSlot("alice", "clip.mp4", int64(len(data)), "video/mp4")
			onB := s
			onB.put = strings.Replace(s.put, a.srv.URL, srvB.URL, 1)
			wantStatus(t, "PUT on node B", a.put(onB, data, "video/mp4"), http.StatusCreated)
			for _, base := range []string{a.srv.URL, srvB.URL} {
				resp, got := a.do("GET", strings.Replace(s.get, a.srv.URL, base, 1))
				wantStatus(t, "GET on "+base, resp, http.StatusOK)
				if !bytes.Equal(got, data) {
					t.Fatalf("GET on %s: other bytes", base)
				}
			}
			// A node with another secret cannot accept the other's slots.
			c, _ := New(a.b, []byte("a-different-secret-of-32-bytes!!"), srvB.URL, defaultLimits(), nil)
			srvC := httptest.NewServer(c.Handler())
			t.Cleanup(srvC.Close)
			s2 := a.mustSlot("alice", "b.bin", 10, "")
			s2.put = strings.Replace(s2.put, a.srv.URL, srvC.URL, 1)
			wantStatus(t, "PUT on a node with another secret", a.put(s2, randBytes(10), ""), http.StatusForbidden)
			// The quota counts what alice stored through either node.
			lim := defaultLimits()
			lim.Quota = 50000 + 10 + 100
			b.lim = lim
			if _, err := b.RequestSlot(t.Context(), "alice", "x", "101", ""); err == nil {
				t.Fatal("node B ignored alice's usage recorded through node A")
			}
		})
	}
}

func TestSecretGeneratedOnce(t *testing.T) {
	dir := t.TempDir()
	s1, err := Secret("", dir)
	if err != nil || len(s1) < 32 {
		t.Fatalf("generated secret %q, %v", s1, err)
	}
	s2, err := Secret("", dir)
	if err != nil || !bytes.Equal(s1, s2) {
		t.Fatalf("secret not kept across starts: %q then %q (%v)", s1, s2, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "upload.secret")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret file mode %v, want 0600", fi.Mode().Perm())
	}
	cfg, _ := Secret("configured-secret-configured-secret", dir)
	if string(cfg) != "configured-secret-configured-secret" {
		t.Fatal("configured secret not used")
	}
	os.WriteFile(filepath.Join(dir, "upload.secret"), []byte("short\n"), 0o600)
	if _, err := Secret("", dir); err == nil {
		t.Fatal("short secret file accepted")
	}
}
