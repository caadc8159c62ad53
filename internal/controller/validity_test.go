package controller

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
// expired a day ago. The first attempt only records the start; issuer-lib
// writes it as a condition on the request and brings the request back.
func TestValidityStartsAtTheFirstSigningAttempt(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	s, _ := newSigner(t, anchorSecret("linkerd", a))
	cr := newRequest(t, seed48h(), now.Add(-72*time.Hour), time.Time{})

	_, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), issuer("linkerd"))
	var record issuersigner.SetCertificateRequestConditionError
	if !errors.As(err, &record) || !errors.As(err, &issuersigner.PendingError{}) {
		t.Fatalf("first attempt: got %T %v, want a pending SetCertificateRequestConditionError", err, err)
	}
	if record.ConditionType != ConditionValidityStarted || record.Status != cmmeta.ConditionTrue || record.Reason != ReasonFirstSigningAttempt {
		t.Fatalf("first attempt records %s=%s (%s), want %s=True (%s)", record.ConditionType, record.Status, record.Reason, ConditionValidityStarted, ReasonFirstSigningAttempt)
	}

	// issuer-lib sets the condition at now; the request comes back.
	at := metav1.NewTime(now)
	cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
		Type: ConditionValidityStarted, Status: cmmeta.ConditionTrue, Reason: ReasonFirstSigningAttempt, LastTransitionTime: &at,
	})
	bundle, err := s.Sign(context.Background(), issuersigner.CertificateRequestObjectFromCertificateRequest(cr), issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	cert := decodeOne(t, bundle.ChainPEM)
	if !cert.NotBefore.Equal(now.Add(-signer.ClockSkew)) || !cert.NotAfter.Equal(now.Add(48*time.Hour)) {
		t.Errorf("valid %s to %s, want %s to %s", cert.NotBefore, cert.NotAfter, now.Add(-signer.ClockSkew), now.Add(48*time.Hour))
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
