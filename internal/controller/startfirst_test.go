package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	cmapiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuerlibapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	"github.com/go-logr/logr/funcr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
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
	ignored, err = s.SignAtFirstSight(ctx, issuersigner.CertificateRequestObjectFromCertificateRequest(cr), issuerGVK,
		types.NamespacedName{Namespace: "linkerd", Name: "linkerd"})
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	return ignored, cr.ResourceVersion != before, err
}

func approve(cr *cmapi.CertificateRequest, at time.Time) *cmapi.CertificateRequest {
	cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
		Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "cert-manager.io", LastTransitionTime: ptr.To(metav1.NewTime(at)),
	})
	return cr
}

// TestAPromptRequestIsSignedInOneWrite: a request seen for the first time
// while its issuer is Ready, approved moments ago, is signed from its
// approval time, and its certificate, start and Ready=True are written at
// once; a retry that reads it from a cache that lags (or after the write
// was lost) signs the same certificate and writes nothing over the newer
// request.
func TestAPromptRequestIsSignedInOneWrite(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	approved := now.Add(-2 * time.Second)
	cr := approve(newRequest(t, seed48h(), now.Add(-3*time.Second), time.Time{}), approved)
	s, rec := newSigner(t, anchorSecret("linkerd", a), cr, readyIssuer(2, 2, metav1.ConditionTrue))
	sigs := map[string]int{} // the audit trail: what was signed, by fingerprint
	s.Audit = funcr.NewJSON(func(obj string) {
		var line struct{ Msg, SHA256 string }
		if json.Unmarshal([]byte(obj), &line) == nil && line.Msg == "signed" {
			sigs[line.SHA256]++
		}
	}, funcr.Options{})
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	stale := cr.DeepCopy()

	ignored, wrote, err := startFirst(t, s, cr)
	if err != nil || !ignored || !wrote {
		t.Fatalf("first sight: ignored %v, wrote %v, err %v; want it signed and the reconcile ended", ignored, wrote, err)
	}
	ready := cmapiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionReady)
	if ready == nil || ready.Status != cmmeta.ConditionTrue || ready.Reason != cmapi.CertificateRequestReasonIssued || len(cr.Status.Certificate) == 0 {
		t.Fatalf("Ready %+v, certificate %d bytes; want Issued", ready, len(cr.Status.Certificate))
	}
	if !bytes.Equal(cr.Status.CA, a.CertPEM) {
		t.Error("status.ca is not the trust anchor")
	}
	start := cmapiutil.GetCertificateRequestCondition(cr, ConditionValidityStarted)
	if start == nil || !start.LastTransitionTime.Time.Equal(approved) {
		t.Fatalf("start %+v, want the approval time %s", start, approved)
	}
	cert := decodeOne(t, cr.Status.Certificate)
	if !cert.NotBefore.Equal(approved.Add(-signer.ClockSkew)) || !cert.NotAfter.Equal(approved.Add(48*time.Hour)) {
		t.Errorf("valid %s to %s, want from the approval %s for 48h", cert.NotBefore, cert.NotAfter, approved)
	}
	assertEvents(t, rec, "Normal Issued")

	// The same request as a lagging cache still shows it: the same
	// certificate is signed, and nothing is written over the signed one.
	s.Clock = clocktesting.NewFakePassiveClock(now.Add(30 * time.Second))
	ignored, err = s.SignAtFirstSight(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(stale), issuerGVK,
		types.NamespacedName{Namespace: "linkerd", Name: "linkerd"})
	if err == nil || ignored {
		t.Fatalf("a stale request: ignored %v, err %v; want a conflict, retried after a backoff", ignored, err)
	}
	if len(sigs) != 1 {
		t.Errorf("signed %d different certificates for one request (%v), want 1", len(sigs), sigs)
	}

	// Seen again as it is now: Ready, nothing to do.
	if ignored, wrote, err := startFirst(t, s, cr); ignored || wrote || err != nil {
		t.Fatalf("a signed request: ignored %v, wrote %v, err %v; want issuer-lib's way (it skips a Ready request)", ignored, wrote, err)
	}
}

// TestALateRequestGetsItsStartWithTheReadyCondition: a request approved
// longer ago than signedPromptly (its issuer's controller was down) gets its
// start now, with issuer-lib's Initializing condition, in one write; signing
// it then writes nothing more and starts there.
func TestALateRequestGetsItsStartWithTheReadyCondition(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	cr := approve(newRequest(t, seed48h(), now.Add(-time.Hour), time.Time{}), now.Add(-time.Hour))
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
	if ready == nil || ready.Status != cmmeta.ConditionUnknown || ready.Reason != issuerlibapi.CertificateRequestConditionReasonInitializing || len(cr.Status.Certificate) != 0 {
		t.Fatalf("Ready %+v, want Unknown (%s) and no certificate yet", ready, issuerlibapi.CertificateRequestConditionReasonInitializing)
	}

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
	cr := approve(newRequest(t, seed48h(), now.Add(-time.Second), time.Time{}), now.Add(-time.Second))
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
	ignored, err := s.SignAtFirstSight(ctx, issuersigner.CertificateRequestObjectFromCertificateRequest(stale), issuerGVK,
		types.NamespacedName{Namespace: "linkerd", Name: "linkerd"})
	if err == nil || ignored {
		t.Fatalf("ignored %v, err %v; want an error (issuer-lib retries with backoff)", ignored, err)
	}
	if err := s.Client.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	if len(cr.Status.Conditions) != 1 || len(cr.Status.Certificate) != 0 {
		t.Errorf("a stale request got conditions %+v, or a certificate", cr.Status.Conditions)
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
	ignored, err := s.SignAtFirstSight(context.Background(), csr, issuerGVK, types.NamespacedName{Namespace: "linkerd", Name: "linkerd"})
	if ignored || err != nil {
		t.Errorf("ignored %v, err %v; want issuer-lib's way", ignored, err)
	}
}
