package controller

import (
	"context"
	"fmt"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
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

// validityFieldOwner writes ConditionValidityStarted. It is not issuer-lib's
// field manager, whose server-side applies of the request's status would
// otherwise drop the condition and, with it, the start a re-sign needs.
const validityFieldOwner = FieldOwner + "-validity"

const validityMessage = "the issued certificate's validity starts at this condition's lastTransitionTime, the first signing attempt, so that signing the request again yields the same certificate"

// validityStart is the start recorded on the request, if any.
func validityStart(cr issuersigner.CertificateRequestObject) (time.Time, bool) {
	for _, c := range cr.GetConditions() {
		if c.Type == ConditionValidityStarted && c.Status == metav1.ConditionTrue && !c.LastTransitionTime.IsZero() {
			return c.LastTransitionTime.Time, true
		}
	}
	return time.Time{}, false
}

// recordValidityStart writes now, to the second as the API keeps it, as the
// request's validity start, and returns it; for a request this process
// signed at first sight but could not record, the start it signed from
// (sightings). The write is conditional on the
// request's resourceVersion: a request read from a cache that lags, which
// may already carry a start, gets no second one; the request is then tried
// again (a PendingError, which never fails it for good).
func (s *Signer) recordValidityStart(ctx context.Context, cr issuersigner.CertificateRequestObject) (time.Time, error) {
	obj, ok := cr.(runtime.Object)
	if !ok {
		return time.Time{}, fmt.Errorf("request %s has unexpected type %T", cr.GetName(), cr)
	}
	now := metav1.NewTime(s.Clock.Now().UTC().Truncate(time.Second))
	var req, base client.Object
	switch o := obj.DeepCopyObject().(type) {
	case *cmapi.CertificateRequest:
		base = o.DeepCopy()
		if signed, ok := s.unrecorded.start(o.UID, s.Clock.Now()); ok {
			now = metav1.NewTime(signed)
		}
		o.Status.Conditions = append(o.Status.Conditions, cmapi.CertificateRequestCondition{
			Type: ConditionValidityStarted, Status: cmmeta.ConditionTrue, Reason: ReasonFirstSigningAttempt, Message: validityMessage, LastTransitionTime: &now,
		})
		req = o
	case *certificatesv1.CertificateSigningRequest:
		base = o.DeepCopy()
		o.Status.Conditions = append(o.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: ConditionValidityStarted, Status: corev1.ConditionTrue, Reason: ReasonFirstSigningAttempt, Message: validityMessage, LastTransitionTime: now, LastUpdateTime: now,
		})
		req = o
	default:
		return time.Time{}, fmt.Errorf("request %s has unexpected type %T", cr.GetName(), o)
	}
	err := s.Client.Status().Patch(ctx, req, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), client.FieldOwner(validityFieldOwner))
	if apierrors.IsConflict(err) {
		return time.Time{}, issuersigner.PendingError{Err: fmt.Errorf("the request changed while its validity start was recorded; reading it again")}
	}
	if err != nil {
		return time.Time{}, issuersigner.PendingError{Err: fmt.Errorf("recording the validity start (condition %s): %w", ConditionValidityStarted, err)}
	}
	return now.Time, nil
}

// clockSkew is how far ahead of this replica's clock another replica's
// recorded start may be.
const clockSkew = time.Minute

// checkValidityStart accepts a recorded start only as this issuer writes
// it. Anyone who may patch the request's status (approvers, approver-policy,
// cert-manager) could otherwise post-date it, and a CA would then start,
// and end, at a date of their choosing, up to the anchor's expiry. The
// start must lie between the request's creation and now (plus the clock
// skew), and no field manager but the issuer's own may have written the
// condition.
func checkValidityStart(cr issuersigner.CertificateRequestObject, start, now time.Time) error {
	created := cr.GetCreationTimestamp().Time
	if start.Before(created.Truncate(time.Second)) || start.After(now.Add(clockSkew)) {
		return fmt.Errorf("condition %s on request %s starts the validity at %s, outside the request's life (created %s, now %s): only this issuer records it, at its first signing attempt; delete the request and let cert-manager make a new one",
			ConditionValidityStarted, cr.GetName(), start.UTC().Format(time.RFC3339), created.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if other := validityWriters(cr.GetManagedFields()); other != "" {
		return fmt.Errorf("condition %s on request %s was written by %q, not by this issuer (%s): a validity start is taken only from the issuer itself; delete the request and let cert-manager make a new one",
			ConditionValidityStarted, cr.GetName(), other, validityFieldOwner)
	}
	return nil
}

// validityWriters is a field manager other than the issuer's that owns part
// of the ValidityStarted condition, or "".
func validityWriters(fields []metav1.ManagedFieldsEntry) string {
	for _, m := range fields {
		if m.Manager != validityFieldOwner && mentionsValidity(m) {
			return m.Manager
		}
	}
	return ""
}

func mentionsValidity(m metav1.ManagedFieldsEntry) bool {
	return m.FieldsV1 != nil && strings.Contains(m.FieldsV1.GetRawString(), `\"type\":\"`+ConditionValidityStarted+`\"`)
}

// keepValidityWriters is what the cache keeps of a request's managed
// fields: the entries that own part of ValidityStarted, all the signer
// needs to tell who wrote it.
func keepValidityWriters(fields []metav1.ManagedFieldsEntry) []metav1.ManagedFieldsEntry {
	var out []metav1.ManagedFieldsEntry
	for _, m := range fields {
		if mentionsValidity(m) {
			out = append(out, m)
		}
	}
	return out
}
