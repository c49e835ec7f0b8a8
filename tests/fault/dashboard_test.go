package fault_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"bluetick/internal/natstest"
)

// TestDashboardNamesExportedMetrics: every metric an expression of the
// Grafana dashboard in dist/grafana names is one a running server exports
// on its metrics listener (after one login), so the dashboard cannot drift
// from the metrics.
func TestDashboardNamesExportedMetrics(t *testing.T) {
	metrics := fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))
	s := startServer(t, fmt.Sprintf("[listen]\nmetrics = %q\n", metrics))
	c := login(t, s.c2s, "s01", "phone", true)
	defer c.logout()

	resp, err := http.Get("http://" + metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	exported := func(name string) bool {
		if _, ok := fams[name]; ok {
			return true
		}
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base, ok := strings.CutSuffix(name, suffix); ok && fams[base] != nil {
				return true
			}
		}
		return false
	}

	b, err := os.ReadFile("../../dist/grafana/bluetick-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	// Metric names: identifiers of the exporters this dashboard reads,
	// not followed by "(" (a function) and not inside a label matcher.
	ident := regexp.MustCompile(`\b(?:bluetick|go|process)_[a-z0-9_]+\b`)
	var missing []string
	n := 0
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			for _, name := range ident.FindAllString(tg.Expr, -1) {
				n++
				if !exported(name) {
					missing = append(missing, fmt.Sprintf("%s (panel %q)", name, p.Title))
				}
			}
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard names metrics the server does not export:\n%s", strings.Join(missing, "\n"))
	}
	if n < 10 {
		t.Errorf("only %d metric names found in the dashboard's expressions", n)
	}
}
