package interop

import (
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"bluetick/internal/xmpptest"
)

// TestUploadMeasured100MB is the measured run of docs/upload.md: a real
// bluetick process, a slot requested over XMPP, a 100 MiB PUT and GET over
// loopback HTTP, the throughput of each and the server's peak RSS (VmHWM).
// It writes 200 MiB to the temp dir, so it runs only with
// BLUETICK_UPLOAD_MEASURE=1.
func TestUploadMeasured100MB(t *testing.T) {
	if os.Getenv("BLUETICK_UPLOAD_MEASURE") != "1" {
		t.Skip("set BLUETICK_UPLOAD_MEASURE=1 to measure a 100 MiB upload and download")
	}
	const size = 100 << 20
	s := startServer(t, "alice")
	rssBefore := vmKB(t, s.cmd.Process.Pid, "VmRSS:")
	c := xmpptest.Dial(t, fmt.Sprintf("127.0.0.1:%d", s.c2s), domain)
	c.Login("alice", s.users["alice"], "bench")
	c.Send(fmt.Sprintf("<iq type='get' id='slot1' to='%s'><request xmlns='urn:xmpp:http:upload:0' filename='video.mp4' size='%d' content-type='video/mp4'/></iq>", domain, size))
	iq := c.Expect("iq")
	slot := iq.Child("urn:xmpp:http:upload:0", "slot")
	if iq.Attr("type") != "result" || slot == nil {
		t.Fatalf("slot request: %s", iq)
	}
	put := slot.Child("urn:xmpp:http:upload:0", "put")
	getURL := slot.Child("urn:xmpp:http:upload:0", "get").Attr("url")
	// The URL names the domain (localhost); reach the loopback listener.
	fix := func(u string) string { return strings.Replace(u, "localhost:", "127.0.0.1:", 1) }

	var seed [32]byte
	src := &limitedRand{rng: rand.NewChaCha8(seed), n: size}
	h := sha256.New()
	req, _ := http.NewRequest("PUT", fix(put.Attr("url")), io.TeeReader(src, h))
	req.ContentLength = size
	req.Header.Set("Content-Type", "video/mp4")
	req.Header.Set("Authorization", put.Child("urn:xmpp:http:upload:0", "header").Text())
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	putDur := time.Since(start)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("PUT: %s", resp.Status)
	}
	want := fmt.Sprintf("%x", h.Sum(nil))

	start = time.Now()
	resp, err = http.Get(fix(getURL))
	if err != nil {
		t.Fatal(err)
	}
	g := sha256.New()
	n, err := io.Copy(g, resp.Body)
	resp.Body.Close()
	getDur := time.Since(start)
	if err != nil || n != size || fmt.Sprintf("%x", g.Sum(nil)) != want {
		t.Fatalf("GET: %d bytes, %v, identical %v", n, err, fmt.Sprintf("%x", g.Sum(nil)) == want)
	}
	mb := float64(size) / 1e6
	t.Logf("100 MiB: PUT %.0f MB/s (%v), GET %.0f MB/s (%v); server RSS %.1f MiB before, peak %.1f MiB (VmHWM)",
		mb/putDur.Seconds(), putDur.Round(time.Millisecond), mb/getDur.Seconds(), getDur.Round(time.Millisecond),
		rssBefore/1024, vmKB(t, s.cmd.Process.Pid, "VmHWM:")/1024)
}

type limitedRand struct {
	rng *rand.ChaCha8
	n   int64
}

func (r *limitedRand) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	r.rng.Read(p)
	r.n -= int64(len(p))
	return len(p), nil
}

func vmKB(t *testing.T, pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}
