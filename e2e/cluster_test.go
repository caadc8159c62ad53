//go:build e2e

package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// The tests here prove the local control plane a cluster that runs
// workloads (kube-controller-manager, kube-scheduler, kwok), skipped on an
// existing cluster only where they reach into the local plane.

func namespace(t *testing.T, name string, labels map[string]string) {
	t.Helper()
	create(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}})
}

func deployment(ns, name string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}},
			},
		},
	}
}

// podsOf lists the pods of a Deployment's selector that are not going.
func podsOf(t *testing.T, d *appsv1.Deployment) []corev1.Pod {
	t.Helper()
	var pods corev1.PodList
	if err := cl.List(ctx, &pods, client.InNamespace(d.Namespace), client.MatchingLabels(d.Spec.Selector.MatchLabels)); err != nil {
		t.Fatal(err)
	}
	return slices.DeleteFunc(pods.Items, func(p corev1.Pod) bool { return p.DeletionTimestamp != nil })
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue && p.Status.Phase == corev1.PodRunning
		}
	}
	return false
}

// waitRolledOut waits until the Deployment's current generation is rolled
// out: every replica updated, available and Ready, and no old pod left.
func waitRolledOut(t *testing.T, d *appsv1.Deployment) []corev1.Pod {
	t.Helper()
	var pods []corev1.Pod
	eventually(t, 60*time.Second, fmt.Sprintf("Deployment %s/%s rolled out", d.Namespace, d.Name), func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		want := *d.Spec.Replicas
		st := d.Status
		if st.ObservedGeneration < d.Generation || st.UpdatedReplicas != want || st.ReadyReplicas != want || st.AvailableReplicas != want || st.Replicas != want {
			return fmt.Errorf("status %+v, want %d replicas updated, ready and available", st, want)
		}
		pods = podsOf(t, d)
		if int32(len(pods)) != want {
			return fmt.Errorf("%d pods, want %d", len(pods), want)
		}
		for i := range pods {
			if !podReady(&pods[i]) || pods[i].Spec.NodeName == "" {
				return fmt.Errorf("pod %s: phase %s on node %q, not Ready", pods[i].Name, pods[i].Status.Phase, pods[i].Spec.NodeName)
			}
		}
		return nil
	})
	return pods
}

// TestDeploymentRollsOutAndRestarts: a Deployment becomes a ReplicaSet and
// Ready pods on kwok's nodes; `kubectl rollout restart` replaces every pod.
func TestDeploymentRollsOutAndRestarts(t *testing.T) {
	const ns = "e2e-workloads"
	namespace(t, ns, nil)
	d := deployment(ns, "web", 3)
	create(t, d)
	before := waitRolledOut(t, d)
	for _, p := range before {
		if !slices.Contains(localcp.FakeNodes, p.Spec.NodeName) {
			t.Errorf("pod %s on node %q, not a kwok node", p.Name, p.Spec.NodeName)
		}
	}

	// What `kubectl rollout restart` does.
	update(t, d, func() {
		if d.Spec.Template.Annotations == nil {
			d.Spec.Template.Annotations = map[string]string{}
		}
		d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339)
	})
	after := waitRolledOut(t, d)
	old := map[string]bool{}
	for _, p := range before {
		old[string(p.UID)] = true
	}
	for _, p := range after {
		if old[string(p.UID)] {
			t.Errorf("pod %s survived the restart", p.Name)
		}
	}
}

// TestDeletedNamespaceEmpties: the namespace controller deletes what a
// namespace holds, the garbage collector a Deployment's ReplicaSets and
// pods, and then the namespace goes.
func TestDeletedNamespaceEmpties(t *testing.T) {
	t.Parallel() // the namespace controller's seconds, beside the mesh's rotation
	const ns = "e2e-doomed"
	namespace(t, ns, nil)
	d := deployment(ns, "doomed", 2)
	create(t, d, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "data"}})
	waitRolledOut(t, d)
	if err := cl.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "namespace "+ns+" gone", func() error {
		err := cl.Get(ctx, client.ObjectKey{Name: ns}, &corev1.Namespace{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		var pods corev1.PodList
		if err := cl.List(ctx, &pods, client.InNamespace(ns)); err != nil {
			return err
		}
		return fmt.Errorf("still there, %d pods left", len(pods.Items))
	})
}

// TestViewRoleAggregatesTheIssuers: a user bound to Kubernetes' own view
// role may read LinkerdCAIssuers, because the clusterrole-aggregation
// controller folded the chart's :view role into it. Checked by effect, with
// a SubjectAccessReview, not by render.
func TestViewRoleAggregatesTheIssuers(t *testing.T) {
	const ns, user = "e2e-viewer", "viewer"
	namespace(t, ns, nil)
	create(t, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "viewer"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
	})
	allowed := func(verb, resource string) (bool, error) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User:               user,
			ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: ns, Verb: verb, Group: v1alpha1.GroupVersion.Group, Resource: resource},
		}}
		err := cl.Create(ctx, sar)
		return sar.Status.Allowed, err
	}
	eventually(t, 30*time.Second, "view aggregates linkerdcaissuers", func() error {
		for _, verb := range []string{"get", "list", "watch"} {
			ok, err := allowed(verb, "linkerdcaissuers")
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%s linkerdcaissuers: not allowed", verb)
			}
		}
		return nil
	})
	if ok, err := allowed("create", "linkerdcaissuers"); err != nil || ok {
		t.Errorf("view may create linkerdcaissuers: %v %v", ok, err)
	}
}

// TestInjectedPodsCarryTheBundleOfTheirAdmission: the stand-in for
// Linkerd's proxy injector gives each pod of an injected namespace the
// trust bundle as it is at the pod's admission, inline, as linkerd2's does;
// pods admitted before a change keep the old bundle.
func TestInjectedPodsCarryTheBundleOfTheirAdmission(t *testing.T) {
	if cp.Existing {
		t.Skip("the stand-in injector runs with the local control plane")
	}
	const ns = "e2e-meshed"
	a, b := newAnchor(t), newAnchor(t)
	first := string(a.CertPEM)
	roots := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsMesh, Name: v1alpha1.DefaultTrustRootsConfigMap},
		Data:       map[string]string{v1alpha1.DefaultTrustRootsKey: first},
	}
	create(t, roots)
	namespace(t, ns, map[string]string{localcp.InjectLabel: "enabled"})
	d := deployment(ns, "meshed", 2)
	create(t, d)
	for _, p := range waitRolledOut(t, d) {
		assertInjected(t, &p, first)
	}

	second := string(a.CertPEM) + string(b.CertPEM)
	update(t, roots, func() { roots.Data = map[string]string{v1alpha1.DefaultTrustRootsKey: second} })
	old := podsOf(t, d)
	update(t, d, func() { d.Spec.Replicas = ptr.To[int32](3) })
	pods := waitRolledOut(t, d)
	var fresh int
	for _, p := range pods {
		if slices.ContainsFunc(old, func(o corev1.Pod) bool { return o.UID == p.UID }) {
			assertInjected(t, &p, first)
		} else {
			assertInjected(t, &p, second)
			fresh++
		}
	}
	if fresh != 1 {
		t.Errorf("%d new pods, want 1", fresh)
	}

	// An uninjected namespace is left alone.
	plain := deployment("e2e-workloads-plain", "plain", 1)
	namespace(t, plain.Namespace, nil)
	create(t, plain)
	for _, p := range waitRolledOut(t, plain) {
		if len(p.Spec.InitContainers) != 0 || p.Annotations[localcp.TrustRootHashAnnotation] != "" {
			t.Errorf("pod %s in a namespace without %s was injected", p.Name, localcp.InjectLabel)
		}
	}
}

// assertInjected checks a pod carries bundle as linkerd2's injector writes
// it: linkerd-proxy a native sidecar with the PEM inline plus a newline, the
// hash of the bundle as read, and the mesh labels.
func assertInjected(t *testing.T, p *corev1.Pod, bundle string) {
	t.Helper()
	if len(p.Spec.InitContainers) != 1 || p.Spec.InitContainers[0].Name != localcp.ProxyContainer {
		t.Fatalf("pod %s: init containers %v, want %s alone", p.Name, p.Spec.InitContainers, localcp.ProxyContainer)
	}
	proxy := p.Spec.InitContainers[0]
	if proxy.RestartPolicy == nil || *proxy.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		t.Errorf("pod %s: %s is not a native sidecar", p.Name, proxy.Name)
	}
	var env string
	for _, e := range proxy.Env {
		if e.Name == localcp.TrustAnchorsEnv {
			env = e.Value
		}
	}
	if env != bundle+"\n" {
		t.Errorf("pod %s: %s is\n%q\nwant the bundle at its admission plus a newline\n%q", p.Name, localcp.TrustAnchorsEnv, env, bundle+"\n")
	}
	got, err := signer.ParseTrustBundle([]byte(env))
	if err != nil || len(got) == 0 {
		t.Errorf("pod %s: the env does not parse as a bundle: %v", p.Name, err)
	}
	sum := sha256.Sum256([]byte(bundle))
	if h := p.Annotations[localcp.TrustRootHashAnnotation]; h != hex.EncodeToString(sum[:]) {
		t.Errorf("pod %s: %s %q, want the bundle's SHA-256", p.Name, localcp.TrustRootHashAnnotation, h)
	}
	if p.Labels[localcp.ControlPlaneNSLabel] != nsMesh || p.Labels[localcp.WorkloadNSLabel] != p.Namespace {
		t.Errorf("pod %s: labels %v", p.Name, p.Labels)
	}
}

// TestLinkerdControlPlaneRuns: Linkerd's control plane Deployments, as its
// chart renders them for trust, run with the roots by configMapKeyRef.
func TestLinkerdControlPlaneRuns(t *testing.T) {
	if cp.Existing {
		t.Skip("the local control plane's own Linkerd stand-ins")
	}
	for _, c := range localcp.LinkerdComponents {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: nsMesh, Name: "linkerd-" + c}}
		for _, p := range waitRolledOut(t, d) {
			ref := p.Spec.InitContainers[0].Env[0].ValueFrom
			if ref == nil || ref.ConfigMapKeyRef == nil || ref.ConfigMapKeyRef.Name != v1alpha1.DefaultTrustRootsConfigMap {
				t.Errorf("%s: %s takes its roots from %+v, want the trust roots ConfigMap", p.Name, localcp.ProxyContainer, ref)
			}
		}
	}
}
