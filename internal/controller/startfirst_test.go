package controller

import (
	"bytes"
	"context"
	"testing"
	"time"

	cmapiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuerlibapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

var issuerGVK = v1alpha1.GroupVersion.WithKind(v1alpha1.IssuerKind)

func readyIssuer(generation, observed int64, status metav1.ConditionStatus) *v1alpha1.LinkerdCAIssuer {
	iss := issuer("linkerd")
	iss.Generation = generation
	iss.Status.Conditions = []metav1.Condition{{Type: issuerlibapi.IssuerConditionTypeReady, Status: status, Reason: "Checked",
		ObservedGeneration: observed, LastTransitionTime: metav1.NewTime(now.Add(-time.Hour))}}
	return iss
}

// startFirst runs the hook on what the cache holds of cr, and says whether
// it ended the reconcile and whether it wrote.
func startFirst(t *testing.T, s *Signer, cr *cmapi.CertificateRequest) (ignored, wrote bool, err error) {
	t.Helper()
	ctx := context.Background()
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	before := cr.ResourceVersion
	ignored, err = s.StartBeforeInitializing(ctx, issuersigner.CertificateRequestObjectFromCertificateRequest(cr), issuerGVK,
		types.NamespacedName{Namespace: "linkerd", Name: "linkerd"})
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	return ignored, cr.ResourceVersion != before, err
}

// TestTheFirstReconcileRecordsTheStartWithTheReadyCondition: a request seen
// for the first time while its issuer is Ready gets, in one write, its
// validity start and the Initializing Ready condition issuer-lib would
// otherwise have spent a write of its own on; signing it then writes
// nothing more, and yields a certificate from that start.
func TestTheFirstReconcileRecordsTheStartWithTheReadyCondition(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	cr := newRequest(t, seed48h(), now.Add(-3*time.Second), time.Time{})
	iss := readyIssuer(2, 2, metav1.ConditionTrue)
	s, _ := newSigner(t, anchorSecret("linkerd", a), cr, iss)

	ignored, wrote, err := startFirst(t, s, cr)
	if err != nil || !ignored || !wrote {
		t.Fatalf("first reconcile: ignored %v, wrote %v, err %v; want the start recorded and the reconcile ended", ignored, wrote, err)
	}
	start := cmapiutil.GetCertificateRequestCondition(cr, ConditionValidityStarted)
	if start == nil || start.Status != cmmeta.ConditionTrue || !start.LastTransitionTime.Time.Equal(now) {
		t.Fatalf("start %+v, want True at %s", start, now)
	}
	ready := cmapiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
	if ready == nil || ready.Status != cmmeta.ConditionUnknown || ready.Reason != issuerlibapi.CertificateRequestConditionReasonInitializing {
		t.Fatalf("Ready %+v, want Unknown (%s), which makes issuer-lib sign in the next reconcile", ready, issuerlibapi.CertificateRequestConditionReasonInitializing)
	}

	// The write's update event brings it back: no second write, and
	// issuer-lib goes on to Sign.
	s.Clock = clocktesting.NewFakePassiveClock(now.Add(5 * time.Second))
	if ignored, wrote, err := startFirst(t, s, cr); ignored || wrote || err != nil {
		t.Fatalf("second reconcile: ignored %v, wrote %v, err %v; want neither", ignored, wrote, err)
	}
	rv := cr.ResourceVersion
	first, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), iss)
	if err != nil {
		t.Fatal(err)
	}
	if nb := decodeOne(t, first.ChainPEM).NotBefore; !nb.Equal(now.Add(-signer.ClockSkew)) {
		t.Errorf("NotBefore %s, want the recorded start %s less the clock skew", nb, now)
	}
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	if cr.ResourceVersion != rv {
		t.Error("Sign wrote to a request whose start was already recorded")
	}
	// Signed again (issuer-lib's status write lost): the same certificate.
	s.Clock = clocktesting.NewFakePassiveClock(now.Add(time.Minute))
	again, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), iss)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ChainPEM, first.ChainPEM) {
		t.Error("signed again, the request got another certificate")
	}
}

// TestTheFirstReconcileLeavesTheRestToIssuerLib: nothing is written, and
// issuer-lib's own way goes on, for a request whose issuer is not Ready
// (its start is then recorded when it can be signed, so a request that
// waited still gets its whole duration), that the policy refuses, or that
// issuer-lib has already initialized.
func TestTheFirstReconcileLeavesTheRestToIssuerLib(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	notCA := seed48h()
	notCA.Spec.IsCA = false
	initialized := newRequest(t, seed48h(), now.Add(-3*time.Second), time.Time{})
	initialized.Status.Conditions = []cmapi.CertificateRequestCondition{{Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionFalse, Reason: "Pending"}}
	for name, tc := range map[string]struct {
		iss *v1alpha1.LinkerdCAIssuer
		cr  *cmapi.CertificateRequest
	}{
		"issuer not Ready":                 {readyIssuer(1, 1, metav1.ConditionFalse), newRequest(t, seed48h(), now, time.Time{})},
		"issuer Ready for an older spec":   {readyIssuer(3, 2, metav1.ConditionTrue), newRequest(t, seed48h(), now, time.Time{})},
		"issuer without a Ready condition": {issuer("linkerd"), newRequest(t, seed48h(), now, time.Time{})},
		"refused by the policy":            {readyIssuer(1, 1, metav1.ConditionTrue), newRequest(t, notCA, now, time.Time{})},
		"already initialized":              {readyIssuer(1, 1, metav1.ConditionTrue), initialized},
		"start already recorded":           {readyIssuer(1, 1, metav1.ConditionTrue), newRequest(t, seed48h(), now, now)},
	} {
		t.Run(name, func(t *testing.T) {
			s, _ := newSigner(t, anchorSecret("linkerd", a), tc.cr, tc.iss)
			if ignored, wrote, err := startFirst(t, s, tc.cr); ignored || wrote || err != nil {
				t.Errorf("ignored %v, wrote %v, err %v; want issuer-lib's way, untouched", ignored, wrote, err)
			}
		})
	}
	t.Run("issuer deleted", func(t *testing.T) {
		cr := newRequest(t, seed48h(), now, time.Time{})
		s, _ := newSigner(t, anchorSecret("linkerd", a), cr)
		if ignored, wrote, err := startFirst(t, s, cr); ignored || wrote || err != nil {
			t.Errorf("ignored %v, wrote %v, err %v; want issuer-lib's way (it waits for the issuer)", ignored, wrote, err)
		}
	})
}

// TestTheFirstReconcileOnAStaleRequestWritesNothing: a request read from a
// cache that lags (issuer-lib may have initialized it meanwhile) gets no
// write and is read again after a backoff.
func TestTheFirstReconcileOnAStaleRequestWritesNothing(t *testing.T) {
	cr := newRequest(t, seed48h(), now, time.Time{})
	s, _ := newSigner(t, anchorSecret("linkerd", newAnchor(t, now.Add(365*24*time.Hour))), cr, readyIssuer(1, 1, metav1.ConditionTrue))
	ctx := context.Background()
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	stale := cr.DeepCopy()
	cr.Annotations = map[string]string{"moved": "on"}
	if err := s.Client.Update(ctx, cr); err != nil {
		t.Fatal(err)
	}
	ignored, err := s.StartBeforeInitializing(ctx, issuersigner.CertificateRequestObjectFromCertificateRequest(stale), issuerGVK,
		types.NamespacedName{Namespace: "linkerd", Name: "linkerd"})
	if err == nil || ignored {
		t.Fatalf("ignored %v, err %v; want an error (issuer-lib retries with backoff)", ignored, err)
	}
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	if len(cr.Status.Conditions) != 0 {
		t.Errorf("a stale request got conditions %+v", cr.Status.Conditions)
	}
}

// TestTheFirstReconcileIgnoresKubernetesCSRs: issuer-lib writes no
// Initializing condition on a CSR, so there is no write to share; Sign
// records the start.
func TestTheFirstReconcileIgnoresKubernetesCSRs(t *testing.T) {
	s, _ := newSigner(t, readyIssuer(1, 1, metav1.ConditionTrue))
	csr := csrFrom(t, "system:serviceaccount:linkerd:bootstrap")
	if _, ok := csr.(runtime.Object); !ok {
		t.Fatal("not an API object")
	}
	ignored, err := s.StartBeforeInitializing(context.Background(), csr, issuerGVK, types.NamespacedName{Namespace: "linkerd", Name: "linkerd"})
	if ignored || err != nil {
		t.Errorf("ignored %v, err %v; want issuer-lib's way", ignored, err)
	}
}
