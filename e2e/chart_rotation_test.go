//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestChartRotationRBACFollowsItsValues: the rotation's grants are rendered
// only with it on: reading pods cluster-wide, and in the watched namespaces
// writing ConfigMaps, reading Certificates, re-issuing them and listing
// events; patching workloads only with restarts on too. The flags follow.
func TestChartRotationRBACFollowsItsValues(t *testing.T) {
	rules := func(objs []*unstructured.Unstructured) (all []rbacv1.PolicyRule) {
		for _, o := range find(objs, "ClusterRole") {
			all = append(all, convert[rbacv1.ClusterRole](t, o).Rules...)
		}
		for _, o := range find(objs, "Role") {
			all = append(all, convert[rbacv1.Role](t, o).Rules...)
		}
		return all
	}
	grants := func(objs []*unstructured.Unstructured, group, resource, verb string) bool {
		return slices.ContainsFunc(rules(objs), func(r rbacv1.PolicyRule) bool {
			return slices.Contains(r.APIGroups, group) && slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb)
		})
	}
	args := func(objs []*unstructured.Unstructured) string {
		return strings.Join(convert[appsv1.Deployment](t, find(objs, "Deployment")[0]).Spec.Template.Spec.Containers[0].Args, " ")
	}
	type grant struct{ group, resource, verb string }
	rotation := []grant{{"", "pods", "list"}, {"", "pods", "watch"}, {"", "configmaps", "create"}, {"", "configmaps", "update"},
		{"cert-manager.io", "certificates", "watch"}, {"cert-manager.io", "certificates/status", "update"}, {"", "events", "list"}, {"", "nodes", "get"}}
	var restarts []grant
	for _, resource := range []string{"deployments", "statefulsets", "daemonsets"} {
		for _, verb := range []string{"get", "list", "watch", "patch"} {
			restarts = append(restarts, grant{"apps", resource, verb})
		}
	}
	for _, tc := range []struct {
		name             string
		set              []string
		rotation, restar bool
		flags            []string
	}{
		{"default: rotation on, restarts off", nil, true, false, []string{"--rotation=true", "--rotation-restarts=false"}},
		{"restarts on", []string{"rotation.restarts.enabled=true"}, true, true, []string{"--rotation-restarts=true", "--rotation-max-concurrent-restarts=2"}},
		{"rotation off", []string{"rotation.enabled=false", "rotation.restarts.enabled=true"}, false, false, []string{"--rotation=false"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := render(t, tc.set...)
			for _, g := range rotation {
				if got := grants(objs, g.group, g.resource, g.verb); got != tc.rotation {
					t.Errorf("%s %s/%s granted: %v, want %v", g.verb, g.group, g.resource, got, tc.rotation)
				}
			}
			for _, g := range restarts {
				if got := grants(objs, g.group, g.resource, g.verb); got != tc.restar {
					t.Errorf("%s %s/%s granted: %v, want %v", g.verb, g.group, g.resource, got, tc.restar)
				}
			}
			for _, f := range tc.flags {
				if !strings.Contains(args(objs), f) {
					t.Errorf("args %q lack %s", args(objs), f)
				}
			}
			// The restart grant ships with its policy, never alone.
			policies := 0
			for _, o := range find(objs, "ValidatingAdmissionPolicy") {
				if strings.Contains(o.GetName(), "-restarts-") {
					policies++
				}
			}
			if want := map[bool]int{true: 3, false: 0}[tc.restar]; policies != want || len(find(objs, "ValidatingAdmissionPolicyBinding")) < want {
				t.Errorf("restart policies rendered: %d, want %d (one per workload kind, each bound)", policies, want)
			}
			if !tc.rotation && strings.Contains(args(objs), "--rotation-restarts") {
				t.Errorf("rotation off still passes restart flags: %s", args(objs))
			}
		})
	}
	preset := render(t, "linkerd.enabled=true")
	for _, o := range preset {
		if o.GetKind() == "LinkerdCAClusterIssuer" {
			if name, _, _ := unstructured.NestedString(o.Object, "spec", "rotation", "trustedRootsConfigMapName"); name != "linkerd-trusted-roots" {
				t.Errorf("the preset's issuer keeps its trusted set in %q, want linkerd-trusted-roots", name)
			}
		}
	}
}
