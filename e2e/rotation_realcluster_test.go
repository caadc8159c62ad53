//go:build e2e

package e2e

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// What a real cluster holds beside the mesh's running pods, and must not
// stop a rotation: a finished Job's pod, an evicted pod its ReplicaSet left
// behind, a paused Deployment and an OnDelete StatefulSet that a restart
// cannot roll; and (rotation_lostnode_test.go) a pod on a lost node and a
// restarted Deployment whose annotation a GitOps sync strips.
type leftovers struct {
	finished, evicted client.ObjectKey
	paused            *appsv1.Deployment
	onDelete          *appsv1.StatefulSet
	lost              *lostAndStripped
}

// addLeftovers makes them under the current root, so that after a renewal
// each of them holds only the old one.
func (m *rotationMesh) addLeftovers(t *testing.T) *leftovers {
	t.Helper()
	l := &leftovers{}
	ns := workloadNamespace(1)

	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "nightly"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/batch:1"}}}}}}
	create(t, job)
	var pod corev1.Pod
	eventually(t, 60*time.Second, "the Job's pod running", func() error {
		var pods corev1.PodList
		if err := cl.List(ctx, &pods, client.InNamespace(ns), client.MatchingLabels{"batch.kubernetes.io/job-name": job.Name}); err != nil {
			return err
		}
		if len(pods.Items) != 1 || !podReady(&pods.Items[0]) {
			return fmt.Errorf("%d pods", len(pods.Items))
		}
		pod = pods.Items[0]
		return nil
	})
	// Its container exits 0, as a kubelet reports it: the Job completes and
	// its pod stays, as a CronJob's history does.
	finish(t, &pod, corev1.PodSucceeded, "", "Completed", 0)
	l.finished = client.ObjectKeyFromObject(&pod)
	eventually(t, 60*time.Second, "the Job complete", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		if job.Status.Succeeded != 1 {
			return fmt.Errorf("status %+v", job.Status)
		}
		return nil
	})

	// The kubelet evicts a pod of a Deployment under node pressure: phase
	// Failed, left in place; its ReplicaSet makes a replacement.
	victim := podsOf(t, m.workloads[1])[0]
	finish(t, &victim, corev1.PodFailed, "Evicted", "Error", 137)
	l.evicted = client.ObjectKeyFromObject(&victim)
	waitRolledOutBeside(t, m.workloads[1], l.evicted)

	l.paused = deployment(workloadNamespace(2), "paused-app", 2)
	create(t, l.paused)
	waitRolledOut(t, l.paused)
	update(t, l.paused, func() { l.paused.Spec.Paused = true })

	labels := map[string]string{"app": "ondelete-db"}
	l.onDelete = &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Namespace: workloadNamespace(2), Name: "ondelete-db"},
		Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](1), ServiceName: "ondelete-db", Selector: &metav1.LabelSelector{MatchLabels: labels},
			UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "db", Image: "registry.example/db:1"}}}}}}
	create(t, l.onDelete)
	waitBarePod(t, l.onDelete.Namespace, l.onDelete.Name+"-0")
	l.lost = addLostAndStripped(t)
	l.lost.lose(t)
	return l
}

// finish sets a pod's phase as its kubelet would once its container ended.
func finish(t *testing.T, pod *corev1.Pod, phase corev1.PodPhase, reason, why string, code int32) {
	t.Helper()
	pod.Status.Phase, pod.Status.Reason = phase, reason
	if reason != "" {
		pod.Status.Message = "The node was low on resource: memory."
	}
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == corev1.PodReady || pod.Status.Conditions[i].Type == corev1.ContainersReady {
			pod.Status.Conditions[i].Status = corev1.ConditionFalse
		}
	}
	for i := range pod.Status.ContainerStatuses {
		c := &pod.Status.ContainerStatuses[i]
		c.Ready, c.Started = false, ptr.To(false)
		c.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: why, FinishedAt: metav1.Now()}}
	}
	if err := cl.Status().Update(ctx, pod); err != nil {
		t.Fatalf("finishing pod %s/%s: %v", pod.Namespace, pod.Name, err)
	}
}

// waitRolledOutBeside is waitRolledOut with one finished pod left among
// the Deployment's.
func waitRolledOutBeside(t *testing.T, d *appsv1.Deployment, left client.ObjectKey) {
	t.Helper()
	eventually(t, 60*time.Second, "a replacement for the evicted pod", func() error {
		pods := slices.DeleteFunc(podsOf(t, d), func(p corev1.Pod) bool { return p.Name == left.Name })
		ready := 0
		for i := range pods {
			if podReady(&pods[i]) {
				ready++
			}
		}
		if ready != int(*d.Spec.Replicas) {
			return fmt.Errorf("%d of %d ready beside the evicted pod", ready, *d.Spec.Replicas)
		}
		return nil
	})
}

// waitBlocked waits until the status names the paused Deployment as
// needing a manual step, with the step, while every other workload went
// on.
func (l *leftovers) waitBlocked(t *testing.T, m *rotationMesh) {
	t.Helper()
	name := "Deployment " + l.paused.Namespace + "/" + l.paused.Name
	sts := "StatefulSet " + l.onDelete.Namespace + "/" + l.onDelete.Name
	named := func(blocked []string, who, step string) bool {
		return slices.ContainsFunc(blocked, func(b string) bool { return strings.Contains(b, who) && strings.Contains(b, step) })
	}
	l.lost.stripOnceRestarted(t, m)
	eventually(t, 3*time.Minute, "only the leftovers behind, each named with its manual step", func() error {
		st := m.status(t)
		if !named(st.Blocked, name, "kubectl rollout resume") || !named(st.Blocked, sts, "updateStrategy OnDelete") || !l.lost.named(st.Blocked) {
			return fmt.Errorf("%s, blocked %v", st.Phase, st.Blocked)
		}
		// The paused Deployment's, the StatefulSet's, the lost node's and
		// the quota-bound app's old pod.
		if want := *l.paused.Spec.Replicas + *l.onDelete.Spec.Replicas + 2; st.PodsBehind != want {
			return fmt.Errorf("%d behind %v, want theirs alone (%d)", st.PodsBehind, st.Behind, want)
		}
		return nil
	})
	if code, out := linkerdCA("rotation", "status"); code != 0 || !strings.Contains(out, name) {
		t.Errorf("linkerd-ca rotation status: exit %d, want the paused Deployment named:\n%s", code, out)
	}
}

// resume does the manual step, and checks the finished pods are still
// there: they were present all along and held nothing up.
func (l *leftovers) resume(t *testing.T) {
	t.Helper()
	update(t, l.paused, func() { l.paused.Spec.Paused = false })
	l.lost.resume(t)
	// OnDelete's step: delete the pod; its StatefulSet makes it again.
	if err := cl.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: l.onDelete.Namespace, Name: l.onDelete.Name + "-0"}}); err != nil {
		t.Error(err)
	}
	for _, key := range []client.ObjectKey{l.finished, l.evicted} {
		var p corev1.Pod
		if err := cl.Get(ctx, key, &p); err != nil || (p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed) {
			t.Errorf("pod %s: %v, phase %s; want it left in place, finished", key, err, p.Status.Phase)
		}
	}
}

// remove deletes them, so that the suite's later rotations start clean.
func (l *leftovers) remove(t *testing.T) {
	for _, o := range []client.Object{
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: l.finished.Namespace, Name: l.finished.Name}},
		&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: l.evicted.Namespace, Name: l.evicted.Name}},
		&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Namespace: l.finished.Namespace, Name: "nightly"}},
		l.paused, l.onDelete,
	} {
		if err := cl.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			t.Error(err)
		}
	}
	l.lost.remove(t)
}

// recreateIssuer deletes the issuer and creates it again from its spec, as
// a Helm reinstall or an Argo CD replace does: its status is lost.
func (m *rotationMesh) recreateIssuer(t *testing.T) {
	t.Helper()
	spec := *m.iss.Spec.DeepCopy()
	if err := cl.Delete(ctx, m.iss); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the issuer gone", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(m.iss), &v1alpha1.LinkerdCAClusterIssuer{}); !apierrors.IsNotFound(err) {
			return fmt.Errorf("still there: %w", err)
		}
		return nil
	})
	m.iss = &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: rotationIssuer}, Spec: spec}
	// Not create(): the issuer outlives this subtest, and the suite's own
	// clean-up deletes it by name.
	if err := cl.Create(ctx, m.iss); err != nil {
		t.Fatal(err)
	}
}

// setBundleSources points the mesh's Bundle at other sources.
func setBundleSources(t *testing.T, sources ...any) {
	t.Helper()
	b := meshBundle()
	if err := cl.Get(ctx, client.ObjectKey{Name: guide.TrustRoots}, b); err != nil {
		t.Fatal(err)
	}
	b.Object["spec"].(map[string]any)["sources"] = sources
	if err := cl.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
}

// testSameKeyRenewal overwrites the anchor Secret with a copy of its root
// renewed with the same key, as cert-manager does with rotationPolicy
// Never: no hold, the identity issuer renewed meanwhile, the deadline the
// old copy's expiry, then restarts bring every pod the new copy.
func (m *rotationMesh) testSameKeyRenewal(t *testing.T, root *testpki.Anchor) {
	t.Helper()
	m.restartIssuer(t)
	// Counted from here: the previous subtest restarted them by hand.
	for _, d := range append(slices.Clone(m.controlPlan), m.workloads...) {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(d), d); err != nil {
			t.Fatal(err)
		}
	}
	before := m.root(t)
	if before != signer.Fingerprint(root.Certificate) {
		t.Fatalf("signing under %s, want the previous subtest's root %s", short(before), short(signer.Fingerprint(root.Certificate)))
	}
	renewed, err := root.Renewed(time.Now().Add(-time.Minute), time.Now().Add(2*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsCluster, Name: m.iss.Spec.TrustAnchorSecretName}}
	update(t, s, func() { s.Data[corev1.TLSCertKey] = renewed.CertPEM })
	st := m.waitPhase(t, v1alpha1.RotationPropagating, 60*time.Second)
	if st.SigningRoot != before || st.Deadline == nil || !st.Deadline.Time.Equal(root.Certificate.NotAfter.Truncate(time.Second)) ||
		!strings.Contains(st.Message, "renewed with the same key") {
		t.Errorf("status %+v; want Propagating under the old copy until its expiry %s", st, root.Certificate.NotAfter)
	}
	// Signing goes on: the identity issuer renewed now is issued.
	renewIdentityIssuer(t, nsMesh)
	if st := m.status(t); st.Phase == v1alpha1.RotationHeld {
		t.Errorf("held after a same-key renewal: %s", st.Message)
	}
	m.restartIssuer(t, "--rotation-restarts")
	next := signer.Fingerprint(renewed.Certificate)
	m.waitStable(t, next, 4*time.Minute)
	m.assertRestartedOnce(t, next)
}

// acceptBehind is the override: without --accept-behind the CLI names the
// pod it would break and records nothing; with it, the switch proceeds, and
// says so in a Warning event and the status.
func (m *rotationMesh) acceptBehind(t *testing.T, pod string) {
	t.Helper()
	if code, out := linkerdCA("rotation", "switch"); code == 0 || !strings.Contains(out, pod) || !strings.Contains(out, "--accept-behind") {
		t.Errorf("linkerd-ca rotation switch without --accept-behind: exit %d, want a refusal naming %s:\n%s", code, pod, out)
	}
	if st := m.status(t); st.Phase != v1alpha1.RotationPropagating || m.iss.Annotations[v1alpha1.AcceptBehindAnnotation] != "" {
		t.Fatalf("phase %s, annotation %q after a refused switch; want still Propagating, nothing recorded", st.Phase, m.iss.Annotations[v1alpha1.AcceptBehindAnnotation])
	}
	m.watcher.accept(pod)
	if code, out := linkerdCA("rotation", "switch", "--accept-behind"); code != 0 || !strings.Contains(out, pod) {
		t.Fatalf("linkerd-ca rotation switch --accept-behind: exit %d, want the decision recorded naming %s:\n%s", code, pod, out)
	}
	m.waitEvent(t, corev1.EventTypeWarning, "RotationSwitchAccepted")
	if st := m.status(t); !slices.Equal(st.AcceptedBehind, []string{pod}) {
		t.Errorf("status.rotation.acceptedBehind %v, want [%s]", st.AcceptedBehind, pod)
	}
}

// assertOneWriter: a second rotating issuer naming the same trusted set is
// refused with a condition, and writes nothing to the set.
func (m *rotationMesh) assertOneWriter(t *testing.T) {
	t.Helper()
	twin := &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: rotationIssuer + "-twin"}, Spec: *m.iss.Spec.DeepCopy()}
	create(t, twin)
	eventually(t, 30*time.Second, "the twin refused", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(twin), twin); err != nil {
			return err
		}
		c := meta.FindStatusCondition(twin.Status.Conditions, v1alpha1.ConditionRotation)
		if c == nil || c.Reason != "TrustedSetConflict" || !strings.Contains(c.Message, rotationIssuer) {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
	var cm corev1.ConfigMap
	if err := cl.Get(ctx, client.ObjectKey{Namespace: nsCluster, Name: rotationTrusted}, &cm); err != nil {
		t.Fatal(err)
	}
	if owner := cm.Annotations["linkerdca.io/issuer"]; owner != v1alpha1.ClusterIssuerKind+"/"+rotationIssuer {
		t.Errorf("trusted set owned by %q; want %s alone", owner, rotationIssuer)
	}
	if twin.Status.Rotation != nil {
		t.Errorf("the refused twin has a rotation status %+v", twin.Status.Rotation)
	}
	if c, _ := issuerReady(twin); c == nil || c.Status == metav1.ConditionTrue {
		t.Errorf("the refused twin is Ready: %+v; want it signing nothing", c)
	}
}

// assertOffSignsUnderPrevious: the rotation controller turned off
// mid-Propagating, the identity issuer renewed then is signed under the
// root recorded as signing, never the new, unpropagated one.
func (m *rotationMesh) assertOffSignsUnderPrevious(t *testing.T, previous string) {
	t.Helper()
	m.restartIssuer(t, "--rotation=false")
	defer m.restartIssuer(t)
	renewIdentityIssuer(t, nsMesh)
	m.assertIssuerUnder(t, previous)
}

// renewIdentityIssuer has cert-manager renew the identity issuer in ns, as
// `cmctl renew` does, and is the certificate it then holds.
func renewIdentityIssuer(t *testing.T, ns string) *x509.Certificate {
	t.Helper()
	before := identityIssuerIn(t, ns)
	renew(t, ns, localcp.IdentityIssuerSecret)
	var got *x509.Certificate
	eventually(t, 60*time.Second, "the identity issuer renewed in "+ns, func() error {
		if got = identityIssuerIn(t, ns); got.SerialNumber.Cmp(before.SerialNumber) == 0 {
			return fmt.Errorf("still serial %s", got.SerialNumber)
		}
		return nil
	})
	return got
}
