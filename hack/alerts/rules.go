package alerts

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/rulefmt"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/rules"
	"github.com/prometheus/prometheus/storage"
)

// Load reads a Prometheus rule file (a PrometheusRule's spec) into the
// rule engine's alerting rules, validated as Prometheus validates them.
func Load(path string) ([]*rules.AlertingRule, error) {
	p := parser.NewParser(parser.Options{})
	groups, errs := rulefmt.ParseFile(path, false, model.UTF8Validation, p, slog.New(slog.DiscardHandler))
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: %v", path, errs)
	}
	var out []*rules.AlertingRule
	for _, g := range groups.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			expr, err := p.ParseExpr(r.Expr)
			if err != nil {
				return nil, fmt.Errorf("alert %s: %w", r.Alert, err)
			}
			out = append(out, rules.NewAlertingRule(r.Alert, expr, time.Duration(r.For), time.Duration(r.KeepFiringFor),
				labels.FromMap(r.Labels), labels.FromMap(r.Annotations), labels.EmptyLabels(), "", false, slog.New(slog.DiscardHandler)))
		}
	}
	return out, nil
}

// Firing is an alert firing at the end of an evaluation: its name, value
// and expanded annotations.
type Firing struct {
	Alert       string
	Value       float64
	Annotations map[string]string
}

// Evaluate runs each rule every interval from start to end, as a rule
// group would, over db, and returns the alerts firing at end, by name.
func Evaluate(ctx context.Context, rs []*rules.AlertingRule, db storage.Queryable, start, end time.Time, interval time.Duration) ([]Firing, error) {
	engine := promql.NewEngine(promql.EngineOpts{MaxSamples: 1_000_000, Timeout: time.Minute, LookbackDelta: 5 * time.Minute})
	query := rules.EngineQueryFunc(engine, db)
	for at := start; !at.After(end); at = at.Add(interval) {
		for _, r := range rs {
			if _, err := r.Eval(ctx, 0, at, query, nil, 0); err != nil {
				return nil, fmt.Errorf("alert %s at %s: %w", r.Name(), at.UTC().Format(time.RFC3339), err)
			}
		}
	}
	var out []Firing
	for _, r := range rs {
		for _, a := range r.ActiveAlerts() {
			if a.State == rules.StateFiring {
				out = append(out, Firing{Alert: r.Name(), Value: a.Value, Annotations: a.Annotations.Map()})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Alert < out[j].Alert })
	return out, nil
}
