//go:build e2e

package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// Two more things a real cluster holds during a rotation: a meshed pod on
// a node that was lost, deleted but never confirmed gone by a kubelet; and
// a Deployment whose restart cannot make a pod (a quota is full), whose
// restart annotation a GitOps sync then strips.
type lostAndStripped struct {
	node  *corev1.Node
	pod   client.ObjectKey
	class *schedulingv1.PriorityClass
	quota *corev1.ResourceQuota
	app   *appsv1.Deployment
}

func addLostAndStripped(t *testing.T) *lostAndStripped {
	t.Helper()
	s := &lostAndStripped{}
	ns := workloadNamespace(2)
	// Without kwok's annotation, nothing plays this node's kubelet: its last
	// report said NotReady, and a pod on it is never confirmed stopped.
	s.node = &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "e2e-lost-node"}}
	create(t, s.node)
	now := metav1.Now()
	s.node.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionFalse, Reason: "KubeletNotReady",
		Message: "container runtime is down", LastHeartbeatTime: now, LastTransitionTime: now}}
	if err := cl.Status().Update(ctx, s.node); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "on-lost-node"},
		Spec: corev1.PodSpec{NodeName: s.node.Name, Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}
	create(t, pod)
	if _, ok := podtrust.Of(pod); !ok {
		t.Fatalf("pod %s/%s was not injected", pod.Namespace, pod.Name)
	}
	pod.Status.Phase, pod.Status.StartTime = corev1.PodRunning, &now
	if err := cl.Status().Update(ctx, pod); err != nil {
		t.Fatal(err)
	}
	s.pod = client.ObjectKeyFromObject(pod)
	// Only a force delete removes it, whatever happens to the test.
	t.Cleanup(func() { _ = cl.Delete(ctx, pod, client.GracePeriodSeconds(0)) })

	s.class = &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: "e2e-quota-bound"}, Value: 0}
	create(t, s.class)
	s.app = deployment(ns, "quota-app", 1)
	s.app.Spec.Template.Spec.PriorityClassName = s.class.Name
	create(t, s.app)
	waitRolledOut(t, s.app)
	// Room for the one pod it runs, not for the surge pod a restart needs.
	s.quota = &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "quota-app-pods"},
		Spec: corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("1")},
			ScopeSelector: &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{{
				ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{s.class.Name}}}}}}
	create(t, s.quota)
	eventually(t, 60*time.Second, "the quota counting the app's pod", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(s.quota), s.quota); err != nil {
			return err
		}
		if used := s.quota.Status.Used[corev1.ResourcePods]; used.Value() != 1 {
			return fmt.Errorf("used %v", s.quota.Status.Used)
		}
		return nil
	})
	return s
}

// lose deletes the pod on the lost node: with no kubelet to confirm it, it
// stays Terminating past its grace period.
func (s *lostAndStripped) lose(t *testing.T) {
	t.Helper()
	if err := cl.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.pod.Namespace, Name: s.pod.Name}}, client.GracePeriodSeconds(1)); err != nil {
		t.Fatal(err)
	}
}

// stripOnceRestarted waits for the controller to restart the quota-bound
// app, then strips its restart annotations as a GitOps sync of its
// manifest would, and checks that the controller names it rather than
// restart it a second time.
func (s *lostAndStripped) stripOnceRestarted(t *testing.T, m *rotationMesh) {
	t.Helper()
	root := m.anchorRoot(t)
	eventually(t, 3*time.Minute, "the quota-bound app restarted for the new root", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(s.app), s.app); err != nil {
			return err
		}
		if got := s.app.Spec.Template.Annotations[podtrust.RestartedForAnnotation]; got != root {
			return fmt.Errorf("restarted for %q", short(got))
		}
		return nil
	})
	patch := fmt.Sprintf(`[{"op":"remove","path":"/spec/template/metadata/annotations/%s"},{"op":"remove","path":"/spec/template/metadata/annotations/%s"}]`,
		strings.ReplaceAll(podtrust.RestartedForAnnotation, "/", "~1"), strings.ReplaceAll(podtrust.RestartedAtAnnotation, "/", "~1"))
	if err := cl.Patch(ctx, s.app, client.RawPatch(types.JSONPatchType, []byte(patch))); err != nil {
		t.Fatal(err)
	}
	stripped := s.app.Generation
	name := "Deployment " + s.app.Namespace + "/" + s.app.Name
	eventually(t, 2*time.Minute, "the stripped app named, not restarted again", func() error {
		st := m.status(t)
		if !slices.ContainsFunc(st.Restarted, func(r v1alpha1.RestartedWorkload) bool { return r.Workload == name }) {
			return fmt.Errorf("restarted %v lacks %s", st.Restarted, name)
		}
		if !slices.ContainsFunc(st.Blocked, func(b string) bool {
			return strings.HasPrefix(b, name) && strings.Contains(b, "annotation is gone")
		}) {
			return fmt.Errorf("blocked %v", st.Blocked)
		}
		return nil
	})
	if err := cl.Get(ctx, client.ObjectKeyFromObject(s.app), s.app); err != nil {
		t.Fatal(err)
	}
	if s.app.Generation != stripped || s.app.Spec.Template.Annotations[podtrust.RestartedForAnnotation] != "" {
		t.Errorf("%s: generation %d (stripped at %d), restarted-for %q: restarted again", name, s.app.Generation, stripped, s.app.Spec.Template.Annotations[podtrust.RestartedForAnnotation])
	}
}

// named checks the status names the lost node's pod with its node's state.
func (s *lostAndStripped) named(blocked []string) bool {
	return slices.ContainsFunc(blocked, func(b string) bool {
		return strings.HasPrefix(b, "pod "+s.pod.String()+": terminating past its grace period") &&
			// False as its kubelet last said, or Unknown once the node
			// lifecycle controller gave up on it.
			strings.Contains(b, "on node e2e-lost-node, which is not Ready (Ready=") && strings.Contains(b, "kubectl delete pod --force")
	})
}

// resume does what an operator does: force-deletes the lost node's pod,
// makes room in the quota and, as the status says, restarts the app itself
// (its ReplicaSets back off after failing so long, and a restart makes a
// new one).
func (s *lostAndStripped) resume(t *testing.T) {
	t.Helper()
	if err := cl.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.pod.Namespace, Name: s.pod.Name}}, client.GracePeriodSeconds(0)); err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
	if err := cl.Delete(ctx, s.quota); err != nil && !apierrors.IsNotFound(err) {
		t.Error(err)
	}
	update(t, s.app, func() {
		s.app.Spec.Template.Annotations = map[string]string{"kubectl.kubernetes.io/restartedAt": time.Now().Format(time.RFC3339)}
	})
}

// assertNotRestartedAgain checks, once the rotation is over, that the
// controller never wrote its annotation back.
func (s *lostAndStripped) assertNotRestartedAgain(t *testing.T) {
	t.Helper()
	if err := cl.Get(ctx, client.ObjectKeyFromObject(s.app), s.app); err != nil {
		t.Fatal(err)
	}
	if got := s.app.Spec.Template.Annotations[podtrust.RestartedForAnnotation]; got != "" {
		t.Errorf("Deployment %s/%s restarted again by the controller, for %s, after its annotation was stripped", s.app.Namespace, s.app.Name, short(got))
	}
}

func (s *lostAndStripped) remove(t *testing.T) {
	for _, o := range []client.Object{s.app, s.class, s.node} {
		if err := cl.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
}
