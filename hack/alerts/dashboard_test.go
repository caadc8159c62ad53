package alerts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
)

// exported are the metric families the issuer exported in the e2e, from
// the TYPE lines of every state saved (each scrape keeps them all).
func exported(t *testing.T, dir string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, state := range []string{"stable", "not-ready", "anchor-expiring", "held", "past-deadline"} {
		b, err := os.ReadFile(filepath.Join(dir, state+".prom"))
		if err != nil {
			t.Fatalf("%v\n(the e2e suite writes each state: run `make e2e`, then `make alerts`)", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
				out[f[2]] = true
			}
		}
	}
	return out
}

// TestTheDashboardQueriesWhatTheIssuerExports: every panel's query of the
// chart's dashboard, as the e2e rendered it, parses as PromQL, and each
// metric it reads is one the e2e's issuer exported (checked against its
// scrapes, not a list), as is each metric an alert reads.
func TestTheDashboardQueriesWhatTheIssuerExports(t *testing.T) {
	dir := statesDir(t)
	families := exported(t, dir)
	raw, err := os.ReadFile(filepath.Join(dir, "dashboard.json"))
	if err != nil {
		t.Fatalf("%v\n(the e2e suite writes the dashboard: run `make e2e`, then `make alerts`)", err)
	}
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	p := parser.NewParser(parser.Options{})
	metric := regexp.MustCompile(`linkerd_ca_issuer_[a-z_]+`)
	check := func(where, expr string) {
		if _, err := p.ParseExpr(expr); err != nil {
			t.Errorf("%s: %q is not PromQL: %v", where, expr, err)
		}
		for _, m := range metric.FindAllString(expr, -1) {
			family := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_count"), "_sum")
			if !families[family] {
				t.Errorf("%s reads %s, which the issuer did not export", where, m)
			}
		}
	}
	queries := 0
	for _, panel := range dash.Panels {
		for _, target := range panel.Targets {
			// Grafana's own variables stand for a range and an interval.
			check("panel "+panel.Title, strings.NewReplacer("$__rate_interval", "5m", "$__interval", "1m", "$__range", "1h").Replace(target.Expr))
			queries++
		}
	}
	rs, err := Load(filepath.Join(dir, "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		check("alert "+r.Name(), r.Query().String())
	}
	if queries == 0 || len(families) == 0 {
		t.Fatalf("%d queries, %d families exported: nothing was checked", queries, len(families))
	}
	t.Logf("%d dashboard queries and %d alerts parse and read only the %d families the issuer exported", queries, len(rs), len(families))
}
