package rotator

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// ownedSet is the trusted set as another issuer, named in its annotation,
// last wrote it.
func ownedSet(owner string, pem []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "trusted",
		Annotations: map[string]string{OwnerAnnotation: owner}},
		Data: map[string]string{v1alpha1.DefaultTrustRootsKey: string(pem)}}
}

func rotationCondition(t *testing.T, h *harness) *metav1.Condition {
	t.Helper()
	iss := &v1alpha1.LinkerdCAIssuer{}
	if err := h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "linkerd"}, iss); err != nil {
		t.Fatal(err)
	}
	return meta.FindStatusCondition(iss.Status.Conditions, v1alpha1.ConditionRotation)
}

func TestTrustedSetOfALiveIssuerIsRefused(t *testing.T) {
	a := anchor(t)
	other := issuer("anchor")
	other.Name = "other"
	h := newHarness(t, rotation.Config{}, issuer("anchor"), other, secret("anchor", a),
		ownedSet(v1alpha1.IssuerKind+"/"+ns+"/other", a.CertPEM))
	h.reconcile()
	c := rotationCondition(t, h)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "TrustedSetConflict" || !strings.Contains(c.Message, "other") {
		t.Fatalf("condition %+v; want TrustedSetConflict naming the other issuer", c)
	}
	var cm corev1.ConfigMap
	_ = h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "trusted"}, &cm)
	if cm.Annotations[OwnerAnnotation] != v1alpha1.IssuerKind+"/"+ns+"/other" {
		t.Errorf("the refused issuer wrote the set: owner %q", cm.Annotations[OwnerAnnotation])
	}
}

// A set outlives its issuer on purpose; once that issuer is gone for good,
// another one takes it over rather than waiting forever.
func TestTrustedSetOfAGoneIssuerIsTakenOver(t *testing.T) {
	a := anchor(t)
	h := newHarness(t, rotation.Config{}, issuer("anchor"), secret("anchor", a),
		ownedSet(v1alpha1.IssuerKind+"/"+ns+"/deleted", a.CertPEM))
	h.reconcile()
	st := h.issuer().Status.Rotation
	if st.Phase != v1alpha1.RotationStable || st.SigningRoot != fp(a) {
		t.Errorf("status %+v; want Stable under the anchor", st)
	}
	var cm corev1.ConfigMap
	_ = h.c.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: "trusted"}, &cm)
	if cm.Annotations[OwnerAnnotation] != ownerName(issuer("anchor")) {
		t.Errorf("owner %q; want this issuer", cm.Annotations[OwnerAnnotation])
	}
}

func TestUnwatchedControlPlaneIsRefused(t *testing.T) {
	a := anchor(t)
	h := newHarness(t, rotation.Config{}, issuer("anchor"), secret("anchor", a))
	h.r.Signer.WatchNamespaces = []string{"cert-manager"}
	h.reconcile()
	c := rotationCondition(t, h)
	if c == nil || c.Reason != "ControlPlaneNotWatched" || !strings.Contains(c.Message, "--watch-namespaces") {
		t.Fatalf("condition %+v; want ControlPlaneNotWatched naming the flag", c)
	}
}

// The anchor Secret renewed in place with the same key (cert-manager's
// rotationPolicy Never): no hold, the key recorded for the signer, the
// deadline the old copy's expiry.
func TestSameKeyRenewalPropagatesWithoutAHold(t *testing.T) {
	old := anchor(t)
	renewed, err := old.Renewed(start, start.Add(2*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	crt, idSecret := identityIssuer(t, old, start.Add(40*time.Hour))
	anchorSecret := secret("anchor", old)
	h := newHarness(t, rotation.Config{}, issuer("anchor"), anchorSecret, linkerdRoots(old), meshedPod("bare", "", old), crt, idSecret)
	h.reconcile()
	h.update(anchorSecret, func() { anchorSecret.Data = secret("anchor", renewed).Data })
	h.reconcile()
	st := h.issuer().Status.Rotation
	if st.Phase != v1alpha1.RotationPropagating || st.SigningRoot != fp(old) || st.NextRoot != fp(renewed) || st.SigningRootKey != signer.RootKey(old.Certificate) {
		t.Fatalf("status %+v; want Propagating under the old copy with its key recorded, the renewed copy next", st)
	}
	if st.Deadline == nil || !st.Deadline.Time.Equal(old.Certificate.NotAfter) {
		t.Errorf("deadline %v; want the old copy's expiry %s", st.Deadline, old.Certificate.NotAfter)
	}
}

// Both copies of a root renewed with the same key verify the identity
// issuer: it is read as under the root signed under, else the anchor, never
// at random.
func TestIdentityIssuerUnderACopiedRootIsReadAsTheRootInUse(t *testing.T) {
	old := anchor(t)
	renewed, err := old.Renewed(start, start.Add(2*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	_, s := identityIssuer(t, old, start.Add(40*time.Hour))
	leaf, err := x509.ParseCertificate(mustDER(t, s.Data[corev1.TLSCertKey]))
	if err != nil {
		t.Fatal(err)
	}
	o := &observed{certs: map[string]*x509.Certificate{fp(old): old.Certificate, fp(renewed): renewed.Certificate}}
	for range 20 {
		o.Prev, o.Anchor = &v1alpha1.RotationStatus{SigningRoot: fp(old)}, fp(renewed)
		if got := issuingRoot(leaf, o); got != fp(old) {
			t.Fatalf("with the old copy signed under: %s, want it", got)
		}
		o.Prev = nil
		if got := issuingRoot(leaf, o); got != fp(renewed) {
			t.Fatalf("on first sight: %s, want the anchor's copy", got)
		}
	}
}

func mustDER(t *testing.T, b []byte) []byte {
	t.Helper()
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM")
	}
	return block.Bytes
}

// A Stable rotation with restarts on reads no workload: hundreds of
// Deployments are not fetched on every pod event. Once the anchor changes,
// the workloads of the pods behind are read, and only those.
func TestWorkloadsAreReadOnlyForPodsBehind(t *testing.T) {
	old, next := anchor(t), anchor(t)
	anchorSecret := secret("anchor", old)
	h := newHarness(t, rotation.Config{Restarts: true, MaxConcurrentRestarts: 2, RestartTimeout: 10 * time.Minute},
		issuer("anchor"), anchorSecret, linkerdRoots(old, next), deployment("web"), deployment("api"),
		meshedPod("web-1", "web", old), meshedPod("api-1", "api", old, next))
	h.reconcile()
	h.reconcile()
	if len(h.read) != 0 {
		t.Errorf("a Stable rotation read %v", h.read)
	}
	h.update(anchorSecret, func() { anchorSecret.Data = secret("anchor", next).Data })
	h.reconcile()
	if h.read["apps/web"] == 0 || h.read["apps/api"] != 0 {
		t.Errorf("reads %v; want web's (behind), not api's (it holds the new root)", h.read)
	}
}
