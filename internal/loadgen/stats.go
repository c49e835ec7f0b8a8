package loadgen

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Percentile returns the q-th percentile (0 < q <= 100) of sorted samples
// by the nearest-rank method: the smallest sample such that at least q% of
// the samples are less than or equal to it. It returns 0 for no samples.
func Percentile(sorted []int64, q float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	if q <= 0 {
		return sorted[0]
	}
	if q >= 100 {
		return sorted[n-1]
	}
	// The epsilon keeps 99.9% of 1000 at rank 999 despite floating point.
	rank := int(math.Ceil(q*float64(n)/100 - 1e-9))
	if rank < 1 {
		rank = 1
	}
	return sorted[rank-1]
}

// Summary is the distribution of a set of durations, in milliseconds.
type Summary struct {
	N    int     `json:"n"`
	Mean float64 `json:"mean_ms"`
	P50  float64 `json:"p50_ms"`
	P90  float64 `json:"p90_ms"`
	P99  float64 `json:"p99_ms"`
	P999 float64 `json:"p999_ms"`
	Max  float64 `json:"max_ms"`
}

// Summarize sorts ns (durations in nanoseconds) in place and summarizes it.
func Summarize(ns []int64) Summary {
	if len(ns) == 0 {
		return Summary{}
	}
	slices.Sort(ns)
	var sum float64
	for _, v := range ns {
		sum += float64(v)
	}
	ms := func(v int64) float64 { return math.Round(float64(v)/1e3) / 1e3 }
	return Summary{
		N:    len(ns),
		Mean: math.Round(sum/float64(len(ns))/1e3) / 1e3,
		P50:  ms(Percentile(ns, 50)),
		P90:  ms(Percentile(ns, 90)),
		P99:  ms(Percentile(ns, 99)),
		P999: ms(Percentile(ns, 99.9)),
		Max:  ms(ns[len(ns)-1]),
	}
}

// ProcSample is the state of a server's process tree at one moment.
type ProcSample struct {
	At       time.Time `json:"at"`
	RSSBytes int64     `json:"rss_bytes"`
	CPUSec   float64   `json:"cpu_seconds"` // user+system, whole tree, since start
	Procs    int       `json:"procs"`
}

const clkTck = 100 // USER_HZ on Linux

// procStat reads ppid and utime+stime (ticks) of one process.
func procStat(pid int) (ppid int, ticks int64, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, false
	}
	// comm may contain spaces and parentheses: fields start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, 0, false
	}
	// f[0]=state f[1]=ppid ... f[11]=utime f[12]=stime
	ppid, _ = strconv.Atoi(f[1])
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return ppid, u + s, true
}

// procRSS reads VmRSS of one process in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// Tree returns pid and all its descendants.
func Tree(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if pp, _, ok := procStat(p); ok {
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// SampleProc sums RSS and CPU over the process tree rooted at pid.
func SampleProc(pid int) ProcSample {
	s := ProcSample{At: time.Now()}
	if pid <= 0 {
		return s
	}
	for _, p := range Tree(pid) {
		_, t, ok := procStat(p)
		if !ok {
			continue
		}
		s.Procs++
		s.CPUSec += float64(t) / clkTck
		s.RSSBytes += procRSS(p)
	}
	return s
}

// ProcAlive reports whether pid exists.
func ProcAlive(pid int) bool {
	_, err := os.Stat(filepath.Join("/proc", strconv.Itoa(pid)))
	return err == nil
}

// SelfCPU is this process's user+system CPU seconds.
func SelfCPU() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return tv(ru.Utime) + tv(ru.Stime)
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// RaiseFileLimit lifts the soft open-files limit to the hard one.
func RaiseFileLimit() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}
