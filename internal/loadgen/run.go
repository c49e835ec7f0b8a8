package loadgen

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Run executes the configured scenario — in this process, or spread over
// cfg.Procs children — and returns the merged result.
func Run(ctx context.Context, cfg *Config, log io.Writer) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	RaiseFileLimit()
	if cfg.SaltCache != "" {
		if err := LoadSaltCache(cfg.SaltCache); err != nil {
			return nil, err
		}
		defer SaveSaltCache(cfg.SaltCache)
	}
	res := newResult(cfg)
	ctx, cancel := context.WithDeadline(ctx, cfg.T0.Add(cfg.Duration))
	defer cancel()

	// Server samples: at every barrier, and every 500 ms for the chart.
	var smu sync.Mutex
	sample := func(name string) {
		if cfg.PID <= 0 {
			return
		}
		s := SampleProc(cfg.PID)
		smu.Lock()
		res.Samples[name] = s
		smu.Unlock()
		fmt.Fprintf(log, "bench: %-10s server rss %.1f MiB, cpu %.2f s\n", name, float64(s.RSSBytes)/(1<<20), s.CPUSec)
	}
	stopSampler := make(chan struct{})
	var samplerWG sync.WaitGroup
	if cfg.PID > 0 {
		samplerWG.Add(1)
		go func() {
			defer samplerWG.Done()
			tk := time.NewTicker(500 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-stopSampler:
					return
				case <-tk.C:
					s := SampleProc(cfg.PID)
					smu.Lock()
					res.RSS = append(res.RSS, RSSPoint{T: s.At.Sub(cfg.T0).Seconds(), MiB: float64(s.RSSBytes) / (1 << 20), CPU: s.CPUSec})
					smu.Unlock()
				}
			}
		}()
	}
	hook := func(name string) time.Time {
		sample(name)
		if name == "registered" {
			fmt.Fprintf(log, "bench: %s: %s with %s\n", cfg.Label, cfg.Scenario, describe(cfg))
		}
		return time.Now().Add(200 * time.Millisecond)
	}

	cpu0 := SelfCPU()
	var part *Partial
	var err error
	if cfg.Procs <= 1 {
		part = newPartial(cfg)
		w := &worker{cfg: cfg, p: part, ctx: ctx, barrier: func(name string) (time.Time, error) {
			return hook(name), nil
		}}
		err = w.run()
		part.finish()
	} else {
		part, err = runChildren(ctx, cfg, hook, log)
	}
	close(stopSampler)
	samplerWG.Wait()
	parentCPU := SelfCPU() - cpu0
	if part != nil {
		res.fill(cfg, part, parentCPU)
	}
	return res, err
}

func describe(cfg *Config) string {
	switch cfg.Scenario {
	case "conns":
		return fmt.Sprintf("%d connections held %s", cfg.Conns, cfg.Hold)
	case "chat":
		if cfg.Rate > 0 {
			return fmt.Sprintf("%d pairs x %d messages each way, window %d, %d msg/s", cfg.Pairs, cfg.Messages, cfg.Window, cfg.Rate)
		}
		return fmt.Sprintf("%d pairs x %d messages each way, window %d", cfg.Pairs, cfg.Messages, cfg.Window)
	case "offline":
		return fmt.Sprintf("%d offline users x %d messages", cfg.OfflineUsers, cfg.OfflineMessages)
	case "storm":
		return fmt.Sprintf("%d logins in %s", cfg.Storm, cfg.StormWindow)
	case "group":
		return fmt.Sprintf("room %s@%s, %d members, %d senders x %d messages, window %d", cfg.Room, cfg.MUCService,
			cfg.GroupMembers, cfg.GroupSenders, cfg.GroupMessages, cfg.Window)
	case "reconnect":
		modes, _ := reconnectModes(cfg.ReconnectMode)
		return fmt.Sprintf("%d clients x %d reconnects (%s), pause %s, TLS %s", cfg.ReconnectClients, cfg.Reconnects,
			strings.Join(modes, " then "), cfg.ReconnectPause, cfg.Opt.TLS)
	}
	return fmt.Sprintf("%d users", cfg.RegisterN)
}

// RunChild is the body of a child process: it runs its shard, speaking the
// barrier protocol on stdin/stdout ("B name" up, "GO unixnano" down) and
// ending with "R {json}".
func RunChild(cfg *Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	RaiseFileLimit()
	if cfg.SaltCache != "" {
		if err := LoadSaltCache(cfg.SaltCache); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), cfg.T0.Add(cfg.Duration))
	defer cancel()
	in := bufio.NewReader(os.Stdin)
	var outMu sync.Mutex
	out := bufio.NewWriter(os.Stdout)
	p := newPartial(cfg)
	w := &worker{cfg: cfg, p: p, ctx: ctx, barrier: func(name string) (time.Time, error) {
		outMu.Lock()
		fmt.Fprintf(out, "B %s\n", name)
		out.Flush()
		outMu.Unlock()
		line, err := in.ReadString('\n')
		if err != nil {
			return time.Time{}, fmt.Errorf("barrier %s: parent gone: %v", name, err)
		}
		f := strings.Fields(line)
		if len(f) != 2 || f[0] != "GO" {
			return time.Time{}, fmt.Errorf("barrier %s: bad line %q", name, line)
		}
		ns, _ := strconv.ParseInt(f[1], 10, 64)
		return time.Unix(0, ns), nil
	}}
	err := w.run()
	p.finish()
	if err != nil {
		p.Notes = append(p.Notes, fmt.Sprintf("shard %d: %v", cfg.Shard, err))
	}
	if cfg.SaltCache != "" {
		SaveSaltCache(cfg.SaltCache)
	}
	b, _ := json.Marshal(p)
	outMu.Lock()
	fmt.Fprintf(out, "R %s\n", b)
	out.Flush()
	outMu.Unlock()
	return nil
}

type childMsg struct {
	shard   int
	barrier string
	result  *Partial
	err     error
}

// runChildren starts cfg.Procs copies of this program in child mode and
// drives their barriers.
func runChildren(ctx context.Context, cfg *Config, hook func(string) time.Time, log io.Writer) (*Partial, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	n := cfg.Procs
	msgs := make(chan childMsg, 4*n)
	stdins := make([]io.WriteCloser, n)
	cmds := make([]*exec.Cmd, n)
	for i := 0; i < n; i++ {
		args := append([]string{"bench"}, cfg.Args...)
		args = append(args, "--child", fmt.Sprintf("%d/%d", i, n), "--t0", strconv.FormatInt(cfg.T0.UnixNano(), 10))
		cmd := exec.Command(exe, args...)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("starting child %d: %v", i, err)
		}
		stdins[i], cmds[i] = stdin, cmd
		go func() {
			sc := bufio.NewScanner(stdout)
			sc.Buffer(make([]byte, 1<<20), 1<<30)
			got := false
			for sc.Scan() {
				line := sc.Text()
				switch {
				case strings.HasPrefix(line, "B "):
					msgs <- childMsg{shard: i, barrier: line[2:]}
				case strings.HasPrefix(line, "R "):
					p := &Partial{}
					if err := json.Unmarshal([]byte(line[2:]), p); err != nil {
						msgs <- childMsg{shard: i, err: fmt.Errorf("child %d result: %v", i, err)}
					} else {
						got = true
						msgs <- childMsg{shard: i, result: p}
					}
				default:
					fmt.Fprintf(log, "child %d: %s\n", i, line)
				}
			}
			werr := cmd.Wait()
			if !got {
				msgs <- childMsg{shard: i, err: fmt.Errorf("child %d ended without a result: %v", i, werr)}
			}
		}()
	}
	kill := func() {
		for _, c := range cmds {
			if c.Process != nil {
				c.Process.Kill()
			}
		}
	}
	// The children stop themselves at the deadline; this is the backstop.
	hard := time.AfterFunc(time.Until(cfg.T0.Add(cfg.Duration))+60*time.Second, kill)
	defer hard.Stop()

	total := newPartial(cfg)
	total.Timeline = map[string][]int64{}
	waiting := map[string]int{}
	results := 0
	var firstErr error
	for results < n {
		m := <-msgs
		switch {
		case m.err != nil:
			results++
			if firstErr == nil {
				firstErr = m.err
			}
			// A lost child would hold every barrier: stop them all.
			kill()
		case m.result != nil:
			results++
			total.merge(m.result)
		default:
			waiting[m.barrier]++
			if waiting[m.barrier] == n {
				t := hook(m.barrier)
				line := fmt.Sprintf("GO %d\n", t.UnixNano())
				for _, w := range stdins {
					io.WriteString(w, line)
				}
			}
		}
	}
	for _, w := range stdins {
		w.Close()
	}
	if firstErr != nil && total.Attempts == 0 && total.Registered == 0 && total.Existing == 0 {
		return total, firstErr
	}
	if firstErr != nil {
		total.Notes = append(total.Notes, firstErr.Error())
	}
	return total, nil
}
