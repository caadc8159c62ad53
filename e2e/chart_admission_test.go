//go:build e2e

package e2e

import (
	"slices"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestChartAdmissionPolicyValues: the admission policies render by default
// where the API server serves them, not where it does not, nor when off;
// each binding takes every issuer of its kind as a parameter, allows what
// names none, and denies.
func TestChartAdmissionPolicyValues(t *testing.T) {
	objs := render(t)
	policies, bindings := find(objs, "ValidatingAdmissionPolicy"), find(objs, "ValidatingAdmissionPolicyBinding")
	if len(policies) != 2 || len(bindings) != 2 {
		t.Fatalf("defaults: %d policies and %d bindings, want 2 of each", len(policies), len(bindings))
	}
	var kinds []string
	for _, p := range policies {
		policy := convert[admissionv1.ValidatingAdmissionPolicy](t, p)
		kinds = append(kinds, policy.Spec.ParamKind.Kind)
		if *policy.Spec.FailurePolicy != admissionv1.Fail {
			t.Errorf("%s: failurePolicy %s", policy.Name, *policy.Spec.FailurePolicy)
		}
	}
	if slices.Sort(kinds); !slices.Equal(kinds, []string{"LinkerdCAClusterIssuer", "LinkerdCAIssuer"}) {
		t.Errorf("param kinds %v", kinds)
	}
	for _, b := range bindings {
		binding := convert[admissionv1.ValidatingAdmissionPolicyBinding](t, b)
		if p := binding.Spec.ParamRef; p == nil || p.Selector == nil || p.Name != "" || *p.ParameterNotFoundAction != admissionv1.AllowAction ||
			!slices.Equal(binding.Spec.ValidationActions, []admissionv1.ValidationAction{admissionv1.Deny}) {
			t.Errorf("binding %s: paramRef %+v, actions %v", binding.Name, p, binding.Spec.ValidationActions)
		}
	}
	sel := convert[admissionv1.ValidatingAdmissionPolicyBinding](t, find(render(t, "admissionPolicy.namespaceSelector.matchLabels.team=mesh"), "ValidatingAdmissionPolicyBinding")[0])
	if sel.Spec.MatchResources.NamespaceSelector.MatchLabels["team"] != "mesh" {
		t.Errorf("namespaceSelector not passed through: %+v", sel.Spec.MatchResources.NamespaceSelector)
	}
	if n := len(find(render(t, "admissionPolicy.enabled=false"), "ValidatingAdmissionPolicy")); n != 0 {
		t.Errorf("admissionPolicy.enabled=false renders %d policies", n)
	}
	// helm template without the API server's discovery: not served, not
	// rendered.
	out, err := renderErr(t)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out, "kind: ValidatingAdmissionPolicy") {
		t.Error("rendered where the API server is not known to serve ValidatingAdmissionPolicy")
	}
}

// TestChartApproverPolicyIsOptIn: nothing of approver-policy by default;
// turned on, one policy per control plane, approver-policy may approve
// exactly this issuer's signers, and cert-manager may use the policies only
// in the control planes' namespaces.
func TestChartApproverPolicyIsOptIn(t *testing.T) {
	for _, o := range render(t) {
		if o.GetKind() == "CertificateRequestPolicy" || strings.Contains(o.GetName(), "approver-policy") {
			t.Errorf("approverPolicy off renders %s %s", o.GetKind(), o.GetName())
		}
	}
	objs := render(t, "approverPolicy.enabled=true",
		"approverPolicy.controlPlanes[0].namespace=linkerd", "approverPolicy.controlPlanes[1].namespace=mesh-b",
		"approverPolicy.controlPlanes[1].trustDomain=b.example")
	policies := find(objs, "CertificateRequestPolicy")
	if len(policies) != 2 {
		t.Fatalf("%d CertificateRequestPolicies for 2 control planes", len(policies))
	}
	var names []string
	for _, p := range policies {
		names = append(names, p.GetName())
	}
	cn, _, _ := unstructured.NestedString(policies[1].Object, "spec", "allowed", "commonName", "value")
	if cn != "identity.mesh-b.b.example" {
		t.Errorf("second policy's common name %q", cn)
	}
	var use, approve bool
	for _, o := range find(objs, "ClusterRole") {
		for _, r := range convert[rbacv1.ClusterRole](t, o).Rules {
			if slices.Contains(r.Verbs, "use") {
				use = slices.Equal(r.ResourceNames, names) && slices.Equal(r.Resources, []string{"certificaterequestpolicies"})
			}
			if slices.Contains(r.Verbs, "approve") && strings.HasSuffix(o.GetName(), ":approver-policy") {
				approve = slices.Equal(r.ResourceNames, []string{"linkerdcaissuers.linkerdca.io/*", "linkerdcaclusterissuers.linkerdca.io/*"})
			}
		}
	}
	if !use || !approve {
		t.Errorf("use rule naming exactly %v: %t; approve rule on this issuer's signers: %t", names, use, approve)
	}
	var useNamespaces []string
	for _, o := range find(objs, "RoleBinding") {
		rb := convert[rbacv1.RoleBinding](t, o)
		if strings.HasSuffix(rb.RoleRef.Name, ":approver-policy-use") {
			useNamespaces = append(useNamespaces, rb.Namespace)
			if rb.Subjects[0].Name != "cert-manager" || rb.Subjects[0].Namespace != "cert-manager" {
				t.Errorf("use bound to %+v", rb.Subjects)
			}
		}
	}
	if slices.Sort(useNamespaces); !slices.Equal(useNamespaces, []string{"linkerd", "mesh-b"}) {
		t.Errorf("use bound in %v, want the control planes' namespaces only", useNamespaces)
	}
	for _, o := range find(objs, "ClusterRoleBinding") {
		if strings.HasSuffix(convert[rbacv1.ClusterRoleBinding](t, o).RoleRef.Name, ":approver-policy-use") {
			t.Errorf("use bound cluster-wide by %s", o.GetName())
		}
		// cert-manager's own approver would approve what the policy refuses.
		if strings.HasSuffix(convert[rbacv1.ClusterRoleBinding](t, o).RoleRef.Name, ":approver") {
			t.Errorf("with approver-policy on, cert-manager may still approve this issuer's signers (%s)", o.GetName())
		}
	}
	if !slices.ContainsFunc(find(render(t), "ClusterRoleBinding"), func(o *unstructured.Unstructured) bool {
		return strings.HasSuffix(convert[rbacv1.ClusterRoleBinding](t, o).RoleRef.Name, ":approver")
	}) {
		t.Error("by default cert-manager may not approve this issuer's signers")
	}
}
