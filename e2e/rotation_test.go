//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// The rotation suite's mesh: Linkerd's control plane in nsMesh and
// rotationWorkloads meshed Deployments of rotationReplicas pods each, spread
// over rotationNamespaces namespaces.
const (
	rotationIssuer     = "e2e-rotation"
	rotationTrusted    = "e2e-rotation-trusted"
	rotationRoot       = "e2e-rotation-root"
	rotationNamespaces = 4
	rotationWorkloads  = 20
	rotationReplicas   = 10
	// rotationLifetime stands in for the proxy certificate lifetime (24h).
	rotationLifetime = 10 * time.Second
)

type rotationMesh struct {
	iss         *v1alpha1.LinkerdCAClusterIssuer
	watcher     *trustWatcher
	workloads   []*appsv1.Deployment
	controlPlan []*appsv1.Deployment
}

// TestTrustAnchorRotationOnAMesh rotates the root of a mesh of 200 meshed
// pods and Linkerd's control plane, under both triggers, with and without
// the controller's restarts, with a watcher asserting the invariants on
// every change from start to end.
//
// It runs beside the other parallel tests, which wait more than they work;
// they must bear the issuer's restarts, and their writes count in the API
// writes logged here (docs/performance.md quotes a run of this test alone).
func TestTrustAnchorRotationOnAMesh(t *testing.T) {
	t.Parallel()
	if cp.Existing {
		t.Skip("needs the local control plane's cluster, injector and identity stand-ins")
	}
	m := setUpMesh(t)
	defer m.assertInvariants(t)
	// Anchor Secrets outlive the subtest that makes them: a rotation signs
	// under the previous one until the next has propagated.
	suite := t
	var third *testpki.Anchor

	t.Run("root Certificate renewed in place: held, then completed by restarts", func(t *testing.T) {
		before := m.root(t)
		left := m.addLeftovers(t)
		renew(t, nsCluster, rotationRoot)
		st := m.waitPhase(t, v1alpha1.RotationHeld, 60*time.Second)
		issuer := m.identityIssuer(t)
		if st.Deadline == nil || !st.Deadline.Time.Equal(issuer.NotAfter.Truncate(time.Second)) || st.PodsBehind != st.PodsTotal || len(st.Behind) != 5 {
			t.Errorf("held status %+v; want the identity issuer's expiry (%s) as deadline, every pod behind, five named", st, issuer.NotAfter)
		}
		if !strings.Contains(st.Message, "held") || !strings.Contains(st.Message, issuer.NotAfter.UTC().Format(time.RFC3339)) {
			t.Errorf("message %q does not say held until when", st.Message)
		}
		m.waitEvent(t, corev1.EventTypeWarning, "RotationHeld")
		labels := map[string]string{"issuer_kind": v1alpha1.ClusterIssuerKind, "issuer": rotationIssuer}
		if behind := scrape(t, "linkerd_ca_issuer_rotation_pods_behind", labels); behind != float64(st.PodsBehind) {
			t.Errorf("metric pods behind = %g, want %d", behind, st.PodsBehind)
		}
		if deadline := scrape(t, "linkerd_ca_issuer_rotation_deadline_timestamp_seconds", labels); st.Deadline == nil || deadline != float64(st.Deadline.Unix()) {
			t.Errorf("metric deadline = %g, want status.rotation.deadline %v", deadline, st.Deadline)
		}
		labels["phase"] = "Held"
		if held := scrape(t, "linkerd_ca_issuer_rotation_phase", labels); held != 1 {
			t.Errorf("metric phase{Held} = %g, want 1", held)
		}
		delete(labels, "phase")
		saveAlertState(t, "held", labels, sample("linkerd_ca_issuer_rotation_phase", "1", `phase="Held"`))
		m.waitTrustRootsHold(t, before, m.anchorRoot(t))
		if code, out := linkerdCACheck(); code == 0 || !strings.Contains(out, "held") {
			t.Errorf("linkerd-ca check during a hold: exit %d, want a failure naming the hold:\n%s", code, out)
		}
		m.assertIssuerUnder(t, before)
		// Killed while held, it holds again: nothing in its memory let it sign.
		if err := cp.StopIssuer("issuer", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		if err := cp.StartIssuer(ctx, "issuer"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(3 * time.Second)
		if st := m.waitPhase(t, v1alpha1.RotationHeld, 30*time.Second); st.SigningRoot != before {
			t.Errorf("after a SIGKILL while held: signing root %s, want %s", short(st.SigningRoot), short(before))
		}
		m.assertIssuerUnder(t, before)
		m.restartIssuer(t, "--rotation-restarts")
		// The finished Job's pod and the evicted pod hold nothing up; the
		// paused Deployment is named with its step, and the rest go on.
		left.waitBlocked(t, m)
		left.resume(t)
		m.waitStable(t, m.anchorRoot(t), 4*time.Minute)
		saveAlertState(t, "stable", map[string]string{"issuer_kind": v1alpha1.ClusterIssuerKind, "issuer": rotationIssuer},
			sample("linkerd_ca_issuer_rotation_phase", "1", `phase="Stable"`))
		m.assertRestartedOnce(t, m.anchorRoot(t))
		left.lost.assertNotRestartedAgain(t)
		left.remove(t)
		// The figure docs/performance.md quotes: what the issuer wrote from
		// its restart with restarts on to Stable, the request it signed too.
		t.Logf("API writes by the issuer from restarts on to Stable: %v", issuerWrites(t))
	})

	t.Run("new anchor Secret with restarts, the controller SIGKILLed before each kind of write in each phase", func(t *testing.T) {
		m.restartIssuer(t, "--rotation-restarts")
		previous := m.root(t)
		k := startKiller(t, m)
		// Started the safe way: the CLI makes the next root beside the
		// current one and points the issuer at it.
		if code, out := linkerdCA("rotation", "start"); code != 0 || !strings.Contains(out, "now names Secret") {
			k.stop(t)
			t.Fatalf("linkerd-ca rotation start: exit %d\n%s", code, out)
		}
		// An operator follows it as kubectl rollout status follows a
		// rollout, through every kill, to its end.
		watched := make(chan string, 1)
		go func() {
			code, out := linkerdCA("rotation", "status", "--watch", "--timeout", "10m")
			watched <- fmt.Sprintf("exit %d\n%s", code, out)
		}()
		root := m.anchorRoot(t)
		suite.Cleanup(func() {
			_ = cl.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsCluster, Name: m.iss.Spec.TrustAnchorSecretName}})
		})
		if root == previous {
			k.stop(t)
			t.Fatalf("the issuer still names a Secret holding the current root %s", short(root))
		}
		k.waitStable(t, root)
		k.stop(t)
		k.report(t, killedBefore...)
		assertWatchedToStable(t, watched)
		m.assertRestartedOnce(t, root)
		m.assertIssuerUnder(t, root)
		m.waitTrustRootsHold(t, root)
	})

	t.Run("new anchor Secret without restarts: waits, names who is behind, a bare pod blocks", func(t *testing.T) {
		m.restartIssuer(t)
		previous := m.root(t)
		bare := meshedPod(t, workloadNamespace(0), "bare")
		next := newAnchor(t)
		third = next
		create(suite, anchorSecret(nsCluster, "e2e-rotation-third", next))
		root := signer.Fingerprint(next.Certificate)
		update(t, m.iss, func() { m.iss.Spec.TrustAnchorSecretName = "e2e-rotation-third" })
		st := m.waitPhase(t, v1alpha1.RotationPropagating, 60*time.Second)
		eventually(t, 30*time.Second, "every pod behind, the bare pod named", func() error {
			st = m.status(t)
			if st.BundleGainedAt == nil || st.PodsBehind != st.PodsTotal || !slices.Contains(st.Unrestartable, bare) {
				return fmt.Errorf("%+v", st)
			}
			return nil
		})
		// Reinstalled mid-rotation (Helm, Argo CD replace): the status is
		// lost, the cluster is not. It resumes under the previous root.
		m.recreateIssuer(t)
		if st = m.waitPhase(t, v1alpha1.RotationPropagating, 60*time.Second); st.SigningRoot != previous || st.NextRoot != root {
			t.Errorf("re-created mid-rotation: signing %s, next %s; want signing the previous root %s, next %s", short(st.SigningRoot), short(st.NextRoot), short(previous), short(root))
		}
		m.waitTrustRootsHold(t, previous, root)
		m.assertIssuerUnder(t, previous)
		m.assertOneWriter(t)
		m.assertOffSignsUnderPrevious(t, previous)
		if code, out := linkerdCACheck(); code != 0 || !strings.Contains(out, "rotation") {
			t.Errorf("linkerd-ca check while propagating: exit %d, want a warning, not a failure:\n%s", code, out)
		}
		hasLine := func(out string, parts ...string) bool {
			return slices.ContainsFunc(strings.Split(out, "\n"), func(l string) bool {
				return !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(l, p) })
			})
		}
		if code, out := linkerdCA("rotation", "status"); code != 0 || !hasLine(out, bare, "none: delete or re-create the pod") ||
			!hasLine(out, "Deployment "+workloadNamespace(1)+"/app-01", "roots inline") {
			t.Errorf("linkerd-ca rotation status: exit %d, want the bare pod and the Deployments behind listed:\n%s", code, out)
		}
		time.Sleep(3 * time.Second) // nothing restarts by itself
		m.assertRestartedOnce(t, "")
		for _, d := range append(m.controlPlan, m.workloads...) {
			rolloutRestart(t, d)
		}
		eventually(t, 3*time.Minute, "only the bare pod behind", func() error {
			st = m.status(t)
			if st.Phase != v1alpha1.RotationPropagating || st.PodsBehind != 1 || !slices.Equal(st.Behind, []string{bare}) {
				return fmt.Errorf("%s, %d behind %v", st.Phase, st.PodsBehind, st.Behind)
			}
			return nil
		})
		// The operator decides the bare pod may break; nothing else would
		// let the rotation switch.
		m.acceptBehind(t, bare)
		if err := cl.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: workloadNamespace(0), Name: "bare"}}); err != nil {
			t.Fatal(err)
		}
		m.waitStable(t, root, 2*time.Minute)
		m.assertIssuerUnder(t, root)
	})

	t.Run("the root renewed with the same key: no hold, signing goes on, completed by restarts", func(t *testing.T) {
		if third == nil {
			t.Skip("needs the previous subtest's root")
		}
		m.testSameKeyRenewal(t, third)
	})

	t.Run("the old guide's Bundle is caught before it drops a root", func(t *testing.T) {
		const bundleCheck = "trust-manager's Bundle takes the rotation's trusted set as its only source"
		if _, out := linkerdCACheck(); !strings.Contains(out, "√ "+bundleCheck) {
			t.Errorf("linkerd-ca check with the trusted set as the Bundle's source: want %q passed:\n%s", bundleCheck, out)
		}
		trusted := meshBundle().Object["spec"].(map[string]any)["sources"].([]any)
		setBundleSources(t, map[string]any{"secret": map[string]any{"name": m.iss.Spec.TrustAnchorSecretName, "key": corev1.TLSCertKey}})
		defer setBundleSources(t, trusted...)
		// The roots still match: only the Bundle's source shows it.
		m.waitTrustRootsHold(t, m.root(t))
		code, out := linkerdCACheck()
		if code == 0 || !strings.Contains(out, "Bundle "+guide.TrustRoots+" sources Secret "+m.iss.Spec.TrustAnchorSecretName+" key tls.crt") ||
			!strings.Contains(out, "ConfigMap "+rotationTrusted) {
			t.Errorf("linkerd-ca check with the old guide's Bundle: exit %d, want a failure naming the source and the fix:\n%s", code, out)
		}
	})
}

func workloadNamespace(i int) string { return fmt.Sprintf("e2e-mesh-apps-%d", i) }

func setUpMesh(t *testing.T) *rotationMesh {
	t.Helper()
	// The mesh is this test's alone: other tests' meshed pods gone, and
	// trust-manager writing the roots from this issuer's trusted set only.
	eventually(t, 2*time.Minute, "no other test's meshed pods", func() error {
		var pods corev1.PodList
		if err := cl.List(ctx, &pods, client.MatchingLabels{localcp.ControlPlaneNSLabel: nsMesh}); err != nil {
			return err
		}
		for _, p := range pods.Items {
			if p.Namespace != nsMesh {
				return fmt.Errorf("pod %s/%s", p.Namespace, p.Name)
			}
		}
		return nil
	})
	old := guide.Bundle()
	if err := cl.Delete(ctx, old); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	_ = cl.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsMesh, Name: v1alpha1.DefaultTrustRootsConfigMap}})

	m := &rotationMesh{}
	m.restartIssuer(t)
	t.Cleanup(func() {
		cp.SetIssuerArgs()
		if cp.StopIssuer("issuer", syscall.SIGTERM) == nil {
			_ = cp.StartIssuer(ctx, "issuer")
		}
	})
	var err error
	// The watcher's informers end with the test: a watch left open keeps
	// kube-apiserver from stopping in time.
	watchCtx, stopWatching := context.WithCancel(ctx)
	t.Cleanup(stopWatching)
	if m.watcher, err = watchTrust(watchCtx, rotationLifetime); err != nil {
		t.Fatal(err)
	}
	if err := cl.Create(ctx, guide.SelfSignedRootIssuer()); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	create(t, guide.TrustAnchorCertificate(rotationRoot))
	waitCertificateReady(t, nsCluster, rotationRoot, 60*time.Second)
	m.iss = guide.ClusterIssuer(rotationRoot, nsMesh)
	m.iss.Name, m.iss.Spec.Rotation.TrustedRootsConfigMapName = rotationIssuer, rotationTrusted
	create(t, m.iss)
	create(t, meshBundle())
	root := m.waitStable(t, m.anchorRoot(t), 60*time.Second).SigningRoot
	m.waitTrustRootsHold(t, root)

	// Linkerd's control plane starts once its roots exist, as it must.
	for _, c := range localcp.LinkerdComponents {
		d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: nsMesh, Name: "linkerd-" + c}}
		rolloutRestart(t, d)
		m.controlPlan = append(m.controlPlan, d)
	}
	for _, d := range m.controlPlan {
		waitRolledOut(t, d)
	}
	crt := guide.IdentityIssuerCertificate(nsMesh, localcp.IdentityIssuerSecret)
	crt.Spec.IssuerRef.Name = rotationIssuer
	create(t, crt)
	waitCertificateReady(t, nsMesh, crt.Name, 60*time.Second)

	for i := range rotationNamespaces {
		namespace(t, workloadNamespace(i), map[string]string{localcp.InjectLabel: "enabled"})
	}
	for i := range rotationWorkloads {
		d := deployment(workloadNamespace(i%rotationNamespaces), fmt.Sprintf("app-%02d", i), rotationReplicas)
		create(t, d)
		m.workloads = append(m.workloads, d)
	}
	start := time.Now()
	for _, d := range m.workloads {
		waitRolledOut(t, d)
	}
	t.Logf("mesh up: %d meshed pods in %s", rotationWorkloads*rotationReplicas, time.Since(start).Round(time.Millisecond))
	m.waitStable(t, root, 60*time.Second)
	return m
}

// meshBundle is the guide's Bundle for this issuer's trusted set, into
// nsMesh alone.
func meshBundle() *unstructured.Unstructured {
	b := guide.Bundle()
	spec := b.Object["spec"].(map[string]any)
	spec["sources"] = []any{map[string]any{"configMap": map[string]any{"name": rotationTrusted, "key": v1alpha1.DefaultTrustRootsKey}}}
	spec["target"].(map[string]any)["namespaceSelector"] = map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": nsMesh}}
	return b
}

// restartIssuer restarts the issuer with the suite's leaf lifetime and extra
// flags; the suite's end restores its defaults.
func (m *rotationMesh) restartIssuer(t *testing.T, extra ...string) {
	t.Helper()
	cp.SetIssuerArgs(append([]string{"--proxy-certificate-lifetime=" + rotationLifetime.String(), "--rotation-max-concurrent-restarts=4"}, extra...)...)
	if err := cp.StopIssuer("issuer", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cp.StartIssuer(ctx, "issuer"); err != nil {
		t.Fatal(err)
	}
}

func (m *rotationMesh) status(t *testing.T) v1alpha1.RotationStatus {
	t.Helper()
	if err := cl.Get(ctx, client.ObjectKeyFromObject(m.iss), m.iss); err != nil {
		t.Fatal(err)
	}
	if st := m.iss.Status.Rotation; st != nil {
		return *st
	}
	return v1alpha1.RotationStatus{}
}

func (m *rotationMesh) root(t *testing.T) string { return m.status(t).SigningRoot }

// anchorRoot is the fingerprint of the root the issuer's anchor Secret holds.
func (m *rotationMesh) anchorRoot(t *testing.T) string {
	t.Helper()
	if err := cl.Get(ctx, client.ObjectKeyFromObject(m.iss), m.iss); err != nil {
		t.Fatal(err)
	}
	s := mustSecret(t, nsCluster, m.iss.Spec.TrustAnchorSecretName)
	return signer.Fingerprint(parsePEMCertificates(t, "anchor", s.Data[corev1.TLSCertKey])[0])
}

func (m *rotationMesh) waitPhase(t *testing.T, phase v1alpha1.RotationPhase, timeout time.Duration) v1alpha1.RotationStatus {
	t.Helper()
	var st v1alpha1.RotationStatus
	eventually(t, timeout, "rotation phase "+string(phase), func() error {
		if st = m.status(t); st.Phase != phase {
			return fmt.Errorf("phase %s: %s", st.Phase, st.Message)
		}
		return nil
	})
	return st
}

func (m *rotationMesh) waitStable(t *testing.T, root string, timeout time.Duration) v1alpha1.RotationStatus {
	t.Helper()
	var st v1alpha1.RotationStatus
	start, phase := time.Now(), v1alpha1.RotationPhase("")
	eventually(t, timeout, "the rotation Stable under "+short(root), func() error {
		st = m.status(t)
		if st.Phase != phase {
			t.Logf("%s at %s: %s", st.Phase, time.Since(start).Round(time.Millisecond), st.Message)
			phase = st.Phase
		}
		if st.Phase != v1alpha1.RotationStable || st.SigningRoot != root {
			return fmt.Errorf("phase %s under %s: %s", st.Phase, short(st.SigningRoot), st.Message)
		}
		return nil
	})
	return st
}

func (m *rotationMesh) waitEvent(t *testing.T, typ, reason string) {
	t.Helper()
	eventually(t, 30*time.Second, "event "+reason, func() error {
		var evs corev1.EventList
		if err := cl.List(ctx, &evs); err != nil {
			return err
		}
		for _, e := range evs.Items {
			if e.Reason == reason && e.Type == typ && e.InvolvedObject.Name == rotationIssuer {
				return nil
			}
		}
		return fmt.Errorf("no %s event %s on %s", typ, reason, rotationIssuer)
	})
}

// waitTrustRootsHold waits until Linkerd's trust roots hold exactly roots.
func (m *rotationMesh) waitTrustRootsHold(t *testing.T, roots ...string) {
	t.Helper()
	eventually(t, 60*time.Second, "Linkerd's trust roots holding exactly the roots expected", func() error {
		var cm corev1.ConfigMap
		if err := cl.Get(ctx, client.ObjectKey{Namespace: nsMesh, Name: v1alpha1.DefaultTrustRootsConfigMap}, &cm); err != nil {
			return err
		}
		certs, err := signer.ParseTrustBundle([]byte(cm.Data[v1alpha1.DefaultTrustRootsKey]))
		if err != nil {
			return err
		}
		var got []string
		for _, c := range certs {
			got = append(got, signer.Fingerprint(c))
		}
		slices.Sort(got)
		want := slices.Sorted(slices.Values(roots))
		if !slices.Equal(got, want) {
			return fmt.Errorf("bundle %v, want %v", got, want)
		}
		return nil
	})
}

func (m *rotationMesh) identityIssuer(t *testing.T) *x509.Certificate {
	t.Helper()
	s := mustSecret(t, nsMesh, localcp.IdentityIssuerSecret)
	return parsePEMCertificates(t, "identity issuer", s.Data[corev1.TLSCertKey])[0]
}

func (m *rotationMesh) assertIssuerUnder(t *testing.T, root string) {
	t.Helper()
	eventually(t, 30*time.Second, "the identity issuer under "+short(root), func() error {
		s, err := getSecret(t, nsMesh, localcp.IdentityIssuerSecret)
		if err != nil {
			return err
		}
		leaf := parsePEMCertificates(t, "identity issuer", s.Data[corev1.TLSCertKey])[0]
		for _, c := range parsePEMCertificates(t, "ca.crt", s.Data["ca.crt"]) {
			if signer.Fingerprint(c) == root {
				return leaf.CheckSignatureFrom(c)
			}
		}
		return fmt.Errorf("root %s not in ca.crt", short(root))
	})
}

// assertRestartedOnce: each workload's pod template names root as what it
// was restarted for, and its generation moved by one for it ("" for
// none: nothing was restarted).
func (m *rotationMesh) assertRestartedOnce(t *testing.T, root string) {
	t.Helper()
	for _, d := range append(slices.Clone(m.controlPlan), m.workloads...) {
		var got appsv1.Deployment
		if err := cl.Get(ctx, client.ObjectKeyFromObject(d), &got); err != nil {
			t.Fatal(err)
		}
		ann := got.Spec.Template.Annotations[podtrust.RestartedForAnnotation]
		switch {
		case root == "" && got.Generation != d.Generation:
			t.Errorf("%s/%s: generation %d, was %d: restarted with restarts off", got.Namespace, got.Name, got.Generation, d.Generation)
		case root != "" && (ann != root || got.Generation != d.Generation+1):
			t.Errorf("%s/%s: restarted for %q, generation %d (was %d); want one restart for %s", got.Namespace, got.Name, short(ann), got.Generation, d.Generation, short(root))
		}
		d.Generation = got.Generation
	}
}

func (m *rotationMesh) assertInvariants(t *testing.T) {
	violations, checks := m.watcher.report()
	t.Logf("the watcher checked the invariants on %d changes", checks)
	for _, v := range violations {
		t.Errorf("invariant broken: %s", v)
	}
}

// meshedPod creates a bare pod in an injected namespace: nothing re-creates
// it, so no restart gives it a new root.
func meshedPod(t *testing.T, ns, name string) string {
	t.Helper()
	create(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}})
	return waitBarePod(t, ns, name)
}

// waitBarePod waits for a pod to run on kwok's nodes and is its key.
func waitBarePod(t *testing.T, ns, name string) string {
	t.Helper()
	eventually(t, 30*time.Second, "pod "+ns+"/"+name+" running", func() error {
		var p corev1.Pod
		if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &p); err != nil {
			return err
		}
		if !podReady(&p) {
			return fmt.Errorf("phase %s", p.Status.Phase)
		}
		return nil
	})
	return ns + "/" + name
}

// rolloutRestart is `kubectl rollout restart`.
func rolloutRestart(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	update(t, d, func() {
		if d.Spec.Template.Annotations == nil {
			d.Spec.Template.Annotations = map[string]string{}
		}
		d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] = time.Now().Format(time.RFC3339Nano)
	})
}

func linkerdCACheck() (int, string) { return linkerdCA("check") }

// linkerdCA runs the CLI against the mesh's control plane namespace.
func linkerdCA(args ...string) (int, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, append(args, "--kubeconfig", cp.AdminKubeconfig, "-L", nsMesh), &out, &errOut)
	return code, out.String() + errOut.String()
}

// issuerWrites is the issuer process's API writes so far, by method, from
// client-go's rest_client_requests_total on its metrics endpoint.
func issuerWrites(t *testing.T) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, m := range issuerMetrics(t)["rest_client_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" && l.GetValue() != "GET" {
				out[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return out
}
