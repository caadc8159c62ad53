//go:build e2e

package e2e

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

func helm(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(filepath.Join(repoRoot(t), "bin", "helm"), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// TestChartAsSubchart: as a dependency, the chart gets Helm's global values
// and its parent's enabled switch, and its schema takes both.
func TestChartAsSubchart(t *testing.T) {
	parent := t.TempDir()
	chart := `apiVersion: v2
name: platform
version: 1.0.0
dependencies:
  - name: linkerd-ca-issuer
    version: 0.1.0
    repository: file://` + filepath.Join(repoRoot(t), "charts", "linkerd-ca-issuer") + `
    condition: linkerd-ca-issuer.enabled
`
	if err := os.WriteFile(filepath.Join(parent, "Chart.yaml"), []byte(chart), 0o644); err != nil {
		t.Fatal(err)
	}
	helm(t, "dependency", "build", parent)
	for _, tc := range []struct {
		enabled     string
		deployments int
	}{{"true", 1}, {"false", 0}} {
		out := helm(t, "template", "platform", parent, "--kube-version", "1.36.0", "--namespace", "platform",
			"--set", "global.imageRegistry=registry.example", "--set", "global.labels.team=mesh", "--set", "linkerd-ca-issuer.enabled="+tc.enabled)
		if got := strings.Count(out, "\nkind: Deployment\n"); got != tc.deployments {
			t.Errorf("enabled=%s: %d Deployments, want %d", tc.enabled, got, tc.deployments)
		}
	}
}

// TestChartSecurityContexts: no fixed user anywhere (OpenShift's
// restricted-v2 assigns one), and both contexts can be overridden.
func TestChartSecurityContexts(t *testing.T) {
	pod := func(set ...string) corev1.PodSpec {
		return convert[appsv1.Deployment](t, find(render(t, set...), "Deployment")[0]).Spec.Template.Spec
	}
	def := pod()
	if def.SecurityContext.RunAsUser != nil || def.SecurityContext.RunAsGroup != nil || def.Containers[0].SecurityContext.RunAsUser != nil {
		t.Errorf("a fixed user: pod %+v container %+v", def.SecurityContext, def.Containers[0].SecurityContext)
	}
	openshift := pod("podSecurityContext.seLinuxOptions.type=container_t", "podSecurityContext.seccompProfile=null", "securityContext.seccompProfile=null")
	if openshift.SecurityContext.SELinuxOptions == nil || openshift.SecurityContext.SELinuxOptions.Type != "container_t" ||
		openshift.SecurityContext.SeccompProfile != nil || openshift.Containers[0].SecurityContext.SeccompProfile != nil {
		t.Errorf("overrides not applied: pod %+v container %+v", openshift.SecurityContext, openshift.Containers[0].SecurityContext)
	}
	if !*openshift.SecurityContext.RunAsNonRoot || *openshift.Containers[0].SecurityContext.AllowPrivilegeEscalation {
		t.Error("an override dropped the other defaults")
	}
	if got := def.NodeSelector["kubernetes.io/os"]; got != "linux" {
		t.Errorf("nodeSelector %v, want kubernetes.io/os: linux", def.NodeSelector)
	}
}

func TestChartExtraArgsAndEnv(t *testing.T) {
	c := convert[appsv1.Deployment](t, find(render(t, "extraArgs={--zap-encoder=console}", "extraEnv[0].name=HTTPS_PROXY", "extraEnv[0].value=http://proxy:3128"), "Deployment")[0]).Spec.Template.Spec.Containers[0]
	if !slices.Contains(c.Args, "--zap-encoder=console") {
		t.Errorf("args %v", c.Args)
	}
	if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "HTTPS_PROXY" && e.Value == "http://proxy:3128" }) ||
		!slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAME" }) {
		t.Errorf("env %v", c.Env)
	}
	if _, err := renderErr(t, "extraArgs={zap-encoder}"); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("an extra arg that is no flag: %v", err)
	}
}

func renderErr(t *testing.T, set ...string) (string, error) {
	t.Helper()
	args := []string{"template", "x", filepath.Join(repoRoot(t), "charts", "linkerd-ca-issuer"), "--kube-version", "1.36.0"}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	out, err := exec.Command(filepath.Join(repoRoot(t), "bin", "helm"), args...).CombinedOutput()
	if err != nil {
		return "", &helmError{string(out)}
	}
	return string(out), nil
}

type helmError struct{ out string }

func (e *helmError) Error() string { return e.out }

func TestChartPodDisruptionBudget(t *testing.T) {
	pdb := func(set ...string) policyv1.PodDisruptionBudgetSpec {
		return convert[policyv1.PodDisruptionBudget](t, find(render(t, append(set, "podDisruptionBudget.enabled=true", "replicas=2")...), "PodDisruptionBudget")[0]).Spec
	}
	if s := pdb(); s.MinAvailable == nil || *s.MinAvailable != intstr.FromInt32(1) || s.MaxUnavailable != nil {
		t.Errorf("default %+v, want minAvailable 1", s)
	}
	if s := pdb("podDisruptionBudget.maxUnavailable=1"); s.MaxUnavailable == nil || *s.MaxUnavailable != intstr.FromInt32(1) || s.MinAvailable != nil {
		t.Errorf("maxUnavailable=1: %+v", s)
	}
	if s := pdb("podDisruptionBudget.minAvailable=50%"); s.MinAvailable == nil || *s.MinAvailable != intstr.FromString("50%") {
		t.Errorf("minAvailable=50%%: %+v", s)
	}
	if _, err := renderErr(t, "podDisruptionBudget.enabled=true", "podDisruptionBudget.minAvailable=1", "podDisruptionBudget.maxUnavailable=1"); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Errorf("both set: %v", err)
	}
	// A budget that lets no pod be evicted blocks every node drain.
	for _, set := range [][]string{
		nil, // minAvailable 1 by default, one replica
		{"podDisruptionBudget.minAvailable=2", "replicas=2"},
		{"podDisruptionBudget.minAvailable=100%", "replicas=3"},
		{"podDisruptionBudget.maxUnavailable=0", "replicas=3"},
	} {
		if _, err := renderErr(t, append(set, "podDisruptionBudget.enabled=true")...); err == nil || !strings.Contains(err.Error(), "lets no controller pod be evicted, which blocks every node drain") {
			t.Errorf("%v: %v, want a refusal", set, err)
		}
	}
	if s := pdb("replicas=1", "podDisruptionBudget.maxUnavailable=1"); s.MaxUnavailable == nil {
		t.Errorf("one replica, maxUnavailable 1: %+v", s)
	}
}

// TestChartAggregatedRoles: namespace users see both issuer kinds, editors
// write LinkerdCAIssuers only.
func TestChartAggregatedRoles(t *testing.T) {
	roles := map[string]*rbacv1.ClusterRole{}
	for _, o := range find(render(t), "ClusterRole") {
		roles[o.GetName()] = convert[rbacv1.ClusterRole](t, o)
	}
	view, edit := roles[localcpRelease+":view"], roles[localcpRelease+":edit"]
	if view == nil || edit == nil {
		t.Fatalf("no :view or :edit ClusterRole among %v", keys(roles))
	}
	for role, aggregates := range map[*rbacv1.ClusterRole][]string{view: {"view", "edit", "admin"}, edit: {"edit", "admin"}} {
		for _, a := range aggregates {
			if role.Labels["rbac.authorization.k8s.io/aggregate-to-"+a] != "true" {
				t.Errorf("%s does not aggregate into %s", role.Name, a)
			}
		}
	}
	if r := view.Rules[0]; !slices.Equal(r.Resources, []string{"linkerdcaissuers", "linkerdcaclusterissuers"}) || !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) {
		t.Errorf("view rules %+v", view.Rules)
	}
	if r := edit.Rules[0]; !slices.Equal(r.Resources, []string{"linkerdcaissuers"}) || slices.Contains(r.Verbs, "*") {
		t.Errorf("edit rules %+v: cluster issuers stay with cluster admins", edit.Rules)
	}
	if len(find(render(t, "aggregateClusterRoles=false"), "ClusterRole")) != len(roles)-2 {
		t.Error("aggregateClusterRoles=false still renders them")
	}
}

const localcpRelease = "linkerd-ca-issuer"

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestChartPresetIsNotHooks: the preset's objects are the release's own, so
// an upgrade or a GitOps sync does not delete and recreate them.
func TestChartPresetIsNotHooks(t *testing.T) {
	for _, o := range render(t, allFeatures...) {
		for k := range o.GetAnnotations() {
			if strings.HasPrefix(k, "helm.sh/hook") {
				t.Errorf("%s %s is a Helm hook (%s)", o.GetKind(), o.GetName(), k)
			}
		}
	}
}

// TestChartFreshClusterInstall: `helm install` on a cluster where neither
// the release namespace nor the watched namespace exists, then the preset
// switched on by an upgrade (Helm cannot create a CRD and its objects in
// one release), then upgrades that keep the preset's objects, and an
// uninstall that keeps the namespace Linkerd may live in. The CRDs are the
// suite's, so the release does not install them.
func TestChartFreshClusterInstall(t *testing.T) {
	const release, relNS, linkerdNS = "fresh", "e2e-fresh-system", "e2e-fresh-linkerd"
	kube := []string{"--kubeconfig", cp.AdminKubeconfig}
	chart := filepath.Join(repoRoot(t), "charts", "linkerd-ca-issuer")
	// The release's admission policies judge its own namespace only: the
	// other tests' deliberately bad requests are the signer's to refuse.
	base := []string{"--namespace", relNS, "--set", "crds.enabled=false", "--set", "watchNamespaces={" + linkerdNS + "}",
		"--set", `admissionPolicy.namespaceSelector.matchLabels.kubernetes\.io/metadata\.name=` + linkerdNS}
	for _, ns := range []string{relNS, linkerdNS} {
		if err := cl.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{}); err == nil {
			t.Fatalf("namespace %s exists before the install", ns)
		}
	}
	helm(t, append(append([]string{"install", release, chart, "--create-namespace"}, base...), kube...)...)
	t.Cleanup(func() {
		_, _ = exec.Command(filepath.Join(repoRoot(t), "bin", "helm"), append([]string{"uninstall", release, "--namespace", relNS}, kube...)...).CombinedOutput()
	})
	var ns corev1.Namespace
	if err := cl.Get(ctx, client.ObjectKey{Name: linkerdNS}, &ns); err != nil {
		t.Fatalf("the watched namespace was not created: %v", err)
	}
	var role rbacv1.Role
	if err := cl.Get(ctx, client.ObjectKey{Namespace: linkerdNS, Name: release + "-linkerd-ca-issuer:trust-sources"}, &role); err != nil {
		t.Errorf("no Role into the watched namespace: %v", err)
	}
	// The release runs: its Deployment's replicas are scheduled and Ready
	// (on kwok's nodes, locally).
	waitRolledOut(t, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: relNS, Name: release + "-linkerd-ca-issuer"}})

	preset := append(base, "--set", "linkerd.enabled=true", "--set", "linkerd.namespace="+linkerdNS, "--set", "linkerd.issuerName=fresh-identity-issuer")
	helm(t, append(append([]string{"upgrade", release, chart}, preset...), kube...)...)
	var iss v1alpha1.LinkerdCAClusterIssuer
	var cert cmapi.Certificate
	key := client.ObjectKey{Name: "fresh-identity-issuer"}
	if err := cl.Get(ctx, key, &iss); err != nil {
		t.Fatalf("preset issuer: %v", err)
	}
	if err := cl.Get(ctx, client.ObjectKey{Namespace: linkerdNS, Name: "linkerd-identity-issuer"}, &cert); err != nil {
		t.Fatalf("preset Certificate: %v", err)
	}
	if cert.Spec.Duration.Duration.String() != "48h0m0s" || cert.Spec.RenewBefore.Duration.String() != "25h0m0s" ||
		cert.Spec.PrivateKey.RotationPolicy != cmapi.RotationPolicyAlways {
		t.Errorf("preset Certificate %s/%s rotation %s: want 48h, 25h, Always", cert.Spec.Duration, cert.Spec.RenewBefore, cert.Spec.PrivateKey.RotationPolicy)
	}
	helm(t, append(append([]string{"upgrade", release, chart}, append(preset, "--set", "logLevel=debug")...), kube...)...)
	var iss2 v1alpha1.LinkerdCAClusterIssuer
	var cert2 cmapi.Certificate
	_ = cl.Get(ctx, key, &iss2)
	_ = cl.Get(ctx, client.ObjectKeyFromObject(&cert), &cert2)
	if iss2.UID != iss.UID || cert2.UID != cert.UID {
		t.Errorf("an upgrade recreated the preset: issuer %s→%s, Certificate %s→%s", iss.UID, iss2.UID, cert.UID, cert2.UID)
	}

	if manifest := helm(t, append([]string{"get", "manifest", release, "--namespace", relNS}, kube...)...); !strings.Contains(manifest, "kind: Namespace\nmetadata:\n  name: "+linkerdNS+"\n") {
		t.Errorf("the upgrade dropped the Namespace the release made from its manifest:\n%s", manifest)
	}

	helm(t, append([]string{"uninstall", release, "--namespace", relNS}, kube...)...)
	if err := cl.Get(ctx, client.ObjectKey{Name: linkerdNS}, &ns); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("uninstall deleted the watched namespace: %v", err)
	}

	// A namespace that already exists, and is not the release's, is left
	// alone: not in the release, so neither adopted nor deleted with it.
	helm(t, append([]string{"install", release + "-b", chart, "--namespace", relNS, "--set", "crds.enabled=false",
		"--set", "watchNamespaces={" + nsPreset + "}", "--set", "approver.enabled=false", "--set", "admissionPolicy.enabled=false"}, kube...)...)
	manifest := helm(t, append([]string{"get", "manifest", release + "-b", "--namespace", relNS}, kube...)...)
	helm(t, append([]string{"uninstall", release + "-b", "--namespace", relNS}, kube...)...)
	if strings.Contains(manifest, "kind: Namespace") {
		t.Errorf("the release took an existing namespace in:\n%s", manifest)
	}
	if err := cl.Get(ctx, client.ObjectKey{Name: nsPreset}, &ns); err != nil || ns.DeletionTimestamp != nil {
		t.Errorf("namespace %s: %v", nsPreset, err)
	}
}

// TestChartReadmeListsEveryValue: the chart README documents every value
// values.yaml sets, by its full path.
func TestChartReadmeListsEveryValue(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "charts", "linkerd-ca-issuer")
	raw, err := os.ReadFile(filepath.Join(dir, "values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(raw, &values); err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(dir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(string(readme)))
	for sc.Scan() {
		if cells := strings.Split(sc.Text(), "|"); len(cells) > 2 && strings.HasPrefix(strings.TrimSpace(cells[1]), "`") {
			documented[strings.Trim(strings.TrimSpace(cells[1]), "`")] = true
		}
	}
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		if m, ok := v.(map[string]any); ok && len(m) > 0 && !documented[prefix] {
			for k, child := range m {
				walk(strings.TrimPrefix(prefix+"."+k, "."), child)
			}
			return
		}
		if !documented[prefix] {
			t.Errorf("value %s is not in the chart README's table", prefix)
		}
	}
	walk("", values)
}

func TestChartKMSValues(t *testing.T) {
	c := convert[appsv1.Deployment](t, find(render(t, "kms.aws.region=eu-west-1", "kms.aws.endpoint=https://kms-fips.eu-west-1.amazonaws.com",
		"serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/linkerd-ca"), "Deployment")[0]).Spec.Template.Spec.Containers[0]
	for name, value := range map[string]string{"AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_KMS": "https://kms-fips.eu-west-1.amazonaws.com"} {
		if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == name && e.Value == value }) {
			t.Errorf("env %v lacks %s=%s", c.Env, name, value)
		}
	}
	sa := find(render(t, "serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn=arn:aws:iam::111122223333:role/linkerd-ca"), "ServiceAccount")[0]
	if got := sa.GetAnnotations()["eks.amazonaws.com/role-arn"]; got != "arn:aws:iam::111122223333:role/linkerd-ca" {
		t.Errorf("ServiceAccount annotations %v", sa.GetAnnotations())
	}
	// Without a KMS, no AWS setting is rendered.
	plain := convert[appsv1.Deployment](t, find(render(t), "Deployment")[0]).Spec.Template.Spec.Containers[0]
	if slices.ContainsFunc(plain.Env, func(e corev1.EnvVar) bool { return strings.HasPrefix(e.Name, "AWS_") }) {
		t.Errorf("AWS env rendered without kms values: %v", plain.Env)
	}
	if _, err := renderErr(t, "kms.aws.endpoint=kms.example"); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("an endpoint that is no URL: %v", err)
	}
}
