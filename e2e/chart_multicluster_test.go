//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// TestChartMulticlusterFollowsItsValue: the peer reader (a ServiceAccount
// bound to a role that can only get the issuers and Linkerd's trust roots)
// and --multicluster are rendered only with multicluster.enabled, which
// without the rotation is refused with what to set.
func TestChartMulticlusterFollowsItsValue(t *testing.T) {
	args := func(set ...string) string {
		objs := render(t, set...)
		return strings.Join(convert[appsv1.Deployment](t, find(objs, "Deployment")[0]).Spec.Template.Spec.Containers[0].Args, " ")
	}
	for _, o := range render(t) {
		if strings.Contains(o.GetName(), "peer-reader") {
			t.Errorf("rendered %s %s by default", o.GetKind(), o.GetName())
		}
	}
	if a := args(); !strings.Contains(a, "--multicluster=false") {
		t.Errorf("default args %q, want --multicluster=false", a)
	}
	objs := render(t, "multicluster.enabled=true")
	if a := args("multicluster.enabled=true"); !strings.Contains(a, "--multicluster=true") {
		t.Errorf("args %q, want --multicluster=true", a)
	}
	var reader *rbacv1.ClusterRole
	for _, o := range find(objs, "ClusterRole") {
		if strings.HasSuffix(o.GetName(), ":peer-reader") {
			reader = convert[rbacv1.ClusterRole](t, o)
		}
	}
	if reader == nil || !slices.ContainsFunc(find(objs, "ServiceAccount"), func(o *unstructured.Unstructured) bool { return strings.HasSuffix(o.GetName(), "-peer-reader") }) {
		t.Fatalf("multicluster on: no peer reader ClusterRole or ServiceAccount rendered")
	}
	for _, r := range reader.Rules {
		if !slices.Equal(r.Verbs, []string{"get"}) {
			t.Errorf("the peer reader may %v %v: a peer credential must only read", r.Verbs, r.Resources)
		}
		if slices.Contains(r.Resources, "configmaps") && !slices.Equal(r.ResourceNames, []string{"linkerd-identity-trust-roots"}) {
			t.Errorf("the peer reader reads ConfigMaps %v, want Linkerd's trust roots alone", r.ResourceNames)
		}
		if slices.Contains(r.Resources, "secrets") {
			t.Error("the peer reader may read Secrets")
		}
	}
	if _, err := localcp.RenderChart(repoRoot(t), "multicluster.enabled=true", "rotation.enabled=false"); err == nil || !strings.Contains(err.Error(), "multicluster.enabled needs rotation.enabled") {
		t.Errorf("multicluster without rotation: %v, want a refusal naming rotation.enabled", err)
	}
}
