package web

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestOMEMOInteropMedia: encrypted files (XEP-0454 aesgcm:// links inside
// OMEMO messages) between Bluetick Web and profanity, both ways (scenario
// omemo-interop-media.mjs; docs/e2e.md "Interop with profanity").
//
//	profanity → web  `/sendfile PHOTO` in bob's OMEMO chat with alice:
//	                 profanity encrypts the file (AES-256-GCM), uploads the
//	                 ciphertext and sends the aesgcm:// link encrypted;
//	                 alice's page shows the photo, decrypted in the browser.
//	web → profanity  alice attaches a photo; bob's profanity shows the link
//	                 and `/url save LINK FILE` downloads and decrypts it.
//
// profanity turns aesgcm:// into https:// to download (as XEP-0454 says),
// so the upload service here is served over HTTPS (listen.https, the
// server's self-signed certificate, which profanity accepts for an
// account connected with `tls trust` and Chromium with
// --ignore-certificate-errors).
func TestOMEMOInteropMedia(t *testing.T) {
	need(t)
	port := freePorts(t, 1)[0]
	dir := t.TempDir()
	upDir := filepath.Join(dir, "upload")
	conf := filepath.Join(dir, "bluetick.toml")
	os.WriteFile(conf, []byte(fmt.Sprintf("[listen]\nhttps = \"127.0.0.1:%d\"\n\n[upload]\nmax_file_size = 4194304\ndir = %q\nbase_url = \"https://localhost:%d\"\n", port, upDir, port)), 0o644)
	s := startServer(t, []string{"--config", conf}, "alice", "bob")

	// Two photos, each with random pixels: each one's bytes can only be
	// found where that file went in clear.
	fromProf := filepath.Join(dir, "from-profanity.png")
	fromWeb := filepath.Join(dir, "from-web.png")
	saved := filepath.Join(dir, "saved-by-profanity.png")
	photos := map[string][]byte{}
	for f, hue := range map[string]color.RGBA{fromProf: {66, 133, 244, 255}, fromWeb: {171, 71, 188, 255}} {
		b := photoPNG(t, 240, 160, hue)
		os.WriteFile(f, b, 0o644)
		photos[f] = b
	}
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

	prof, bobDevice := startOMEMOProfanity(t, s)
	t.Setenv("BLUETICK_TEST_PROFANITY", profBridge(t, prof))
	cfg, _ := json.Marshal(map[string]any{"bobDevice": bobDevice, "fromProf": fromProf, "fromWeb": fromWeb, "saved": saved})
	t.Setenv("BLUETICK_TEST_OMEMO", string(cfg))
	fx := runOn(t, s, "omemo-interop-media")

	// profanity → web: the link came inside the OMEMO message, and the
	// page decrypted the file to the very bytes profanity sent.
	in := fx.get(t, "from-profanity")
	if in.str("state") != "ready" || in.str("sha") != sum(photos[fromProf]) || in.num("w") != 240 || in.str("full_src") != "blob:" {
		t.Errorf("profanity's photo on alice's page: %s, want it decrypted (sha %s, 240 px wide, from a blob: URL)", in, sum(photos[fromProf]))
	}
	if in.str("msg_e2e") != "ok" {
		t.Errorf("profanity's file message on alice's page: data-e2e %q, want ok", in.str("msg_e2e"))
	}
	link := regexp.MustCompile(`aesgcm://[^\s<"']+`)
	log := prof.debugLog()
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "SENT: <message") && link.MatchString(line) {
			t.Errorf("profanity sent an aesgcm link (with its key) in clear: %s", line)
		}
	}

	// web → profanity: profanity saved the decrypted file.
	out := fx.get(t, "from-web")
	// profanity writes the file as it decrypts, after the download.
	var got []byte
	var err error
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if got, err = os.ReadFile(saved); err == nil && bytes.Equal(got, photos[fromWeb]) {
			break
		}
	}
	if sc := prof.screenNoFail(); strings.Contains(sc, "Failed to decrypt") {
		t.Errorf("profanity could not decrypt alice's file:\n%s", sc)
	}
	if err != nil {
		t.Errorf("profanity saved nothing from %s: %v (scenario: %s)", out.str("link"), err, out)
	} else if !bytes.Equal(got, photos[fromWeb]) {
		t.Errorf("profanity saved %d bytes (sha %s), want alice's photo (%d bytes, sha %s)", len(got), sum(got), len(photos[fromWeb]), sum(photos[fromWeb]))
	}
	if out.boolean("link_in_clear") || !out.boolean("encrypted") {
		t.Errorf("alice's page sent the aesgcm link in clear, or no <encrypted/> to bob: %s", out)
	}
	if mine, _ := out["alice"].(map[string]any); mine["state"] != "ready" || mine["msg_e2e"] != "ok" {
		t.Errorf("alice's own photo on her page: %v, want it shown (ready) and encrypted", mine)
	}

	// The server's upload storage has both ciphertexts and neither photo.
	blobs := 0
	filepath.WalkDir(upDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		blobs++
		for f, plain := range photos {
			if bytes.Contains(b, plain[len(plain)/2:len(plain)/2+64]) {
				t.Errorf("upload file %s holds a piece of %s in clear", p, filepath.Base(f))
			}
		}
		return nil
	})
	if blobs < 2 {
		t.Errorf("%d files in the upload storage, want at least the two ciphertexts", blobs)
	}
	t.Logf("profanity → web %d bytes, web → profanity %d bytes; %d files in the upload storage, no plaintext", len(photos[fromProf]), len(photos[fromWeb]), blobs)
}

// photoPNG is a w×h PNG that looks like a photo (a sky of hue, a sun, a
// hill) with a strip of random pixels at the bottom, so that the file's
// bytes are its own.
func photoPNG(t *testing.T, w, h int, hue color.RGBA) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	noise := make([]byte, w*6*3)
	rand.Read(noise)
	mix := func(a, b uint8, f float64) uint8 { return uint8(float64(a)*(1-f) + float64(b)*f) }
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			f := float64(y) / float64(h)
			c := color.RGBA{mix(hue.R, 255, f), mix(hue.G, 214, f), mix(hue.B, 170, f), 255}
			if dx, dy := x-w*2/3, y-h/3; dx*dx+dy*dy < (h/6)*(h/6) {
				c = color.RGBA{255, 221, 87, 255}
			}
			if hill := h*3/4 + int(float64(h/10)*math.Sin(float64(x)/float64(w)*2*math.Pi)); y > hill {
				c = color.RGBA{46, 125, 50, 255}
			}
			if i := (y - (h - 6)) * w * 3; y >= h-6 {
				c = color.RGBA{noise[i+3*x], noise[i+3*x+1], noise[i+3*x+2], 255}
			}
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
