package loadgen

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"
)

// Metric is one headline figure of a run.
type Metric struct {
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Unit   string  `json:"unit"`
	Better string  `json:"better"` // "higher" or "lower"
}

// RSSPoint is one periodic sample of the server for the chart.
type RSSPoint struct {
	T   float64 `json:"t"` // seconds since the run started
	MiB float64 `json:"rss_mib"`
	CPU float64 `json:"cpu_seconds"`
}

// Result is the outcome of one run, as written to --json.
type Result struct {
	Label    string         `json:"label"`
	Server   string         `json:"server"`
	Scenario string         `json:"scenario"`
	Started  time.Time      `json:"started"`
	Params   map[string]any `json:"params"`
	Host     map[string]any `json:"host"`

	TLS        map[string]int `json:"tls"`
	Mech       string         `json:"mechanism"`
	Attempts   int            `json:"attempts"`
	OK         int            `json:"ok"`
	Failed     int            `json:"failed"`
	Errors     map[string]int `json:"errors,omitempty"`
	Registered int            `json:"registered"`
	Existing   int            `json:"already_registered"`
	RegFailed  int            `json:"register_failed"`
	Sent       int64          `json:"sent"`
	Received   int64          `json:"received"`
	Receipts   int64          `json:"receipts"`
	Expected   int64          `json:"expected"`
	Flushed    int64          `json:"flushed_leftovers,omitempty"`
	Dropped    int64          `json:"dropped_connections"`
	Duplicates int64          `json:"duplicates"`
	MsgErrors  int64          `json:"message_errors"`
	Latency    Summary        `json:"latency"`
	ReceiptRTT Summary        `json:"receipt_rtt"`
	AckLatency Summary        `json:"ack_latency"` // sender's ✓ (XEP-0198 ack), with --sm
	LoginTime  Summary        `json:"login_time"`
	// conns --wake: first message to a parked session, and to an awake one.
	WakeParked   Summary               `json:"wake_parked"`
	WakeActive   Summary               `json:"wake_active"`
	Spans        map[string]float64    `json:"spans_seconds"`
	Samples      map[string]ProcSample `json:"server_samples,omitempty"`
	ServerCPU    float64               `json:"server_cpu_seconds"`
	GenCPU       float64               `json:"generator_cpu_seconds"`
	BytesIn      int64                 `json:"wire_bytes_from_server"`
	BytesOut     int64                 `json:"wire_bytes_to_server"`
	Metrics      []Metric              `json:"metrics"`
	Timeline     map[string][]int64    `json:"timeline,omitempty"`
	TimelineStep float64               `json:"timeline_step_seconds"`
	RSS          []RSSPoint            `json:"server_rss,omitempty"`
	TimedOut     bool                  `json:"timed_out"`
	Notes        []string              `json:"notes,omitempty"`
	// reconnect: by mode (legacy, sasl2)
	Reconnect map[string]*ReconnectSummary `json:"reconnect,omitempty"`
}

func newResult(cfg *Config) *Result {
	p := map[string]any{
		"users": cfg.Users, "tls": cfg.Opt.TLS, "sm": cfg.Opt.SM, "procs": cfg.Procs,
		"concurrency": cfg.Concurrency, "tls_curves": fmt.Sprint(cfg.Opt.Curves), "duration_s": cfg.Duration.Seconds(), "sources": len(cfg.Opt.Sources),
	}
	switch cfg.Scenario {
	case "conns":
		p["conns"], p["hold_s"] = cfg.Conns, cfg.Hold.Seconds()
	case "chat":
		p["pairs"], p["messages"], p["window"], p["body_bytes"] = cfg.Pairs, cfg.Messages, cfg.Window, cfg.BodySize
		p["rate"] = cfg.Rate
	case "offline":
		p["offline_users"], p["offline_messages"], p["body_bytes"] = cfg.OfflineUsers, cfg.OfflineMessages, cfg.BodySize
	case "storm":
		p["storm"], p["storm_window_s"] = cfg.Storm, cfg.StormWindow.Seconds()
	case "group":
		p["group_members"], p["group_senders"], p["group_messages"] = cfg.GroupMembers, cfg.GroupSenders, cfg.GroupMessages
		p["window"], p["body_bytes"], p["muc_service"], p["room"] = cfg.Window, cfg.BodySize, cfg.MUCService, cfg.Room
	case "reconnect":
		p["reconnect_clients"], p["reconnects"], p["reconnect_mode"] = cfg.ReconnectClients, cfg.Reconnects, cfg.ReconnectMode
		p["reconnect_pause_s"] = cfg.ReconnectPause.Seconds()
		p["fast_count"] = cfg.FastCount
	case "register":
		p["register_count"] = cfg.RegisterN
	}
	host, _ := os.Hostname()
	mech := cfg.Opt.Mech
	if mech == "" {
		mech = "SCRAM-SHA-1"
	}
	return &Result{
		Label: cfg.Label, Server: cfg.Opt.Server, Scenario: cfg.Scenario, Started: cfg.T0, Params: p,
		Host:    map[string]any{"name": host, "cpus": runtime.NumCPU(), "go": runtime.Version(), "loadavg_start": loadavg()},
		Mech:    mech,
		Samples: map[string]ProcSample{}, TimelineStep: TimelineBucket.Seconds(),
	}
}

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}

// fill computes the metrics from the merged partial and the samples.
func (r *Result) fill(cfg *Config, p *Partial, parentCPU float64) {
	r.TLS, r.Attempts, r.OK, r.Failed, r.Errors = p.TLS, p.Attempts, p.OK, p.Failed, p.Errors
	r.Registered, r.Existing, r.RegFailed = p.Registered, p.Existing, p.RegFailed
	r.Sent, r.Received, r.Receipts, r.Expected, r.Flushed = p.Sent, p.Received, p.Receipts, p.Expected, p.Flushed
	r.Dropped, r.MsgErrors, r.Duplicates = p.Dropped, p.MsgErrors, p.Duplicates
	r.Latency, r.ReceiptRTT, r.LoginTime = Summarize(p.Lat), Summarize(p.RTT), Summarize(p.Login)
	r.AckLatency = Summarize(p.Ack)
	r.WakeParked, r.WakeActive = Summarize(p.WakeParked), Summarize(p.WakeActive)
	r.Spans = map[string]float64{}
	for k, s := range p.Spans {
		r.Spans[k] = round(s.Seconds(), 3)
	}
	r.GenCPU = round(p.GenCPU, 2)
	if cfg.Procs > 1 {
		r.GenCPU = round(p.GenCPU+parentCPU, 2)
	}
	r.Timeline, r.TimedOut, r.Notes = p.Timeline, p.TimedOut, p.Notes
	r.BytesIn, r.BytesOut = p.BytesIn, p.BytesOut
	r.Host["loadavg_end"] = loadavg()
	for k, v := range r.Errors {
		if v == 0 {
			delete(r.Errors, k)
		}
	}

	cpu := func(a, b string) (float64, bool) {
		sa, ok1 := r.Samples[a]
		sb, ok2 := r.Samples[b]
		if !ok1 || !ok2 {
			return 0, false
		}
		return sb.CPUSec - sa.CPUSec, true
	}
	add := func(name string, v float64, unit, better string) {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return
		}
		r.Metrics = append(r.Metrics, Metric{Name: name, Value: round(v, 3), Unit: unit, Better: better})
	}
	per := func(n float64, secs float64) float64 {
		if secs <= 0 {
			return math.NaN()
		}
		return n / secs
	}
	switch cfg.Scenario {
	case "conns":
		add("logins_per_s", per(float64(r.OK), r.Spans["login"]), "logins/s", "higher")
		add("login_p99", r.LoginTime.P99, "ms", "lower")
		if b, ok := r.Samples["before"]; ok {
			if h, ok := r.Samples["held"]; ok && r.OK > 0 {
				add("mem_per_conn", float64(h.RSSBytes-b.RSSBytes)/float64(r.OK)/1024, "KiB", "lower")
				add("rss_held", float64(h.RSSBytes)/(1<<20), "MiB", "lower")
			}
		}
		if c, ok := cpu("before", "connected"); ok && r.OK > 0 {
			r.ServerCPU = round(c, 2)
			add("server_cpu_per_login", c*1000/float64(r.OK), "ms", "lower")
		}
		if c, ok := cpu("connected", "held"); ok {
			add("idle_cpu", c, "s", "lower")
		}
		if r.WakeParked.N > 0 && r.WakeActive.N > 0 {
			add("wake_parked_p50", r.WakeParked.P50, "ms", "lower")
			add("wake_parked_p99", r.WakeParked.P99, "ms", "lower")
			add("wake_active_p50", r.WakeActive.P50, "ms", "lower")
			add("wake_active_p99", r.WakeActive.P99, "ms", "lower")
			add("wake_p99_cost", r.WakeParked.P99-r.WakeActive.P99, "ms", "lower")
		}
		add("failed", float64(r.Failed+int(r.Dropped)), "", "lower")
	case "chat":
		add("msgs_per_s", per(float64(r.Received), r.Spans["chat"]), "msg/s", "higher")
		add("latency_p50", r.Latency.P50, "ms", "lower")
		add("latency_p99", r.Latency.P99, "ms", "lower")
		add("latency_p999", r.Latency.P999, "ms", "lower")
		add("receipt_rtt_p99", r.ReceiptRTT.P99, "ms", "lower")
		if r.AckLatency.N > 0 {
			add("ack_p50", r.AckLatency.P50, "ms", "lower")
			add("ack_p99", r.AckLatency.P99, "ms", "lower")
		}
		if c, ok := cpu("start", "end"); ok && r.Received > 0 {
			r.ServerCPU = round(c, 2)
			add("server_cpu_per_msg", c*1e6/float64(r.Received), "µs", "lower")
		}
		if r.Received > 0 {
			add("wire_bytes_per_msg", float64(r.BytesIn+r.BytesOut)/float64(r.Received), "B", "lower")
		}
		add("lost", float64(r.Expected-r.Received), "msgs", "lower")
	case "offline":
		add("store_msgs_per_s", per(float64(r.Sent), r.Spans["store"]), "msg/s", "higher")
		add("drain_s", r.Spans["drain"], "s", "lower")
		add("drain_msgs_per_s", per(float64(r.Received), r.Spans["drain"]), "msg/s", "higher")
		if c, ok := cpu("start", "end"); ok && r.Received > 0 {
			r.ServerCPU = round(c, 2)
			add("server_cpu_per_msg", c*1e6/float64(r.Received), "µs", "lower")
		}
		add("lost", float64(r.Expected-r.Received), "msgs", "lower")
	case "storm":
		add("logins_per_s", per(float64(r.OK), r.Spans["storm"]), "logins/s", "higher")
		add("login_p50", r.LoginTime.P50, "ms", "lower")
		add("login_p99", r.LoginTime.P99, "ms", "lower")
		if c, ok := cpu("start", "end"); ok && r.OK > 0 {
			r.ServerCPU = round(c, 2)
			add("server_cpu_per_login", c*1000/float64(r.OK), "ms", "lower")
		}
		add("failed", float64(r.Failed), "", "lower")
	case "group":
		// Deliveries: one per message and joined member (the sender's
		// reflection included), over the time from the common start to the
		// last delivery.
		add("deliveries_per_s", per(float64(r.Received), r.Spans["group"]), "deliveries/s", "higher")
		add("posts_per_s", per(float64(r.Sent), r.Spans["group"]), "msg/s", "higher")
		add("latency_p50", r.Latency.P50, "ms", "lower")
		add("latency_p99", r.Latency.P99, "ms", "lower")
		add("latency_p999", r.Latency.P999, "ms", "lower")
		if c, ok := cpu("start", "end"); ok && r.Received > 0 {
			r.ServerCPU = round(c, 2)
			add("server_cpu_per_delivery", c*1e6/float64(r.Received), "µs", "lower")
		}
		if r.Received > 0 {
			add("wire_bytes_per_delivery", float64(r.BytesIn+r.BytesOut)/float64(r.Received), "B", "lower")
		}
		add("join_s", r.Spans["join"], "s", "lower")
		add("lost", float64(r.Expected-r.Received), "deliveries", "lower")
		add("duplicates", float64(r.Duplicates), "deliveries", "lower")
		add("failed", float64(r.Failed+int(r.Dropped)), "", "lower")
	case "reconnect":
		r.fillReconnect(p, cpu, add)
	case "register":
		add("registered", float64(r.Registered+r.Existing), "users", "higher")
	}
	if r.ServerCPU > 0 || r.GenCPU > 0 {
		add("generator_cpu", r.GenCPU, "s", "lower")
	}
	if cfg.Opt.TLS != "none" && r.TLS["none"] > 0 { // cannot happen: the client insists on TLS
		r.Notes = append(r.Notes, fmt.Sprintf("%d sessions were not encrypted", r.TLS["none"]))
	}
}

// loadavg is the 1-minute load average: other work on the machine shows
// up here.
func loadavg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	var v float64
	fmt.Sscan(string(b), &v)
	return v
}

// Metric returns the named metric.
func (r *Result) Metric(name string) (Metric, bool) {
	for _, m := range r.Metrics {
		if m.Name == name {
			return m, true
		}
	}
	return Metric{}, false
}

// WriteJSON writes the result.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResult reads a --json file.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	r := &Result{}
	if err := json.Unmarshal(b, r); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	return r, nil
}

// Markdown is a table of one run's metrics.
func (r *Result) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "### %s — %s (%s)\n\n", r.Label, r.Scenario, r.Started.Format(time.RFC3339))
	if r.Scenario == "reconnect" && len(r.Reconnect) > 0 {
		r.reconnectTable(&b)
	} else {
		fmt.Fprintf(&b, "| metric | value | unit |\n|---|---:|---|\n")
		for _, m := range r.Metrics {
			fmt.Fprintf(&b, "| %s | %s | %s |\n", m.Name, fmtNum(m.Value), m.Unit)
		}
	}
	fmt.Fprintf(&b, "\nTLS: %v, SASL %s; logins %d/%d", r.TLS, r.Mech, r.OK, r.Attempts)
	if r.Expected > 0 {
		if r.Scenario == "group" {
			fmt.Fprintf(&b, "; %d messages sent, deliveries %d/%d received, %d duplicates", r.Sent, r.Received, r.Expected, r.Duplicates)
		} else {
			fmt.Fprintf(&b, "; messages %d/%d received, %d receipts", r.Received, r.Expected, r.Receipts)
			if r.AckLatency.N > 0 {
				fmt.Fprintf(&b, "; ✓ (XEP-0198 ack) timed for %d of %d sent", r.AckLatency.N, r.Sent)
			}
		}
	}
	fmt.Fprintf(&b, "; server CPU %.2f s, generator CPU %.2f s\n", r.ServerCPU, r.GenCPU)
	if len(r.Errors) > 0 {
		keys := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		fmt.Fprintf(&b, "\nErrors:")
		for _, k := range keys {
			fmt.Fprintf(&b, " %s ×%d;", k, r.Errors[k])
		}
		b.WriteString("\n")
	}
	if r.TimedOut {
		b.WriteString("\n**Stopped by --duration before completion.**\n")
	}
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "\nNote: %s\n", n)
	}
	return b.String()
}

func fmtNum(v float64) string {
	switch a := math.Abs(v); {
	case a == 0:
		return "0"
	case a >= 1000:
		return fmt.Sprintf("%.0f", v)
	case a >= 100:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	default:
		return fmt.Sprintf("%.3f", v)
	}
}
