//go:build e2e

package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// renderWith renders the chart where the API versions given are served.
func renderWith(t *testing.T, apis []string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := localcp.RenderChartServing(repoRoot(t), apis, set...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestChartAlerts: the PrometheusRule is rendered only when asked for and
// where prometheus-operator's API is served; every alert names a metric
// the issuer exports (docs/metrics.md's table) and has its runbook there.
func TestChartAlerts(t *testing.T) {
	const api = "monitoring.coreos.com/v1/PrometheusRule"
	if n := len(find(renderWith(t, []string{api}), "PrometheusRule")); n != 0 {
		t.Errorf("rendered %d PrometheusRules by default, want none", n)
	}
	if n := len(find(renderWith(t, nil, "metrics.prometheusRule.enabled=true"), "PrometheusRule")); n != 0 {
		t.Errorf("rendered %d PrometheusRules where monitoring.coreos.com/v1 is not served, want none: the install would fail", n)
	}
	defaults := find(renderWith(t, []string{api}, "metrics.prometheusRule.enabled=true"), "PrometheusRule")
	if len(defaults) != 1 {
		t.Fatalf("rendered %d PrometheusRules, want 1", len(defaults))
	}
	saveAlertRules(t, defaults[0])
	rules := find(renderWith(t, []string{api}, "metrics.prometheusRule.enabled=true", "metrics.prometheusRule.deadlineWarning=90m",
		"metrics.prometheusRule.labels.release=prom"), "PrometheusRule")
	if len(rules) != 1 {
		t.Fatalf("rendered %d PrometheusRules, want 1", len(rules))
	}
	if rules[0].GetLabels()["release"] != "prom" {
		t.Errorf("labels %v lack the one Prometheus selects rules by", rules[0].GetLabels())
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	groups, _, _ := unstructured.NestedSlice(rules[0].Object, "spec", "groups")
	want := []string{"LinkerdCAIssuerNotReady", "LinkerdTrustAnchorExpiresSoon", "LinkerdIdentityIssuerNotRenewed", "LinkerdTrustAnchorRotationHeld",
		"LinkerdTrustAnchorRotationNearDeadline", "LinkerdTrustAnchorRotationStalled", "LinkerdCAIssuerRefusals"}
	var got []string
	metric := regexp.MustCompile(`linkerd_ca_issuer_[a-z_]+`)
	for _, g := range groups {
		rs, _, _ := unstructured.NestedSlice(g.(map[string]any), "rules")
		for _, r := range rs {
			rule := r.(map[string]any)
			name, expr := rule["alert"].(string), rule["expr"].(string)
			got = append(got, name)
			for _, m := range metric.FindAllString(expr, -1) {
				if !strings.Contains(string(doc), "| `"+m+"` |") {
					t.Errorf("%s: metric %s is not one the issuer exports (docs/metrics.md)", name, m)
				}
			}
			ann, _ := rule["annotations"].(map[string]any)
			url, _ := ann["runbook_url"].(string)
			if !strings.HasSuffix(url, "#"+strings.ToLower(name)) || !strings.Contains(string(doc), "\n### "+name+"\n") {
				t.Errorf("%s: runbook %q, want a section of docs/metrics.md", name, url)
			}
			if ann["summary"] == nil {
				t.Errorf("%s has no summary", name)
			}
			if name == "LinkerdTrustAnchorRotationNearDeadline" && !strings.Contains(expr, "- time() < 5400 and") {
				t.Errorf("%s: %q, want the 90m deadline warning set, in seconds", name, expr)
			}
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("alerts %v, want %v", got, want)
	}
}

// TestChartDashboard: the Grafana dashboard ConfigMap is rendered only when
// asked for, labelled for Grafana's sidecar, and its panels read only the
// issuer's own metrics, each one it exports.
func TestChartDashboard(t *testing.T) {
	if n := len(find(render(t), "ConfigMap")); n != 0 {
		t.Errorf("rendered %d ConfigMaps by default, want none", n)
	}
	cms := find(render(t, "metrics.dashboard.enabled=true", "metrics.dashboard.namespace=monitoring"), "ConfigMap")
	if len(cms) != 1 || cms[0].GetLabels()["grafana_dashboard"] != "1" || cms[0].GetNamespace() != "monitoring" {
		t.Fatalf("dashboard ConfigMaps %v; want one, labelled grafana_dashboard=1, in monitoring", cms)
	}
	raw, _, _ := unstructured.NestedString(cms[0].Object, "data", "linkerd-ca-issuer.json")
	saveAlertFile(t, "dashboard.json", []byte(raw))
	var dash struct {
		Panels []struct {
			Title, Type string
			Targets     []struct{ Expr string }
		}
	}
	if err := json.Unmarshal([]byte(raw), &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot(t), "docs", "metrics.md"))
	if err != nil {
		t.Fatal(err)
	}
	series := regexp.MustCompile(`[a-z_:]+_(total|seconds|bucket|behind|phase|ready)\b`)
	var titles []string
	for _, p := range dash.Panels {
		if p.Type == "row" {
			continue
		}
		titles = append(titles, p.Title)
		for _, target := range p.Targets {
			for _, m := range series.FindAllString(target.Expr, -1) {
				name := strings.TrimSuffix(m, "_bucket")
				if !strings.HasPrefix(m, "linkerd_ca_issuer_") || !strings.Contains(string(doc), "| `"+name+"` |") {
					t.Errorf("panel %q reads %s, not a metric the issuer exports (docs/metrics.md)", p.Title, m)
				}
			}
		}
	}
	for _, want := range []string{"Signing rate", "Signing latency", "Refusals by rule (last hour)", "Trust anchor expires in", "Identity issuer expires in",
		"Rotation phase", "Pods behind the new root", "Workloads restarted"} {
		if !slices.Contains(titles, want) {
			t.Errorf("panels %v lack %q", titles, want)
		}
	}
}
