package rotator

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/controller"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// These tests run the Reconciler against controller-runtime's fake client:
// what it reads and writes for the decisions internal/rotation makes.

const ns = "linkerd"

var start = time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)

type harness struct {
	t       *testing.T
	c       client.Client
	r       *Reconciler
	clock   *clocktesting.FakePassiveClock
	events  *events.FakeRecorder
	patched map[string]int
	// read counts the Deployments read, by namespace/name.
	read map[string]int
}

func newHarness(t *testing.T, cfg rotation.Config, objs ...client.Object) *harness {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	h := &harness{t: t, clock: clocktesting.NewFakePassiveClock(start), events: events.NewFakeRecorder(20), patched: map[string]int{}, read: map[string]int{}}
	h.c = fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.LinkerdCAIssuer{}, &cmapi.Certificate{}).
		// The API server indexes events by involvedObject.name; the fake
		// client needs it said.
		WithIndex(&corev1.Event{}, "involvedObject.name", func(o client.Object) []string {
			return []string{o.(*corev1.Event).InvolvedObject.Name}
		}).
		WithInterceptorFuncs(interceptor.Funcs{Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, opts ...client.PatchOption) error {
			h.patched[obj.GetNamespace()+"/"+obj.GetName()]++
			return c.Patch(ctx, obj, p, opts...)
		}, Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			if _, ok := obj.(*appsv1.Deployment); ok {
				h.read[key.String()]++
			}
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
	h.r = &Reconciler{Kind: &v1alpha1.LinkerdCAIssuer{}, Client: h.c, APIReader: h.c, Signer: &controller.Signer{},
		Recorder: h.events, Clock: h.clock, Config: cfg}
	return h
}

func (h *harness) reconcile() ctrl.Result {
	h.t.Helper()
	res, err := h.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Namespace: ns, Name: "linkerd"}})
	if err != nil {
		h.t.Fatalf("Reconcile: %v", err)
	}
	return res
}

func (h *harness) issuer() *v1alpha1.LinkerdCAIssuer {
	h.t.Helper()
	iss := &v1alpha1.LinkerdCAIssuer{}
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "linkerd"}, iss); err != nil {
		h.t.Fatal(err)
	}
	if iss.Status.Rotation == nil {
		h.t.Fatal("no status.rotation written")
	}
	return iss
}

func (h *harness) trusted() string {
	h.t.Helper()
	var cm corev1.ConfigMap
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "trusted"}, &cm); err != nil {
		h.t.Fatal(err)
	}
	return cm.Data[v1alpha1.DefaultTrustRootsKey]
}

func (h *harness) update(obj client.Object, mutate func()) {
	h.t.Helper()
	if err := h.c.Get(context.Background(), client.ObjectKeyFromObject(obj), obj); err != nil {
		h.t.Fatal(err)
	}
	mutate()
	if err := h.c.Update(context.Background(), obj); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) nextEvent() string {
	select {
	case e := <-h.events.Events:
		return e
	default:
		return ""
	}
}

func anchor(t *testing.T) *testpki.Anchor {
	t.Helper()
	a, err := testpki.NewAnchor(start.Add(-time.Hour), start.Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func fp(a *testpki.Anchor) string { return signer.Fingerprint(a.Certificate) }

func secret(name string, a *testpki.Anchor) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: a.CertPEM, corev1.TLSPrivateKeyKey: a.KeyPEM}}
}

func issuer(anchorSecret string) *v1alpha1.LinkerdCAIssuer {
	return &v1alpha1.LinkerdCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd", Generation: 1},
		Spec: v1alpha1.IssuerSpec{TrustAnchorSecretName: anchorSecret, ControlPlaneNamespace: ns,
			Rotation: &v1alpha1.RotationSpec{TrustedRootsConfigMapName: "trusted"}}}
}

// linkerdRoots is Linkerd's trust roots ConfigMap, as trust-manager writes it.
func linkerdRoots(anchors ...*testpki.Anchor) *corev1.ConfigMap {
	var b []byte
	for _, a := range anchors {
		b = append(b, a.CertPEM...)
	}
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.DefaultTrustRootsConfigMap},
		Data: map[string]string{v1alpha1.DefaultTrustRootsKey: string(b)}}
}

// meshedPod is a pod as Linkerd's injector leaves it, holding roots inline;
// of Deployment deploy, or bare when deploy is "".
func meshedPod(name, deploy string, roots ...*testpki.Anchor) *corev1.Pod {
	var env []byte
	for _, a := range roots {
		env = append(env, a.CertPEM...)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name, Labels: map[string]string{podtrust.ControlPlaneNSLabel: ns}},
		Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: podtrust.ProxyContainer, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			Env: []corev1.EnvVar{{Name: podtrust.TrustAnchorsEnv, Value: string(env) + "\n"}}}}},
		Status: corev1.PodStatus{StartTime: &metav1.Time{Time: start.Add(-time.Hour)}},
	}
	if deploy != "" {
		p.Labels["pod-template-hash"] = "abc"
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: deploy + "-abc", UID: "rs", Controller: ptr.To(true)}}
	}
	return p
}

func deployment(name string) *appsv1.Deployment {
	return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: name}}
}

// identityIssuer is the Certificate this issuer signs and its Secret, with
// a certificate under root expiring at notAfter.
func identityIssuer(t *testing.T, root *testpki.Anchor, notAfter time.Time) (*cmapi.Certificate, *corev1.Secret) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "identity.linkerd.cluster.local"},
		NotBefore: start.Add(-time.Hour), NotAfter: notAfter, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root.Certificate, key.Public(), root.Key)
	if err != nil {
		t.Fatal(err)
	}
	crt := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-identity-issuer", Generation: 1},
		Spec: cmapi.CertificateSpec{SecretName: "linkerd-identity-issuer",
			IssuerRef: cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "linkerd"}}}
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-identity-issuer"},
		Data: map[string][]byte{corev1.TLSCertKey: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}}
	return crt, s
}

func TestFirstSightTrustsTheAnchorCertificateOnly(t *testing.T) {
	a := anchor(t)
	h := newHarness(t, rotation.Config{}, issuer("anchor"), secret("anchor", a))
	if res := h.reconcile(); res.RequeueAfter != 0 {
		t.Errorf("a Stable rotation requeues after %s; want only on changes", res.RequeueAfter)
	}
	if got := h.trusted(); got != string(a.CertPEM) {
		t.Errorf("trusted set:\n%s\nwant the anchor's certificate alone", got)
	}
	var cm corev1.ConfigMap
	_ = h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "trusted"}, &cm)
	// The set must outlive its issuer: a reinstall that deletes the
	// issuer mid-rotation must find the old root still trusted.
	if len(cm.OwnerReferences) != 0 || cm.Annotations[OwnerAnnotation] != v1alpha1.IssuerKind+"/"+ns+"/linkerd" {
		t.Errorf("trusted set owners %+v, annotations %v; want no owner reference and the issuer named in %s", cm.OwnerReferences, cm.Annotations, OwnerAnnotation)
	}
	iss := h.issuer()
	st := iss.Status.Rotation
	if st.Phase != v1alpha1.RotationStable || st.SigningRoot != fp(a) || st.SigningSecretName != "anchor" {
		t.Errorf("status %+v; want Stable, signing under the anchor of Secret anchor", st)
	}
	if c := meta.FindStatusCondition(iss.Status.Conditions, v1alpha1.ConditionRotation); c == nil || c.Status != metav1.ConditionTrue || c.ObservedGeneration != 1 {
		t.Errorf("condition %s = %+v; want True for generation 1", v1alpha1.ConditionRotation, c)
	}
}

func TestOverwrittenAnchorHoldsAndKeepsTheOldRoot(t *testing.T) {
	old, next := anchor(t), anchor(t)
	crt, idSecret := identityIssuer(t, old, start.Add(40*time.Hour))
	anchorSecret := secret("anchor", old)
	h := newHarness(t, rotation.Config{Restarts: true, MaxConcurrentRestarts: 2},
		issuer("anchor"), anchorSecret, linkerdRoots(old), meshedPod("bare", "", old), crt, idSecret)
	h.reconcile()
	for h.nextEvent() != "" {
	}

	h.update(anchorSecret, func() { anchorSecret.Data = secret("anchor", next).Data })
	h.reconcile()
	if got, want := h.trusted(), string(old.CertPEM)+string(next.CertPEM); got != want {
		t.Errorf("trusted set after the overwrite:\n%s\nwant the old root, then the new", got)
	}
	st := h.issuer().Status.Rotation
	if st.Phase != v1alpha1.RotationHeld || st.SigningRoot != fp(old) || st.NextRoot != fp(next) {
		t.Errorf("phase %s signing %s next %s; want Held, signing under the old root, the new one next", st.Phase, st.SigningRoot, st.NextRoot)
	}
	if st.PodsBehind != 1 || len(st.Unrestartable) != 1 || st.Unrestartable[0] != "apps/bare" {
		t.Errorf("behind %d, unrestartable %v; want the bare pod named", st.PodsBehind, st.Unrestartable)
	}
	if st.Deadline == nil || !st.Deadline.Time.Equal(start.Add(40*time.Hour)) {
		t.Errorf("deadline %v; want the identity issuer's expiry %s", st.Deadline, start.Add(40*time.Hour))
	}
	if e := h.nextEvent(); !strings.HasPrefix(e, "Warning RotationHeld") {
		t.Errorf("event %q; want a Warning RotationHeld", e)
	}
	// Held re-issues nothing: the identity issuer in place is the mesh's.
	_ = h.c.Get(context.Background(), client.ObjectKeyFromObject(crt), crt)
	if len(crt.Status.Conditions) != 0 {
		t.Errorf("the identity issuer Certificate was touched while held: %+v", crt.Status.Conditions)
	}
}

func TestPropagatedRootSwitchesAndReissues(t *testing.T) {
	old, next := anchor(t), anchor(t)
	crt, idSecret := identityIssuer(t, old, start.Add(40*time.Hour))
	iss := issuer("anchor")
	h := newHarness(t, rotation.Config{}, iss, secret("anchor", old), secret("anchor-next", next),
		linkerdRoots(old, next), meshedPod("web-1", "web", old, next), crt, idSecret)
	h.reconcile()

	h.update(iss, func() { iss.Spec.TrustAnchorSecretName = "anchor-next" })
	h.reconcile()
	st := h.issuer().Status.Rotation
	if st.Phase != v1alpha1.RotationSwitching || st.SigningRoot != fp(next) || st.SigningSecretName != "anchor-next" {
		t.Fatalf("status %+v; want Switching to the new root of Secret anchor-next", st)
	}
	if len(st.RetiringRoots) != 1 || st.RetiringRoots[0].Fingerprint != fp(old) {
		t.Errorf("retiring %+v; want the old root", st.RetiringRoots)
	}
	if got := h.trusted(); !strings.Contains(got, string(old.CertPEM)) || !strings.Contains(got, string(next.CertPEM)) {
		t.Errorf("trusted set on the switch does not hold both roots:\n%s", got)
	}
	_ = h.c.Get(context.Background(), client.ObjectKeyFromObject(crt), crt)
	if len(crt.Status.Conditions) != 1 || crt.Status.Conditions[0].Type != cmapi.CertificateConditionIssuing ||
		crt.Status.Conditions[0].Status != cmmeta.ConditionTrue || crt.Status.Conditions[0].Reason != "ManuallyTriggered" {
		t.Errorf("identity issuer Certificate conditions %+v; want Issuing=True ManuallyTriggered, as cmctl renew", crt.Status.Conditions)
	}
}

func TestRestartsEachWorkloadOnceCanaryFirst(t *testing.T) {
	old, next := anchor(t), anchor(t)
	iss := issuer("anchor")
	h := newHarness(t, rotation.Config{Restarts: true, MaxConcurrentRestarts: 2}, iss, secret("anchor", old), secret("anchor-next", next),
		linkerdRoots(old, next), meshedPod("api-1", "api", old), meshedPod("web-1", "web", old), meshedPod("db-1", "db", old),
		deployment("api"), deployment("web"), deployment("db"))
	h.reconcile()
	h.update(iss, func() { iss.Spec.TrustAnchorSecretName = "anchor-next" })
	if res := h.reconcile(); len(h.patched) != 0 || res.RequeueAfter == 0 {
		t.Fatalf("restarted %v at once (requeue %s); want a settle before the first restart", h.patched, res.RequeueAfter)
	}

	h.clock.SetTime(start.Add(5 * time.Second))
	h.reconcile()
	h.reconcile()
	if len(h.patched) != 1 || h.patched["apps/api"] != 1 {
		t.Fatalf("restarts %v; want one canary (apps/api) once, however often reconciled", h.patched)
	}
	var d appsv1.Deployment
	_ = h.c.Get(context.Background(), client.ObjectKey{Namespace: "apps", Name: "api"}, &d)
	if got := d.Spec.Template.Annotations[podtrust.RestartedForAnnotation]; got != fp(next) {
		t.Errorf("api's template annotation %q = %q; want the new root", podtrust.RestartedForAnnotation, got)
	}

	// The canary's re-created pod holds the new root: the rest go, each once.
	if err := h.c.Delete(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "apps", Name: "api-1"}}); err != nil {
		t.Fatal(err)
	}
	recreated := meshedPod("api-2", "api", old, next)
	recreated.Labels["pod-template-hash"], recreated.OwnerReferences[0].Name = "def", "api-def"
	recreated.Annotations = map[string]string{podtrust.RestartedForAnnotation: fp(next)}
	if err := h.c.Create(context.Background(), recreated); err != nil {
		t.Fatal(err)
	}
	h.clock.SetTime(start.Add(10 * time.Second))
	h.reconcile()
	h.reconcile()
	if h.patched["apps/api"] != 1 || h.patched["apps/web"] != 1 || h.patched["apps/db"] != 1 {
		t.Errorf("restarts %v; want each Deployment exactly once", h.patched)
	}
}

func TestTrustedRootNowhereToBeReadIsAnErrorNotADrop(t *testing.T) {
	a, gone := anchor(t), anchor(t)
	iss := issuer("anchor")
	iss.Status.Rotation = &v1alpha1.RotationStatus{Phase: v1alpha1.RotationDraining, SigningRoot: fp(a), SigningSecretName: "anchor",
		RetiringRoots: []v1alpha1.RetiringRoot{{Fingerprint: fp(gone), Since: &metav1.Time{Time: start}}}}
	trusted := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "trusted"},
		Data: map[string]string{v1alpha1.DefaultTrustRootsKey: string(a.CertPEM)}}
	// A pod started before the switch may still hold a leaf under it.
	h := newHarness(t, rotation.Config{LeafLifetime: 24 * time.Hour}, iss, secret("anchor", a), trusted, meshedPod("web-1", "web", gone, a))
	_, err := h.r.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKeyFromObject(iss)})
	if err == nil || !strings.Contains(err.Error(), fp(gone)) || !strings.Contains(err.Error(), "restore it there") {
		t.Fatalf("Reconcile: %v; want an error naming the root to restore", err)
	}
	if got := h.trusted(); got != string(a.CertPEM) {
		t.Errorf("trusted set rewritten to:\n%s", got)
	}
}
