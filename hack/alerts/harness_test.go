package alerts

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/prometheus/util/teststorage"
)

// TestTheHarnessTellsFiringFromPendingAndSilent: a state held past an
// alert's `for` fires it, one held for less leaves it pending (not
// firing), and a state that does not match leaves it silent.
func TestTheHarnessTellsFiringFromPendingAndSilent(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte(`groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
        for: 10m
        annotations:
          summary: '{{ $labels.job }} down'
`), 0o644); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	for name, tc := range map[string]struct {
		value string
		span  time.Duration
		want  int
	}{
		"down for an hour":      {"0", time.Hour, 1},
		"down for five minutes": {"0", 5 * time.Minute, 0},
		"up for an hour":        {"1", time.Hour, 0},
	} {
		t.Run(name, func(t *testing.T) {
			rs, err := Load(rules)
			if err != nil {
				t.Fatal(err)
			}
			s := Scrape{At: at, Text: []byte("# TYPE up gauge\nup{job=\"x\"} " + tc.value + "\n")}
			db := teststorage.New(t)
			if _, err := s.Hold(context.Background(), db, tc.span, scrape); err != nil {
				t.Fatal(err)
			}
			firing, err := Evaluate(context.Background(), rs, db, at.Add(-tc.span), at, evaluate)
			if err != nil {
				t.Fatal(err)
			}
			if len(firing) != tc.want {
				t.Fatalf("firing %v, want %d", firing, tc.want)
			}
			if tc.want == 1 && firing[0].Annotations["summary"] != "x down" {
				t.Errorf("summary %q, want the template expanded", firing[0].Annotations["summary"])
			}
		})
	}
}
