package loadgen

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"strings"
)

// Row is one metric across servers.
type Row struct {
	Scenario string             `json:"scenario"`
	Metric   string             `json:"metric"`
	Unit     string             `json:"unit"`
	Better   string             `json:"better"`
	Values   map[string]float64 `json:"values"` // median over rounds
	Ratios   map[string]float64 `json:"ratios"` // base / other, of the medians
	// With several rounds: every value and the ratio range across rounds.
	All        map[string][]float64  `json:"all,omitempty"`
	RatioRange map[string][2]float64 `json:"ratio_range,omitempty"`
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	n := len(s)
	if n == 0 {
		return 0
	}
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// Report compares the results of several servers.
type Report struct {
	Base    string    `json:"base"`
	Rounds  int       `json:"rounds"`
	Labels  []string  `json:"labels"`
	Rows    []Row     `json:"rows"`
	Results []*Result `json:"-"`
}

var scenarioOrder = map[string]int{"conns": 0, "chat": 1, "offline": 2, "storm": 3, "group": 4, "reconnect": 5, "register": 6}

// headline lists the metrics drawn in the chart.
var headline = []string{
	"conns.logins_per_s", "conns.mem_per_conn", "conns.server_cpu_per_login",
	"chat.msgs_per_s", "chat.latency_p50", "chat.latency_p99", "chat.ack_p50", "chat.ack_p99", "chat.server_cpu_per_msg",
	"offline.store_msgs_per_s", "offline.drain_msgs_per_s", "offline.server_cpu_per_msg",
	"storm.logins_per_s", "storm.login_p99", "storm.server_cpu_per_login",
	"group.deliveries_per_s", "group.latency_p99", "group.server_cpu_per_delivery",
	"reconnect.legacy_reconnect_p99", "reconnect.legacy_server_cpu_per_reconnect",
	"reconnect.sasl2_reconnect_p99", "reconnect.sasl2_server_cpu_per_reconnect",
}

// NewReport groups results by scenario and metric; base is the label the
// ratios are computed for (base value / other value).
func NewReport(rs []*Result, base string) *Report {
	rep := &Report{Base: base, Results: rs}
	seen := map[string]bool{}
	add := func(l string) {
		if !seen[l] {
			seen[l] = true
			rep.Labels = append(rep.Labels, l)
		}
	}
	for _, r := range rs {
		if r.Label == base {
			add(r.Label)
		}
	}
	for _, r := range rs {
		add(r.Label)
	}
	rows := map[string]*Row{}
	var keys []string
	for _, r := range rs {
		for _, m := range r.Metrics {
			k := r.Scenario + "." + m.Name
			row := rows[k]
			if row == nil {
				row = &Row{Scenario: r.Scenario, Metric: m.Name, Unit: m.Unit, Better: m.Better, Values: map[string]float64{},
					Ratios: map[string]float64{}, All: map[string][]float64{}, RatioRange: map[string][2]float64{}}
				rows[k] = row
				keys = append(keys, k)
			}
			row.All[r.Label] = append(row.All[r.Label], m.Value)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		return scenarioOrder[rows[keys[i]].Scenario] < scenarioOrder[rows[keys[j]].Scenario]
	})
	for _, k := range keys {
		row := rows[k]
		for l, all := range row.All {
			row.Values[l] = median(all)
			if len(all) > rep.Rounds {
				rep.Rounds = len(all)
			}
		}
		if b, ok := row.Values[base]; ok {
			for l, v := range row.Values {
				if l != base && v != 0 {
					row.Ratios[l] = b / v
				}
			}
			// Ratio range: round i of the base against round i of the other.
			for l, all := range row.All {
				ball := row.All[base]
				if l == base || len(all) < 2 || len(all) != len(ball) {
					continue
				}
				lo, hi := math.Inf(1), math.Inf(-1)
				for i := range all {
					if all[i] != 0 {
						r := ball[i] / all[i]
						lo, hi = math.Min(lo, r), math.Max(hi, r)
					}
				}
				if !math.IsInf(lo, 0) {
					row.RatioRange[l] = [2]float64{lo, hi}
				}
			}
		}
		rep.Rows = append(rep.Rows, *row)
	}
	return rep
}

// Advantage turns a ratio into "how many times better the base is": the
// ratio itself when higher is better, its inverse when lower is better.
func Advantage(ratio float64, better string) float64 {
	if better == "lower" {
		if ratio == 0 {
			return math.Inf(1)
		}
		return 1 / ratio
	}
	return ratio
}

// Markdown renders the comparison table.
func (rep *Report) Markdown() string {
	var b strings.Builder
	others := []string{}
	for _, l := range rep.Labels {
		if l != rep.Base {
			others = append(others, l)
		}
	}
	b.WriteString("| scenario | metric | unit | better |")
	for _, l := range rep.Labels {
		fmt.Fprintf(&b, " %s |", l)
	}
	for _, o := range others {
		fmt.Fprintf(&b, " %s/%s |", rep.Base, o)
	}
	b.WriteString("\n|---|---|---|---|")
	for range rep.Labels {
		b.WriteString("---:|")
	}
	for range others {
		b.WriteString("---:|")
	}
	b.WriteString("\n")
	for _, row := range rep.Rows {
		if row.Metric == "generator_cpu" || row.Metric == "registered" || row.Metric == "idle_cpu" {
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |", row.Scenario, row.Metric, row.Unit, row.Better)
		for _, l := range rep.Labels {
			if v, ok := row.Values[l]; ok {
				fmt.Fprintf(&b, " %s |", fmtNum(v))
			} else {
				b.WriteString(" – |")
			}
		}
		for _, o := range others {
			if r, ok := row.Ratios[o]; ok {
				if rr, ok := row.RatioRange[o]; ok {
					fmt.Fprintf(&b, " %s (%s–%s) |", fmtRatio(r, row.Better), fmtR(rr[0]), fmtR(rr[1]))
				} else {
					fmt.Fprintf(&b, " %s |", fmtRatio(r, row.Better))
				}
			} else {
				b.WriteString(" – |")
			}
		}
		b.WriteString("\n")
	}
	b.WriteString("\nRatios are " + rep.Base + "'s value divided by the other's; ✓ marks where " + rep.Base + " is better (higher for rates, lower for times, memory and CPU).")
	if rep.Rounds > 1 {
		fmt.Fprintf(&b, " Values are medians of %d rounds; the ratio is that of the medians, with the lowest and highest per-round ratio in parentheses.", rep.Rounds)
	}
	b.WriteString("\n\n")
	// Run details: TLS, errors, CPU.
	b.WriteString("| server | scenario | TLS sessions | logins ok/attempted | messages recv/expected | server CPU s | generator CPU s | load avg start→end | errors |\n|---|---|---|---:|---:|---:|---:|---|---|\n")
	rs := append([]*Result(nil), rep.Results...)
	sort.SliceStable(rs, func(i, j int) bool { return scenarioOrder[rs[i].Scenario] < scenarioOrder[rs[j].Scenario] })
	for _, r := range rs {
		if r.Scenario == "register" {
			continue
		}
		tls := []string{}
		for k, v := range r.TLS {
			tls = append(tls, fmt.Sprintf("%s×%d", k, v))
		}
		sort.Strings(tls)
		errs := []string{}
		for k, v := range r.Errors {
			errs = append(errs, fmt.Sprintf("%s ×%d", k, v))
		}
		sort.Strings(errs)
		if r.TimedOut {
			errs = append(errs, "stopped by --duration")
		}
		msgs := "–"
		if r.Expected > 0 {
			msgs = fmt.Sprintf("%d/%d", r.Received, r.Expected)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %d/%d | %s | %.2f | %.2f | %v→%v | %s |\n", r.Label, r.Scenario, strings.Join(tls, " "),
			r.OK, r.Attempts, msgs, r.ServerCPU, r.GenCPU, r.Host["loadavg_start"], r.Host["loadavg_end"], strings.Join(errs, "; "))
	}
	return b.String()
}

func fmtR(r float64) string {
	if r >= 100 {
		return fmt.Sprintf("%.0f", r)
	}
	return fmt.Sprintf("%.2f", r)
}

func fmtRatio(r float64, better string) string {
	s := fmt.Sprintf("%.2f", r)
	if r >= 100 {
		s = fmt.Sprintf("%.0f", r)
	}
	if Advantage(r, better) > 1.02 { // within 2%: a tie
		s += " ✓"
	}
	return s
}

// WriteJSON writes the report.
func (rep *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}
