package c2s

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestWSIdleDriver measures idle WebSocket sessions on a running server:
// RSS and goroutines at each count of idle authenticated sessions, and the
// latency of the first message to and from a parked session against an
// active one. It runs only when BLUETICK_WSIDLE_ADDR names the server's
// HTTPS listener (loopback only); every loop is bounded by the counts
// given and by BLUETICK_WSIDLE_TIMEOUT (default 15m). See
// docs/benchmarks.md ("Ten kilobytes per idle session (issue 19)") for how it is run.
//
//	BLUETICK_WSIDLE_ADDR    127.0.0.1:PORT of listen.https
//	BLUETICK_WSIDLE_PID     the server's pid (RSS from /proc)
//	BLUETICK_WSIDLE_PPROF   http://127.0.0.1:PORT of listen.http with serve --pprof (goroutines)
//	BLUETICK_WSIDLE_COUNTS  e.g. 5000,15000
//	BLUETICK_WSIDLE_DOMAIN, _USERS (pattern, user%d), _PASS
//	BLUETICK_WSIDLE_HEAP    a directory for the server's heap profile at each count
//	BLUETICK_WSIDLE_CURVES  x25519 to offer only X25519 (default: Go's list,
//	                        with X25519MLKEM768 first, as current browsers)
func TestWSIdleDriver(t *testing.T) {
	addr := os.Getenv("BLUETICK_WSIDLE_ADDR")
	if addr == "" {
		t.Skip("set BLUETICK_WSIDLE_ADDR to measure a running server")
	}
	if !strings.HasPrefix(addr, "127.") && !strings.HasPrefix(addr, "[::1]") && !strings.HasPrefix(addr, "localhost:") {
		t.Fatal("BLUETICK_WSIDLE_ADDR must be a loopback address")
	}
	env := func(k, def string) string {
		if v := os.Getenv("BLUETICK_WSIDLE_" + k); v != "" {
			return v
		}
		return def
	}
	pid, _ := strconv.Atoi(env("PID", "0"))
	pprof := env("PPROF", "")
	domain, users, pass := env("DOMAIN", "bench.local"), env("USERS", "user%d"), env("PASS", "benchpass")
	timeout, err := time.ParseDuration(env("TIMEOUT", "15m"))
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(timeout)
	var counts []int
	for _, s := range strings.Split(env("COUNTS", "5000,15000"), ",") {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 || n > 19000 {
			t.Fatalf("BLUETICK_WSIDLE_COUNTS: %q is not a count of 1 to 19,000", s)
		}
		counts = append(counts, n)
	}
	sample := func(label string, n int) {
		t.Helper()
		// Idle: held until the server's goroutine count stops falling
		// (parking takes 2 s of silence), at most 60 s.
		g, last := goroutines(t, pprof), -1
		for end := time.Now().Add(60 * time.Second); time.Now().Before(end) && g != last; {
			time.Sleep(3 * time.Second)
			last, g = g, goroutines(t, pprof)
		}
		t.Logf("%s: %d sessions, RSS %.1f MiB, %d goroutines", label, n, float64(rss(t, pid))/(1<<20), g)
		if dir := env("HEAP", ""); dir != "" && pprof != "" {
			saveHeap(t, pprof, fmt.Sprintf("%s/heap.%d", dir, n))
		}
	}
	sample("baseline", 0)

	var conns []*rawWS
	var failed atomic.Int64
	for _, target := range counts {
		work := make(chan int)
		var mu sync.Mutex
		var wg sync.WaitGroup
		for range 50 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range work {
					if time.Now().After(deadline) {
						failed.Add(1)
						continue
					}
					w, ok := driverLogin(t, addr, domain, fmt.Sprintf(users, i+1), pass)
					if !ok {
						failed.Add(1)
						continue
					}
					mu.Lock()
					conns = append(conns, w)
					mu.Unlock()
				}
			}()
		}
		start := time.Now()
		for i := len(conns) + int(failed.Load()); i < target; i++ {
			work <- i
		}
		close(work)
		wg.Wait()
		t.Logf("%d sessions logged in (%d failed) in %v", len(conns), failed.Load(), time.Since(start).Round(time.Millisecond))
		sample("idle", len(conns))
	}
	if len(conns) < 1002 {
		t.Fatalf("only %d sessions", len(conns))
	}

	// Latency: a to conns[i] while conns[i] is parked, then while it is
	// active; conns[i]'s ping from parked, then from active.
	a := conns[0]
	var toParked, toActive, fromParked, fromActive []time.Duration
	for _, b := range conns[1:1001] {
		if time.Now().After(deadline) {
			t.Fatal("out of time")
		}
		toParked = append(toParked, driverMessage(a, b))
		fromParked = append(fromParked, driverPing(b))
		toActive = append(toActive, driverMessage(a, b))
		fromActive = append(fromActive, driverPing(b))
	}
	for _, s := range []struct {
		name string
		d    []time.Duration
	}{{"message to a parked session", toParked}, {"message to an active session", toActive},
		{"ping round trip from a parked session", fromParked}, {"ping round trip from an active session", fromActive}} {
		slices.Sort(s.d)
		t.Logf("%s: p50 %v, p99 %v, max %v (%d samples)", s.name, s.d[len(s.d)/2], s.d[len(s.d)*99/100], s.d[len(s.d)-1], len(s.d))
	}
}

// driverTB turns a rawWS failure into a panic that driverLogin counts.
type driverTB struct{ testing.TB }

func (driverTB) Helper()                   {}
func (driverTB) Fatal(args ...any)         { panic(fmt.Sprint(args...)) }
func (driverTB) Fatalf(f string, a ...any) { panic(fmt.Sprintf(f, a...)) }

func driverLogin(t *testing.T, addr, domain, user, pass string) (w *rawWS, ok bool) {
	defer func() {
		if r := recover(); r != nil {
			t.Logf("login %s: %v", user, r)
			ok = false
		}
	}()
	tc := insecureTLS(0)
	if os.Getenv("BLUETICK_WSIDLE_CURVES") == "x25519" {
		tc.CurvePreferences = []tls.CurveID{tls.X25519}
	}
	w = dialRawWS(driverTB{t}, addr, tc)
	w.domain, w.pass = domain, pass
	w.login(user, "idle")
	w.c.SetReadDeadline(time.Time{})
	return w, true
}

// driverMessage times a chat message from a to b.
func driverMessage(a, b *rawWS) time.Duration {
	jid := b.boundJID()
	start := time.Now()
	a.send("<message xmlns='jabber:client' to='" + jid + "' type='chat'><body>x</body></message>")
	for {
		if el := b.next(); el.Name == "message" {
			return time.Since(start)
		}
	}
}

// driverPing times an XMPP ping from b to the server.
func driverPing(b *rawWS) time.Duration {
	start := time.Now()
	b.send("<iq xmlns='jabber:client' type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>")
	for {
		if el := b.next(); el.Name == "iq" && el.Attr("id") == "p" {
			return time.Since(start)
		}
	}
}

// rss is the resident memory of pid, 0 without one.
func rss(t *testing.T, pid int) int64 {
	if pid == 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// goroutines reads the server's goroutine count from its pprof endpoint
// (-1 without one).
func goroutines(t *testing.T, base string) int {
	if base == "" {
		return -1
	}
	resp, err := http.Get(base + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	io.Copy(io.Discard, resp.Body)
	// "goroutine profile: total N"
	n, _ := strconv.Atoi(strings.TrimSpace(line[strings.LastIndex(line, " ")+1:]))
	return n
}

// saveHeap writes the server's heap profile (after a GC) to file.
func saveHeap(t *testing.T, base, file string) {
	resp, err := http.Get(base + "/debug/pprof/heap?gc=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
