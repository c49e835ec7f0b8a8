package web

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestWebAESGCMUnit runs web/test (node --test): web/src/aesgcm.js against
// vectors made by python3's cryptography, and fresh files both ways with
// it when python3-cryptography is installed.
func TestWebAESGCMUnit(t *testing.T) {
	if _, err := exec.LookPath("node"); err != nil {
		t.Fatalf("node is not installed: %v", err)
	}
	cmd := exec.Command("node", "--test", "test/")
	cmd.Dir = webDir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test web/test: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "# pass") || strings.HasPrefix(l, "# skipped") || strings.HasPrefix(l, "# fail") {
			t.Log(strings.TrimPrefix(l, "# "))
		}
	}
	if !bytes.Contains(out, []byte("# fail 0")) {
		t.Errorf("node --test web/test:\n%s", out)
	}
}

// testImage draws a w×h picture from seed: gradients and noise (so the
// PNG is not tiny and every pixel is checkable).
func testImage(w, h int, seed uint32) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, pixelAt(x, y, seed))
		}
	}
	return img
}

func pixelAt(x, y int, seed uint32) color.NRGBA {
	n := uint32(x)*2654435761 ^ uint32(y)*40503 ^ seed
	n ^= n >> 13
	n *= 0x5bd1e995
	n ^= n >> 15
	return color.NRGBA{R: uint8(x * 255 / 479), G: uint8(y * 255 / 319), B: uint8(n), A: 255}
}

func pngOf(t *testing.T, img image.Image) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// sealed encrypts plain as XEP-0454 says, with Go's AES-GCM: fresh key
// and 12-byte IV, the 16-byte tag appended.
func sealed(t *testing.T, plain []byte) (ct, key, iv []byte) {
	key, iv = make([]byte, 32), make([]byte, 12)
	rand.Read(key)
	rand.Read(iv)
	blk, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	g, err := cipher.NewGCM(blk)
	if err != nil {
		t.Fatal(err)
	}
	return g.Seal(nil, iv, plain, nil), key, iv
}

// leaks returns where in data a 16-byte-aligned 16-byte piece of plain
// occurs (any offset in data), or -1.
func leaks(data, plain []byte) int {
	const n = 16
	pieces := map[string]bool{}
	for i := 0; i+n <= len(plain); i += n {
		pieces[string(plain[i:i+n])] = true
	}
	for i := 0; i+n <= len(data); i++ {
		if pieces[string(data[i:i+n])] {
			return i
		}
	}
	return -1
}

// TestWebEncryptedMedia: XEP-0454 files in the app (scenarios/encmedia.mjs):
// received ones decrypted in the browser (a photo compared pixel by pixel
// and byte by byte, a PDF, an altered ciphertext and a link to another
// server shown as errors, nothing fetched again after a reload), and one
// sent from the app encrypted before its upload. Then the server's upload
// storage is searched for any piece of the plaintexts: there is none.
func TestWebEncryptedMedia(t *testing.T) {
	upDir := t.TempDir()
	dir := t.TempDir()
	conf := filepath.Join(dir, "bluetick.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("[upload]\nmax_file_size = 4194304\ndir = %q\n", upDir)), 0o644)

	photo := pngOf(t, testImage(480, 320, 1))
	sendPhoto := pngOf(t, testImage(480, 320, 2))
	latePhoto := pngOf(t, testImage(480, 320, 3))
	laterPhoto := pngOf(t, testImage(480, 320, 4))
	pdf := append([]byte("%PDF-1.4\n% Bluetick encrypted document\n"), make([]byte, 30000)...)
	rand.Read(pdf[40:])
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	type file struct {
		Name       string `json:"name"`
		UploadName string `json:"upload_name,omitempty"`
		Cipher     string `json:"cipher,omitempty"`
		Key        string `json:"key,omitempty"`
		IV         string `json:"iv,omitempty"`
		Link       string `json:"link,omitempty"`
	}
	entry := func(name, upload string, plain []byte, tamper bool) file {
		ct, key, iv := sealed(t, plain)
		if tamper {
			ct[len(ct)/2] ^= 0x01
		}
		return file{Name: name, UploadName: upload, Cipher: write(name+".enc", ct), Key: hex.EncodeToString(key), IV: hex.EncodeToString(iv)}
	}
	points := [][2]int{{0, 0}, {100, 50}, {240, 160}, {479, 319}, {333, 17}}
	manifest := map[string]any{
		"files": []file{
			entry("photo", "6f1d2a9c0b7e4d3a.png", photo, false),
			entry("doc", "a41c03e9d27b5f60.pdf", pdf, false),
			entry("tampered", "0c9e8b7a6f5d4c3b.png", photo, true),
			{Name: "foreign", Link: "aesgcm://files.example.net/upload/abc/photo.png#" + strings.Repeat("ab", 12) + strings.Repeat("cd", 32)},
		},
		"late":   []file{entry("late", "5e4d3c2b1a09f8e7.png", latePhoto, false)},
		"send":   map[string]string{"plain": write("beach.png", sendPhoto), "name": "beach holiday.png"},
		"send2":  map[string]string{"plain": write("later.png", laterPhoto)},
		"points": points,
	}
	mj, _ := json.Marshal(manifest)
	t.Setenv("BLUETICK_E2E_MANIFEST", write("manifest.json", mj))

	fx := run(t, "encmedia", []string{"--config", conf}, "alice", "bob", "carol")
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	wantPixels := func(seed uint32) string {
		var out [][]int
		for _, p := range points {
			c := pixelAt(p[0], p[1], seed)
			out = append(out, []int{int(c.R), int(c.G), int(c.B)})
		}
		b, _ := json.Marshal(out)
		return string(b)
	}
	gotPixels := func(f map[string]any) string { b, _ := json.Marshal(f["pixels"]); return string(b) }

	p := fx.get(t, "received-photo")
	t.Logf("received photo: %s", p)
	if p.str("state") != "ready" || p.str("full_src") != "blob:" || p.num("w") != 480 || p.num("h") != 320 {
		t.Errorf("bob's encrypted photo: %s, want it shown decrypted, 480×320, from a blob: URL", p)
	}
	if p.str("sha") != sum(photo) || p.str("stored_type") != "image/png" {
		t.Errorf("bob's stored photo: sha256 %s type %s, want the original's %s, image/png", p.str("sha"), p.str("stored_type"), sum(photo))
	}
	if got, want := gotPixels(p), wantPixels(1); got != want {
		t.Errorf("bob's photo pixels %s, want %s", got, want)
	}
	if !strings.HasPrefix(p.str("thumb"), "data:image/jpeg;base64") || !strings.Contains(p.str("chat_preview"), "Photo") {
		t.Errorf("bob's photo: thumbnail %q (want one made on the device), chat preview %q", p.str("thumb"), p.str("chat_preview"))
	}
	d := fx.get(t, "received-doc")
	if d.str("state") != "ready" || d.str("href") != "blob:" || d.str("sha") != sum(pdf) || d.str("download") != "a41c03e9d27b5f60.pdf" || !strings.HasPrefix(d.str("stored_type"), "application/pdf") {
		t.Errorf("bob's encrypted PDF: %s, want a blob: download equal to the original", d)
	}
	tp := fx.get(t, "tampered")
	if tp.str("state") != "failed" || !strings.Contains(tp.str("error"), "could not be decrypted") || tp.str("sha") != "" || tp.str("full_src") != "" {
		t.Errorf("altered ciphertext: %s, want the tag check's error in the bubble and nothing shown or stored", tp)
	}
	fo := fx.get(t, "foreign")
	if fo.str("state") != "failed" || !strings.Contains(fo.str("error"), "another server (files.example.net)") {
		t.Errorf("a link to another server: %s", fo)
	}
	if l := fx.get(t, "links"); l.num("aesgcm_in_dom") != 0 {
		t.Errorf("%v aesgcm links in a src or href of bob's page", l.num("aesgcm_in_dom"))
	}
	r := fx.get(t, "after-reload")
	if len(r.strs("upload_requests")) != 0 || r.str("state") != "ready" || r.str("sha") != sum(photo) || r.num("w") != 480 {
		t.Errorf("after bob's reload: %s, want the photo from IndexedDB, no download", r)
	}
	if v, _ := r["viewer"].(map[string]any); v["src"] != "blob:" || v["w"] != float64(480) {
		t.Errorf("bob's viewer: %v, want the full photo from a blob: URL", r["viewer"])
	}

	lt := fx.get(t, "late")
	down, _ := lt["down"].(map[string]any)
	back, _ := lt["back"].(map[string]any)
	if down["state"] != "failed" || !strings.Contains(fmt.Sprint(down["error"]), "did not answer") || down["retry"] != true || back["state"] != "ready" || back["sha"] != sum(latePhoto) {
		t.Errorf("a download with the server stopped: %s, want the error with Retry, then the photo once online", lt)
	}
	t.Logf("AES-256-GCM in Chromium: %s", fx.get(t, "gcm-speed"))
	s := fx.get(t, "sent-photo")
	t.Logf("sent photo: slot %q %q %v bytes (plain %v), body %q", s.str("slot_filename"), s.str("slot_type"), s.num("slot_size"), s.num("plain_size"), s.str("alice_body"))
	if !regexp.MustCompile(`^[0-9a-f]{24}\.png$`).MatchString(s.str("slot_filename")) || s.str("slot_type") != "application/octet-stream" || s.num("slot_size") != s.num("plain_size")+16 {
		t.Errorf("alice's slot request: %s, want a random .png name, application/octet-stream, the ciphertext's size", s)
	}
	link := regexp.MustCompile(`^aesgcm://localhost:\d+/upload/[^#\s]+\.png#[0-9a-f]{88}$`)
	if !link.MatchString(s.str("alice_body")) || s.str("bob_body") != s.str("alice_body") {
		t.Errorf("the message's body: alice %q, bob %q, want the same aesgcm link (IV 12 bytes + key 32 bytes)", s.str("alice_body"), s.str("bob_body"))
	}
	if s.str("alice_lock") != "ok" || s.str("bob_lock") != "ok" {
		t.Errorf("the photo's message is not shown as encrypted: alice %q, bob %q", s.str("alice_lock"), s.str("bob_lock"))
	}
	st := s.str("stanza")
	if !strings.Contains(st, `<encrypted xmlns="eu.siacs.conversations.axolotl"`) {
		t.Errorf("alice's message is not OMEMO-encrypted: %s", st)
	}
	for _, leak := range []string{"aesgcm", "/upload/", "jabber:x:oob", "urn:xmpp:sfs:0", "urn:xmpp:file:metadata:0", "urn:xmpp:thumbs:1", "beach", "image/png", "Photo"} {
		if strings.Contains(st, leak) {
			t.Errorf("alice's message has %q: %s", leak, st)
		}
	}
	a, _ := s["alice"].(map[string]any)
	b, _ := s["bob"].(map[string]any)
	if a["state"] != "ready" || a["sha"] != sum(sendPhoto) || a["w"] != float64(480) || !strings.HasPrefix(fmt.Sprint(a["thumb"]), "data:image/jpeg") {
		t.Errorf("alice's own view of her photo: %v, want it from her device with its local thumbnail", a)
	}
	if b["state"] != "ready" || b["sha"] != sum(sendPhoto) || b["w"] != float64(480) || gotPixels(b) != wantPixels(2) {
		t.Errorf("bob's view of alice's photo: %v, want it decrypted, equal to the original", b)
	}
	if s.num("aesgcm_in_dom") != 0 {
		t.Errorf("%v aesgcm links in a src or href", s.num("aesgcm_in_dom"))
	}

	pl := fx.get(t, "picked-before-lock")
	pa, _ := pl["alice"].(map[string]any)
	pb, _ := pl["bob"].(map[string]any)
	t.Logf("picked before the lock: slot %q %q, encrypted %v", pl.str("slot_filename"), pl.str("slot_type"), pl.boolean("encrypted"))
	if pl.str("picked_lock") != "off" || !regexp.MustCompile(`^[0-9a-f]{24}\.png$`).MatchString(pl.str("slot_filename")) || pl.str("slot_type") != "application/octet-stream" || !pl.boolean("encrypted") {
		t.Errorf("a photo picked with the lock open, uploaded after it closed: %s, want it encrypted when its upload started", pl)
	}
	if pa["state"] != "ready" || pa["sha"] != sum(laterPhoto) || pb["state"] != "ready" || pb["sha"] != sum(laterPhoto) || strings.Contains(pl.str("stanza"), "aesgcm") || strings.Contains(pl.str("stanza"), "later") {
		t.Errorf("that photo: %s, want it decrypted on bob's side, from the device on alice's, nothing of it on the wire", pl)
	}

	// Server-blind: no 16-byte piece of any plaintext in any file of the
	// upload storage (blobs and slot records), and no original file name.
	var blobs int
	filepath.WalkDir(upDir, func(path string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
			return nil
		}
		if strings.Contains(path, string(filepath.Separator)+"blobs"+string(filepath.Separator)) {
			blobs++
		}
		for name, plain := range map[string][]byte{"carol's photo": photo, "carol's PDF": pdf, "carol's late photo": latePhoto, "alice's photo": sendPhoto, "alice's later photo": laterPhoto} {
			if i := leaks(data, plain); i >= 0 {
				t.Errorf("the server's %s holds plaintext of %s at byte %d", path, name, i)
			}
		}
		if bytes.Contains(data, []byte("beach")) || bytes.Contains(data, []byte("image/png")) {
			t.Errorf("the server's %s names alice's file or its type: %s", path, data)
		}
		return nil
	})
	if blobs != 6 {
		t.Errorf("%d blobs in the upload storage, want 6 (photo, PDF, altered photo, late photo, alice's two photos)", blobs)
	}
	t.Logf("upload storage: %d blobs, none holding plaintext", blobs)
}
