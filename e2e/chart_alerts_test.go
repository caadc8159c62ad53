//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// renderWith renders the chart as `helm install` would where the API
// versions given are served.
func renderWith(t *testing.T, apis []string, set ...string) []*unstructured.Unstructured {
	t.Helper()
	args := []string{"template", localcp.ReleaseName, filepath.Join(repoRoot(t), "charts", "linkerd-ca-issuer"), "--kube-version", "1.36.0"}
	for _, a := range apis {
		args = append(args, "--api-versions", a)
	}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(filepath.Join(repoRoot(t), "bin", "helm"), args...).Output()
	if err != nil {
		t.Fatalf("helm %v: %v", args, err)
	}
	objs, err := localcp.DecodeManifests(out)
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
			if name == "LinkerdTrustAnchorRotationNearDeadline" && !strings.HasSuffix(expr, "< 5400") {
				t.Errorf("%s: %q, want the 90m deadline warning set, in seconds", name, expr)
			}
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("alerts %v, want %v", got, want)
	}
}
