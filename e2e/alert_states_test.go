//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// The chart's alerts are evaluated by Prometheus's own rule engine against
// what this suite's issuer exported in the states they name (`make alerts`,
// hack/alerts: a module of its own, as Prometheus is on another Kubernetes
// line than the product). The suite leaves them in alertStatesDir: the
// rendered rules, and per state one issuer's series as scraped, with when.

// alertStatesDir is $ALERT_STATES, or bin/alert-states.
func alertStatesDir(t *testing.T) string {
	if d := os.Getenv("ALERT_STATES"); d != "" {
		return d
	}
	return filepath.Join(repoRoot(t), "bin", "alert-states")
}

// clearAlertStates starts the run with none, so that `make alerts` never
// reads a state an earlier run left.
func clearAlertStates() error {
	dir := os.Getenv("ALERT_STATES")
	if dir == "" {
		root, err := filepath.Abs("..")
		if err != nil {
			return err
		}
		dir = filepath.Join(root, "bin", "alert-states")
	}
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	return os.MkdirAll(dir, 0o755)
}

// saveAlertRules writes the PrometheusRule's groups, as a Prometheus rule
// file.
func saveAlertRules(t *testing.T, rule *unstructured.Unstructured) {
	t.Helper()
	spec, _, _ := unstructured.NestedMap(rule.Object, "spec")
	out, err := yaml.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	saveAlertFile(t, "rules.yaml", out)
}

// saveAlertFile writes one more file for `make alerts` (the dashboard).
func saveAlertFile(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(alertStatesDir(t), name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// saveAlertState writes the series of the issuer with these labels, once
// one of its lines satisfies shown (the state has reached the metrics),
// as state.prom, headed by when it was scraped.
func saveAlertState(t *testing.T, state string, labels map[string]string, shown func(line string) bool) {
	t.Helper()
	var kept []string
	var at time.Time
	eventually(t, 15*time.Second, "the "+state+" state in the issuer's metrics", func() error {
		at = time.Now()
		resp, err := http.Get("http://" + cp.IssuerMetricsAddr + "/metrics")
		if err != nil {
			return err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		kept = kept[:0]
		seen := false
		for _, line := range strings.Split(string(body), "\n") {
			switch {
			case strings.HasPrefix(line, "# HELP ") || strings.HasPrefix(line, "# TYPE "):
				kept = append(kept, line)
			case ofIssuer(line, labels):
				kept = append(kept, line)
				seen = seen || shown(line)
			}
		}
		if !seen {
			return fmt.Errorf("no line of the issuer's series shows it yet")
		}
		return nil
	})
	text := fmt.Sprintf("# scraped-at-ms %d\n%s\n", at.UnixMilli(), strings.Join(kept, "\n"))
	if err := os.WriteFile(filepath.Join(alertStatesDir(t), state+".prom"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ofIssuer: a sample line carrying each of the labels.
func ofIssuer(line string, labels map[string]string) bool {
	open := strings.IndexByte(line, '{')
	if open < 0 || strings.HasPrefix(line, "#") {
		return false
	}
	end := strings.LastIndexByte(line, '}')
	if end < open {
		return false
	}
	set := "," + line[open+1:end] + ","
	for k, v := range labels {
		if !strings.Contains(set, fmt.Sprintf(",%s=%q,", k, v)) {
			return false
		}
	}
	return true
}

// sample is a shown func: a line of the series name with this value (and
// any labels given, as name="value").
func sample(name, value string, labels ...string) func(string) bool {
	return func(line string) bool {
		if !strings.HasPrefix(line, name+"{") || !strings.HasSuffix(line, " "+value) {
			return false
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				return false
			}
		}
		return true
	}
}
