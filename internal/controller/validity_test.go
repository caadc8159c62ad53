package controller

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cmapiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

func seed48h() *cmapi.Certificate {
	crt := testpki.SeedCertificate("linkerd")
	crt.Spec.Duration = &metav1.Duration{Duration: 48 * time.Hour}
	return crt
}

// TestValidityStartsAtTheFirstSigningAttempt: a request created three days
// before it could be signed (approved late, or its issuer not Ready) gets
// its whole 48h from the first signing attempt, not a certificate that
// expired a day ago. The attempt records the start on the request, under a
// field manager of its own, before it signs.
func TestValidityStartsAtTheFirstSigningAttempt(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	cr := newRequest(t, seed48h(), now.Add(-72*time.Hour), time.Time{})
	s, _ := newSigner(t, anchorSecret("linkerd", a), cr)
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	stale := cr.DeepCopy() // what a cache that lags still shows later

	first, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	cert := decodeOne(t, first.ChainPEM)
	if !cert.NotBefore.Equal(now.Add(-signer.ClockSkew)) || !cert.NotAfter.Equal(now.Add(48*time.Hour)) {
		t.Errorf("valid %s to %s, want %s to %s", cert.NotBefore, cert.NotAfter, now.Add(-signer.ClockSkew), now.Add(48*time.Hour))
	}
	recorded := cr.DeepCopy()
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(cr), recorded); err != nil {
		t.Fatal(err)
	}
	c := cmapiutil.GetCertificateRequestCondition(recorded, ConditionValidityStarted)
	if c == nil || c.Status != cmmeta.ConditionTrue || c.Reason != ReasonFirstSigningAttempt || !c.LastTransitionTime.Time.Equal(now) {
		t.Fatalf("recorded %+v, want %s=True (%s) at %s", c, ConditionValidityStarted, ReasonFirstSigningAttempt, now)
	}

	// The status write failed and the request comes back later, first as a
	// cache that lags still shows it: no second start, no second
	// certificate, only a retry.
	s.Clock = clocktesting.NewFakePassiveClock(now.Add(time.Minute))
	_, err = s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(stale), issuer("linkerd"))
	if !errors.As(err, &issuersigner.PendingError{}) {
		t.Fatalf("a stale request: got %T %v, want a PendingError", err, err)
	}
	again, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(recorded), issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ChainPEM, first.ChainPEM) {
		t.Error("signed again from the recorded start, the request got another certificate")
	}
}

// TestAPolicyRefusalNeedsNoValidityStart: a request the policy refuses
// fails at once, without a round trip to record a start.
func TestAPolicyRefusalNeedsNoValidityStart(t *testing.T) {
	s, _ := newSigner(t, anchorSecret("linkerd", newAnchor(t, now.Add(365*24*time.Hour))))
	crt := seed48h()
	crt.Spec.IsCA = false
	_, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(newRequest(t, crt, now, time.Time{})), issuer("linkerd"))
	if !errors.As(err, &issuersigner.PermanentError{}) || !strings.HasPrefix(err.Error(), "isCA:") {
		t.Fatalf("got %T %v, want the isCA refusal", err, err)
	}
}

// TestAStartTooLongAgoIsRefused: a recorded start that leaves less than
// minDuration (1h by default) is refused for good, not issued nearly or
// already expired.
func TestAStartTooLongAgoIsRefused(t *testing.T) {
	s, _ := newSigner(t, anchorSecret("linkerd", newAnchor(t, now.Add(365*24*time.Hour))))
	for ago, want := range map[time.Duration]string{
		47*time.Hour + 30*time.Minute: "validity: the certificate would be valid for 30m0s more (until 2026-11-29T12:30:00Z), less than this issuer's minimum 1h0m0s (spec.minDuration): its validity started at 2026-11-27T12:30:00Z, 47h30m0s ago.",
		// The anchor (valid from an hour ago) is younger than the start.
		72 * time.Hour: "validity: the certificate would end (2026-11-28T12:00:00Z, the validity start 2026-11-26T12:00:00Z + 48h0m0s) at or before it begins (2026-11-29T11:00:00Z, the trust anchor's NotBefore)",
	} {
		cr := newRequest(t, seed48h(), now.Add(-ago), now.Add(-ago))
		_, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), issuer("linkerd"))
		if !errors.As(err, &issuersigner.PermanentError{}) || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("started %s ago: got %T %v\nwant a refusal starting %s", ago, err, err, want)
		}
	}
}

// TestValidityStartOnAKubernetesCSR: a CertificateSigningRequest gets its
// start recorded the same way, on its status.
func TestValidityStartOnAKubernetesCSR(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	csr := csrFrom(t, "system:serviceaccount:linkerd:bootstrap").(runtime.Object).DeepCopyObject().(*certificatesv1.CertificateSigningRequest)
	csr.Status.Conditions = nil
	s, _ := newSigner(t, anchorSecret("linkerd-ca-issuer", a), csr)
	s.CSRRequesters = []string{"system:serviceaccount:linkerd:bootstrap"}
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(csr), csr); err != nil {
		t.Fatal(err)
	}
	bundle, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateSigningRequest(csr), clusterIssuer())
	if err != nil {
		t.Fatal(err)
	}
	if nb := decodeOne(t, bundle.ChainPEM).NotBefore; !nb.Equal(now.Add(-signer.ClockSkew)) {
		t.Errorf("NotBefore %s", nb)
	}
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(csr), csr); err != nil {
		t.Fatal(err)
	}
	start, ok := validityStart(issuersigner.CertificateRequestObjectFromCertificateSigningRequest(csr))
	if !ok || !start.Equal(now) {
		t.Errorf("recorded start %s (%v), want %s", start, ok, now)
	}
}

// TestARecordedStartIsTakenOnlyFromTheIssuer: a start post-dated by
// whoever may patch the request's status (an approver, approver-policy) is
// refused for good, as is one written by another field manager or before
// the request existed; the issuer's own start, minutes in, is taken.
func TestARecordedStartIsTakenOnlyFromTheIssuer(t *testing.T) {
	s, _ := newSigner(t, anchorSecret("linkerd", newAnchor(t, now.Add(365*24*time.Hour))))
	entry := func(manager string) metav1.ManagedFieldsEntry {
		raw := `{"f:status":{"f:conditions":{"k:{\"type\":\"` + ConditionValidityStarted + `\"}":{".":{},"f:lastTransitionTime":{}}}}}`
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, Subresource: "status",
			FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(raw)}
	}
	for _, tc := range []struct {
		name           string
		created, start time.Time
		managers       []string
		want           string // "" signs
	}{
		{"the issuer's own, minutes in", now.Add(-10 * time.Minute), now.Add(-5 * time.Minute), []string{validityFieldOwner}, ""},
		{"post-dated a year", now.Add(-10 * time.Minute), now.Add(365 * 24 * time.Hour), []string{validityFieldOwner}, "outside the request's life"},
		{"before the request existed", now.Add(-10 * time.Minute), now.Add(-time.Hour), []string{validityFieldOwner}, "outside the request's life"},
		{"rewritten by an approver", now.Add(-10 * time.Minute), now.Add(-5 * time.Minute), []string{validityFieldOwner, "approver-policy"}, `written by "approver-policy"`},
		{"written by another manager alone", now.Add(-10 * time.Minute), now.Add(-5 * time.Minute), []string{"kubectl-edit"}, `written by "kubectl-edit"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cr := newRequest(t, seed48h(), tc.created, tc.start)
			for _, m := range tc.managers {
				cr.ManagedFields = append(cr.ManagedFields, entry(m))
			}
			bundle, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), issuer("linkerd"))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !errors.As(err, &issuersigner.PermanentError{}) || !strings.Contains(err.Error(), tc.want) || len(bundle.ChainPEM) > 0):
				t.Errorf("got %d bytes, %v; want nothing signed and a permanent refusal saying %q", len(bundle.ChainPEM), err, tc.want)
			}
		})
	}
}

func TestTheCacheKeepsOnlyTheValidityWriters(t *testing.T) {
	ours := metav1.ManagedFieldsEntry{Manager: validityFieldOwner, FieldsV1: metav1.NewFieldsV1(`{"f:status":{"f:conditions":{"k:{\"type\":\"ValidityStarted\"}":{}}}}`)}
	other := metav1.ManagedFieldsEntry{Manager: "cert-manager", FieldsV1: metav1.NewFieldsV1(`{"f:spec":{"f:request":{}}}`)}
	if got := keepValidityWriters([]metav1.ManagedFieldsEntry{other, ours}); len(got) != 1 || got[0].Manager != validityFieldOwner {
		t.Errorf("kept %+v; want the ValidityStarted writer alone", got)
	}
}

// TestTheStartHoldsWhenTheIssuerTurnsReadyAgain: a request signed as its
// issuer was Ready, whose status write was lost, is signed again after the
// issuer turned not Ready and Ready again (its anchor Secret deleted and
// restored): the same certificate, since its start was recorded at the
// first attempt. A start taken from the request's creation whenever the
// issuer's Ready time preceded it was lost that way: the second signing saw
// the later Ready time and recorded a start of its own (the fault suite
// caught it, 3 requests in 300).
func TestTheStartHoldsWhenTheIssuerTurnsReadyAgain(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	cr := newRequest(t, seed48h(), now.Add(-3*time.Second), time.Time{})
	s, _ := newSigner(t, anchorSecret("linkerd", a), cr)
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	iss := issuer("linkerd")
	ready := func(since time.Time) {
		iss.Status.Conditions = []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, Reason: "Checked", LastTransitionTime: metav1.NewTime(since)}}
	}
	ready(now.Add(-time.Hour))
	first, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), iss)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Client.Get(context.Background(), client.ObjectKeyFromObject(cr), cr); err != nil {
		t.Fatal(err)
	}
	s.Clock = clocktesting.NewFakePassiveClock(now.Add(20 * time.Second))
	ready(now.Add(10 * time.Second))
	again, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), iss)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again.ChainPEM, first.ChainPEM) {
		t.Errorf("signed again after the issuer turned Ready again: valid from %s, first from %s; want the same certificate",
			decodeOne(t, again.ChainPEM).NotBefore, decodeOne(t, first.ChainPEM).NotBefore)
	}
}
