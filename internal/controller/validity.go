package controller

import (
	"errors"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConditionValidityStarted is the request condition whose
// lastTransitionTime starts the issued certificate's validity. It is set at
// the first signing attempt, not at the request's creation or approval: a
// request that waited days for its issuer to be Ready still gets its whole
// duration, and signing it again, after a status write that failed, yields
// the same certificate.
const ConditionValidityStarted = "ValidityStarted"

// ReasonFirstSigningAttempt is ConditionValidityStarted's reason.
const ReasonFirstSigningAttempt = "FirstSigningAttempt"

// validityStart is the start recorded on the request, if any.
func validityStart(cr issuersigner.CertificateRequestObject) (time.Time, bool) {
	for _, c := range cr.GetConditions() {
		if c.Type == ConditionValidityStarted && c.Status == metav1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

// startValidity has issuer-lib record the validity start on the request; the
// condition's change brings the request back, and Sign then signs from it.
func startValidity() error {
	return issuersigner.SetCertificateRequestConditionError{
		Err: issuersigner.PendingError{Err: errors.New(
			"the certificate's validity starts at this condition's lastTransitionTime, this first signing attempt, so that a re-sign yields the same certificate")},
		ConditionType: cmapi.CertificateRequestConditionType(ConditionValidityStarted),
		Status:        cmmeta.ConditionTrue,
		Reason:        ReasonFirstSigningAttempt,
	}
}
