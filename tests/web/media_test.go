package web

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebMedia: photos, voice notes, documents, the size limit, cancel,
// the offline queue and a quota refusal, through the server's XEP-0363
// upload (scenarios/media.mjs), checked in both pages and in the upload
// storage.
func TestWebMedia(t *testing.T) {
	upDir := t.TempDir()
	conf := filepath.Join(t.TempDir(), "bluetick.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("[upload]\nmax_file_size = 1048576\nuploads_per_hour = 5\ndir = %q\n", upDir)), 0o644)
	fs := run(t, "media", []string{"--config", conf}, "alice", "bob")

	p := fs.get(t, "photo")
	var mid int
	for _, v := range p["progress"].([]any) {
		if n, _ := v.(float64); n > 0 && n < 100 {
			mid++
		}
	}
	t.Logf("photo: %v bytes; progress values shown: %v", p.num("size"), p["progress"])
	if mid == 0 {
		t.Errorf("no upload progress between 0 and 100%% was shown: %v", p["progress"])
	}
	if !strings.HasPrefix(p.str("thumb_prefix"), "data:image/jpeg;base64,") || p.num("thumb_len") > 40000 {
		t.Errorf("bob's thumbnail: %s, want a small inline JPEG", p)
	}
	if p.num("viewer_w") != 640 || p.num("viewer_h") != 420 || !p.boolean("same_bytes") {
		t.Errorf("bob's viewer: %s, want the 640×420 original, byte for byte", p)
	}
	if !strings.Contains(p.str("url"), "/upload/") || !p.boolean("chat_open_after_escape") {
		t.Errorf("photo: %s (link under /upload/, Escape closes only the viewer)", p)
	}

	v := fs.get(t, "voice")
	t.Logf("voice note: %s", v)
	d := v.num("duration")
	if math.IsInf(d, 0) || d <= 0 || v.num("duration_before_play") <= 0 || v.num("meta_ms") < 2000 || !strings.HasPrefix(v.str("label"), "0:0") {
		t.Errorf("voice note on bob's side: %s, want a finite duration > 0 and its length shown", v)
	}

	doc := fs.get(t, "document")
	if doc.str("name") != "Quarterly report.pdf" || !strings.HasPrefix(doc.str("size"), "48 KB") || !doc.boolean("same_bytes") || doc.str("download") != "Quarterly report.pdf" {
		t.Errorf("document on bob's side: %s", doc)
	}

	tl := fs.get(t, "too-large")
	if !strings.Contains(tl.str("notice"), "up to 1.0 MB") || tl.num("slot_requests") != 0 || tl.num("messages_added") != 0 {
		t.Errorf("over the limit: %s, want a notice naming the limit, no slot request and no message", tl)
	}

	c := fs.get(t, "cancelled")
	if c.num("progress_at_cancel") <= 0 || c.num("progress_at_cancel") >= 100 || c.num("alice_added") != 0 || c.num("bob_media_added") != 0 || c.num("uploads_left") != 0 || c.num("clip_shown") != 0 {
		t.Errorf("cancelled mid-upload: %s, want no message on either side and nothing left queued", c)
	}

	o := fs.get(t, "offline-queue")
	b, _ := o["before"].(map[string]any)
	a, _ := o["after_reload"].(map[string]any)
	e, _ := o["after"].(map[string]any)
	if b["tick"] != "pending" || b["upload"] != "waiting" || a["tick"] != "pending" || a["upload"] != "waiting" {
		t.Errorf("picked with the server stopped: %s, want 🕐 and waiting, before and after a reload", o)
	}
	if e["tick"] == "pending" || e["upload"] != "" || !o.boolean("same_bytes") || o.num("bob_copies") != 1 {
		t.Errorf("once the server is back: %s, want it sent once, byte for byte", o)
	}

	r := fs.get(t, "rate")
	if !strings.Contains(r.str("failed"), "quota") || !strings.Contains(r.str("notice"), "per hour") {
		t.Errorf("sixth upload in the hour: %s, want the server's refusal shown", r)
	}

	// The server's side: a slot for each upload asked for (photo, voice,
	// document, the cancelled clip, the offline document; none for the
	// file over the limit, none kept for the refused one) and a blob for
	// each completed one.
	slots, _ := filepath.Glob(filepath.Join(upDir, "meta", "*.json"))
	blobs, _ := filepath.Glob(filepath.Join(upDir, "blobs", "*"))
	if len(slots) != 5 || len(blobs) != 4 || r.num("slot_requests") != 6 {
		t.Errorf("upload storage: %d slots, %d blobs, %v slot requests from the page; want 5, 4 and 6", len(slots), len(blobs), r.num("slot_requests"))
	}
}

// TestWebMediaOtherOrigin: the pages at 127.0.0.1, the upload links at
// localhost (the server's domain): the CSP allows the upload origin, so
// the PUT, the photo and the voice note work across origins; a photo
// dropped on the chat and a file pasted into the message box are sent; a
// file cancelled before its slot is granted stays cancelled.
func TestWebMediaOtherOrigin(t *testing.T) {
	fs := run(t, "media-origin", nil, "alice", "bob")
	f := fs.get(t, "cross-origin")
	t.Logf("%s", f)
	up := f.str("photo_origin")
	if f.str("page_origin") == up || !strings.HasPrefix(up, "http://localhost:") || f.str("audio_origin") != up {
		t.Errorf("origins: %s, want the media on the upload origin, not the page's", f)
	}
	for _, dir := range []string{"img-src 'self' blob: data: " + up + ";", "media-src 'self' blob: " + up + ";", "connect-src 'self' " + up + ";"} {
		if !strings.Contains(f.str("csp"), dir) {
			t.Errorf("the page's CSP %q lacks %q", f.str("csp"), dir)
		}
	}
	if f.num("photo_w") != 300 || f.str("pasted") != "pasted from the clipboard\n" || f.num("audio_duration") <= 0 {
		t.Errorf("dropped photo, pasted file, voice note: %s", f)
	}
	if e := fs.get(t, "early-cancel"); e.num("alice_late") != 0 || e.num("bob_late") != 0 || e.num("alice_added") != 0 || e.num("puts") != 0 {
		t.Errorf("cancelled while the slot request was unanswered: %s, want no message on either side", e)
	}
}
