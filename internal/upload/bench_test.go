package upload

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const benchSize = 100 << 20 // 100 MiB

// randReader streams n pseudo-random bytes without holding them: the
// client side must not be what uses the memory being measured.
type randReader struct {
	rng *rand.ChaCha8
	n   int64
}

func (r *randReader) Read(p []byte) (int, error) {
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

func newRandReader(seed uint64, n int64) *randReader {
	var s [32]byte
	copy(s[:], strconv.FormatUint(seed, 10))
	return &randReader{rng: rand.NewChaCha8(s), n: n}
}

// peakHeap samples the Go heap in use until stopped; the upload service
// runs in this process, so this bounds what it holds per transfer.
type peakHeap struct {
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startPeak() *peakHeap {
	runtime.GC()
	p := &peakHeap{stop: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		var m runtime.MemStats
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > p.peak.Load() {
				p.peak.Store(m.HeapInuse)
			}
			select {
			case <-p.stop:
				return
			case <-t.C:
			}
		}
	}()
	return p
}

func (p *peakHeap) done() float64 {
	close(p.stop)
	p.wg.Wait()
	return float64(p.peak.Load()) / (1 << 20)
}

// rssPeakMB is the process's peak resident set (VmHWM), server and client.
func rssPeakMB() float64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkTransfer100MB PUTs and GETs a 100 MiB file through the HTTP
// handler on a real loopback HTTP server, on each backend, and reports
// MB/s and the peak Go heap in use during the transfers (peak-heap-MiB) and
// the process's peak RSS (server + client, peak-rss-MiB). Run it with
//
//	go test ./internal/upload/ -run '^$' -bench Transfer100MB -benchtime 3x
func BenchmarkTransfer100MB(b *testing.B) {
	for _, bk := range backends {
		b.Run(bk.name, func(b *testing.B) {
			lim := defaultLimits()
			lim.MaxFileSize = benchSize
			lim.Quota = 0
			lim.UploadsPerHour = 0
			e := newEnv(b, bk.new, lim)
			var last slotResp
			var lastSum string
			b.Run("put", func(b *testing.B) {
				b.SetBytes(benchSize)
				peak := startPeak()
				for i := 0; i < b.N; i++ {
					s := e.mustSlot("bench", "video.mp4", benchSize, "video/mp4")
					req, _ := http.NewRequest("PUT", s.put, newRandReader(uint64(i), benchSize))
					req.ContentLength = benchSize
					req.Header.Set("Authorization", s.auth)
					req.Header.Set("Content-Type", "video/mp4")
					resp, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					resp.Body.Close()
					wantStatus(b, "PUT", resp, http.StatusCreated)
					last, lastSum = s, strings.Trim(resp.Header.Get("ETag"), `"`)
				}
				b.ReportMetric(peak.done(), "peak-heap-MiB")
				b.ReportMetric(rssPeakMB(), "peak-rss-MiB")
			})
			b.Run("get", func(b *testing.B) {
				b.SetBytes(benchSize)
				peak := startPeak()
				for i := 0; i < b.N; i++ {
					resp, err := http.Get(last.get)
					if err != nil {
						b.Fatal(err)
					}
					h := sha256.New()
					n, err := io.Copy(h, resp.Body)
					resp.Body.Close()
					if err != nil || n != benchSize || hex.EncodeToString(h.Sum(nil)) != lastSum {
						b.Fatalf("GET: %d bytes, %v, hash mismatch %v", n, err, hex.EncodeToString(h.Sum(nil)) != lastSum)
					}
				}
				b.ReportMetric(peak.done(), "peak-heap-MiB")
				b.ReportMetric(rssPeakMB(), "peak-rss-MiB")
			})
		})
	}
}
