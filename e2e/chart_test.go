//go:build e2e

package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// Every optional feature of the chart switched on.
var allFeatures = []string{
	"linkerd.enabled=true", "metrics.serviceMonitor.enabled=true", "podDisruptionBudget.enabled=true",
	"networkPolicy.enabled=true", "networkPolicy.apiServerCIDRs={10.96.0.1/32}", "replicas=2",
	"watchNamespaces={linkerd,e2e-preset}", "kubernetesCSR.enabled=true", "kubernetesCSR.requesters={system:serviceaccount:linkerd:bootstrap}",
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func render(t *testing.T, set ...string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := localcp.RenderChart(repoRoot(t), set...)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func find(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == kind {
			out = append(out, o)
		}
	}
	return out
}

func convert[T any](t *testing.T, o *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &v); err != nil {
		t.Fatal(err)
	}
	return &v
}

func TestChartLint(t *testing.T) {
	out, err := exec.Command(filepath.Join(repoRoot(t), "bin", "helm"), "lint", "--strict", "--kube-version", "1.36.0",
		filepath.Join(repoRoot(t), "charts", "linkerd-ca-issuer")).CombinedOutput()
	if err != nil {
		t.Fatalf("helm lint: %v\n%s", err, out)
	}
}

func TestChartRenders(t *testing.T) {
	for name, set := range map[string][]string{
		"defaults": nil,
		"preset":   {"linkerd.enabled=true"},
		"all":      allFeatures,
	} {
		t.Run(name, func(t *testing.T) {
			objs := render(t, set...)
			deployments := find(objs, "Deployment")
			if len(deployments) != 1 {
				t.Fatalf("%d Deployments", len(deployments))
			}
			assertHardenedPod(t, &convert[appsv1.Deployment](t, deployments[0]).Spec.Template.Spec)
			for _, sa := range find(objs, "ServiceAccount") {
				if got := convert[corev1.ServiceAccount](t, sa).AutomountServiceAccountToken; got == nil || *got {
					t.Errorf("ServiceAccount %s automounts its token", sa.GetName())
				}
			}
			assertLeastPrivilege(t, objs)
			assertCRDsAreGenerated(t, objs)
			if want := slices.Contains(set, "linkerd.enabled=true"); (len(find(objs, v1alpha1.ClusterIssuerKind)) == 1) != want || (len(find(objs, "Certificate")) == 1) != want || len(find(objs, v1alpha1.IssuerKind)) != 0 {
				t.Errorf("preset objects rendered: cluster issuer %d, issuer %d, certificate %d; want a cluster issuer and a certificate: %v", len(find(objs, v1alpha1.ClusterIssuerKind)), len(find(objs, v1alpha1.IssuerKind)), len(find(objs, "Certificate")), want)
			}
		})
	}
	all := render(t, allFeatures...)
	for _, kind := range []string{"ServiceMonitor", "PodDisruptionBudget", "NetworkPolicy", "Service"} {
		if len(find(all, kind)) != 1 {
			t.Errorf("all features on: %d %s", len(find(all, kind)), kind)
		}
	}
	if d := convert[appsv1.Deployment](t, find(all, "Deployment")[0]); *d.Spec.Replicas != 2 ||
		!slices.Contains(d.Spec.Template.Spec.Containers[0].Args, "--watch-namespaces=linkerd,e2e-preset") {
		t.Errorf("values not passed through: replicas %d args %v", *d.Spec.Replicas, d.Spec.Template.Spec.Containers[0].Args)
	}
	if len(find(render(t, "crds.enabled=false"), "CustomResourceDefinition")) != 0 {
		t.Error("crds.enabled=false still renders CRDs")
	}
}

// TestChartKubernetesCSRIsOptIn: by default the controller neither signs
// Kubernetes CSRs nor holds the RBAC to; turned on, it gets both, limited
// to the requesters named. The approver rule is on by default.
func TestChartKubernetesCSRIsOptIn(t *testing.T) {
	csrRules := func(objs []*unstructured.Unstructured) (n int) {
		for _, o := range find(objs, "ClusterRole") {
			for _, r := range convert[rbacv1.ClusterRole](t, o).Rules {
				if slices.Contains(r.APIGroups, "certificates.k8s.io") {
					n++
				}
			}
		}
		return n
	}
	args := func(objs []*unstructured.Unstructured) []string {
		return convert[appsv1.Deployment](t, find(objs, "Deployment")[0]).Spec.Template.Spec.Containers[0].Args
	}
	defaults := render(t)
	if n := csrRules(defaults); n != 0 {
		t.Errorf("default chart grants %d certificates.k8s.io rules", n)
	}
	if slices.ContainsFunc(args(defaults), func(a string) bool { return strings.Contains(a, "kubernetes-csr") }) {
		t.Errorf("default chart turns Kubernetes CSRs on: %v", args(defaults))
	}
	approver := false
	for _, o := range find(defaults, "ClusterRoleBinding") {
		approver = approver || strings.HasSuffix(o.GetName(), ":approver")
	}
	if !approver {
		t.Error("the approver RBAC is not on by default")
	}
	on := render(t, "kubernetesCSR.enabled=true", "kubernetesCSR.requesters={system:serviceaccount:linkerd:bootstrap}")
	if n := csrRules(on); n != 3 {
		t.Errorf("with Kubernetes CSRs on: %d certificates.k8s.io rules, want 3 (read, status, sign)", n)
	}
	for _, want := range []string{"--enable-kubernetes-csr", "--kubernetes-csr-requesters=system:serviceaccount:linkerd:bootstrap"} {
		if !slices.Contains(args(on), want) {
			t.Errorf("with Kubernetes CSRs on: no %s in %v", want, args(on))
		}
	}
}

func assertHardenedPod(t *testing.T, pod *corev1.PodSpec) {
	t.Helper()
	psc := pod.SecurityContext
	// No fixed runAsUser: the image runs as 65532, and OpenShift's
	// restricted-v2 SCC refuses a user outside the namespace's range.
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser != nil ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod security context %+v", psc)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("pod automounts the service account token")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.RunAsUser != nil ||
		sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) != 0 {
		t.Errorf("container security context %+v", sc)
	}
	if c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("probes %+v %+v", c.LivenessProbe, c.ReadinessProbe)
	}
	for _, flag := range []string{"--watch-namespaces=", "--cluster-resource-namespace=", "--leader-elect=", "--leader-election-namespace=", "--leader-election-lease-duration=", "--leader-election-renew-deadline=", "--leader-election-retry-period=",
		"--max-retry-duration=", "--anchor-expiry-warning=", "--recheck-interval=", "--max-concurrent-reconciles=", "--kube-api-qps=", "--kube-api-burst=", "--metrics-bind-address=", "--health-probe-bind-address=", "--zap-log-level="} {
		if !slices.ContainsFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, flag) }) {
			t.Errorf("flag %s not passed", flag)
		}
	}
}

func assertLeastPrivilege(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	var approver bool
	for _, o := range find(objs, "ClusterRole") {
		role := convert[rbacv1.ClusterRole](t, o)
		for _, r := range role.Rules {
			if slices.Contains(r.Resources, "secrets") || slices.Contains(r.Resources, "*") || slices.Contains(r.Verbs, "*") {
				t.Errorf("ClusterRole %s grants %v on %v cluster-wide", role.Name, r.Verbs, r.Resources)
			}
			if slices.Contains(r.Verbs, "approve") {
				approver = slices.Contains(r.ResourceNames, (&v1alpha1.LinkerdCAIssuer{}).GetIssuerTypeIdentifier()+"/*") && slices.Contains(r.ResourceNames, (&v1alpha1.LinkerdCAClusterIssuer{}).GetIssuerTypeIdentifier()+"/*")
			}
		}
	}
	if !approver {
		t.Error("no approver rule naming both issuer kinds")
	}
	secretNamespaces := map[string]bool{}
	for _, o := range find(objs, "Role") {
		for _, r := range convert[rbacv1.Role](t, o).Rules {
			if slices.Contains(r.Resources, "secrets") {
				secretNamespaces[o.GetNamespace()] = true
				if !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) {
					t.Errorf("Secret verbs %v", r.Verbs)
				}
			}
		}
	}
	deployment := convert[appsv1.Deployment](t, find(objs, "Deployment")[0])
	for _, a := range deployment.Spec.Template.Spec.Containers[0].Args {
		if ns, ok := strings.CutPrefix(a, "--watch-namespaces="); ok {
			for _, n := range append(strings.Split(ns, ","), localcp.IssuerNamespace) {
				if !secretNamespaces[n] {
					t.Errorf("no Secret Role in watched namespace %s", n)
				}
				delete(secretNamespaces, n)
			}
		}
	}
	if len(secretNamespaces) != 0 {
		t.Errorf("Secret Roles in namespaces the controller does not watch: %v", secretNamespaces)
	}
}

// assertCRDsAreGenerated: the chart's CRDs are config/crd's, object for
// object, with only the chart's labels and keep annotation added.
func assertCRDsAreGenerated(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	crds := find(objs, "CustomResourceDefinition")
	if len(crds) != 2 {
		t.Fatalf("%d CRDs", len(crds))
	}
	for _, o := range crds {
		got := convert[apiextensionsv1.CustomResourceDefinition](t, o)
		raw, err := os.ReadFile(filepath.Join(repoRoot(t), "config", "crd", "bases", "linkerdca.io_"+got.Spec.Names.Plural+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		var want apiextensionsv1.CustomResourceDefinition
		if err := yaml.UnmarshalStrict(raw, &want); err != nil {
			t.Fatal(err)
		}
		if got.Annotations["helm.sh/resource-policy"] != "keep" {
			t.Errorf("CRD %s not kept on uninstall", got.Name)
		}
		delete(got.Annotations, "helm.sh/resource-policy")
		got.Labels = nil
		if !reflect.DeepEqual(got.Spec, want.Spec) || !reflect.DeepEqual(got.ObjectMeta, want.ObjectMeta) {
			t.Errorf("CRD %s differs from config/crd", got.Name)
		}
	}
}

func TestChartSchemaRejectsBadValues(t *testing.T) {
	for _, bad := range []string{"watchNamespaces={Not_A_Namespace}", "logLevel=verbose", "replica=2", "maxRetryDuration=5 minutes", "image.digest=latest", "kubernetesCSR.enabled=true"} {
		if _, err := localcp.RenderChart(repoRoot(t), bad); err == nil || !strings.Contains(err.Error(), "schema") {
			t.Errorf("--set %s: want a schema error, got %v", bad, err)
		}
	}
}

// TestChartAppliesToTheAPIServer: the API server validates every rendered
// manifest (server-side apply, dry run), and its pod is admitted in a
// namespace that enforces Pod Security "restricted".
func TestChartAppliesToTheAPIServer(t *testing.T) {
	ns := "e2e-restricted"
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest",
	}}})
	for _, o := range render(t, append(allFeatures, "linkerd.namespace="+nsPreset)...) {
		if o.GetKind() == "ServiceMonitor" {
			continue // the Prometheus operator's CRD is not installed here
		}
		if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.DryRunAll, client.FieldOwner("e2e"), client.ForceOwnership); err != nil {
			t.Errorf("%s %s/%s: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
	d := convert[appsv1.Deployment](t, find(render(t), "Deployment")[0])
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-ca-issuer"}, Spec: d.Spec.Template.Spec}
	if err := cl.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Errorf("the controller pod is not admitted under Pod Security restricted: %v", err)
	}
	privileged := pod.DeepCopy()
	privileged.Spec.SecurityContext = nil
	privileged.Spec.Containers[0].SecurityContext = nil
	if err := cl.Create(ctx, privileged, client.DryRunAll); err == nil {
		t.Error("Pod Security is not enforced here, so the admission above proves nothing")
	}
}

// TestLinkerdPreset: with linkerd.enabled the chart's own objects produce
// the linkerd-identity-issuer Secret, given the trust anchor Secret in the
// cluster resource namespace (the current guide's), not in Linkerd's, which
// `linkerd uninstall` deletes.
func TestLinkerdPreset(t *testing.T) {
	anchor := newAnchor(t)
	create(t, anchorSecret(nsCluster, "preset-trust-anchor", anchor))
	// Its own trusted set: the guide's cluster issuer keeps the default
	// one, and a trusted set has one writer.
	objs := render(t, "linkerd.enabled=true", "linkerd.namespace="+nsPreset, "linkerd.issuerName=preset-identity-issuer",
		"linkerd.trustAnchorSecretName=preset-trust-anchor", "linkerd.trustedRootsConfigMapName=preset-trusted-roots")
	if n := len(find(objs, v1alpha1.IssuerKind)); n != 0 {
		t.Errorf("the preset renders %d namespaced issuers; its anchor would sit in the control plane namespace", n)
	}
	for _, o := range objs {
		if o.GetKind() == v1alpha1.ClusterIssuerKind || o.GetKind() == "Certificate" {
			create(t, o)
		}
	}
	waitCertificateReady(t, nsPreset, "linkerd-identity-issuer", 60*time.Second)
	s := mustSecret(t, nsPreset, "linkerd-identity-issuer")
	issuer, _ := assertLinkerdIdentityChecks(t, s)
	if issuer.Subject.CommonName != "identity."+nsPreset+".cluster.local" {
		t.Errorf("subject %s", issuer.Subject)
	}
	actAsIdentityService(t, s)
}

// TestKustomizeConfig: config/default and config/samples build with
// kustomize and validate against the API server.
func TestKustomizeConfig(t *testing.T) {
	for _, dir := range []string{"default", "samples"} {
		out, err := exec.Command(filepath.Join(repoRoot(t), "bin", "kubectl"), "kustomize", filepath.Join(repoRoot(t), "config", dir)).Output()
		if err != nil {
			t.Fatalf("kustomize config/%s: %v", dir, err)
		}
		objs, err := localcp.DecodeManifests(out)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) == 0 {
			t.Fatalf("config/%s is empty", dir)
		}
		for _, o := range objs {
			if err := cl.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.DryRunAll, client.FieldOwner("e2e"), client.ForceOwnership); err != nil {
				t.Errorf("config/%s: %s %s/%s: %v", dir, o.GetKind(), o.GetNamespace(), o.GetName(), err)
			}
		}
	}
}
