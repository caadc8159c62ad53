package controller

import (
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuerlibapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// StartBeforeInitializing is issuer-lib's IgnoreCertificateRequest hook,
// called on every reconcile of an approved, unfinished request just before
// issuer-lib would write its first Ready condition (Initializing) and end
// the reconcile. For a CertificateRequest seen for the first time while its
// issuer is Ready, it records the validity start and that same Ready
// condition in one write, and ends this reconcile itself: the write's own
// update event brings the request straight back, issuer-lib finds the Ready
// condition there and signs from the recorded start. So a request costs two
// status writes (this one, and issuer-lib's with the certificate) where it
// cost three, and no write of the issuer's follows the signature that could
// bring the request back to a cache that has not yet seen it Ready.
//
// Anything else (a CSR, a request whose issuer is not Ready or that the
// policy refuses, a start already recorded) goes issuer-lib's way
// unchanged; Sign then records the start at the first signing attempt.
func (s *Signer) StartBeforeInitializing(ctx context.Context, obj issuersigner.CertificateRequestObject, issuerGVK schema.GroupVersionKind, issuerName types.NamespacedName) (bool, error) {
	for _, c := range obj.GetConditions() {
		if c.Type == string(cmapi.CertificateRequestConditionReady) || c.Type == ConditionValidityStarted {
			return false, nil
		}
	}
	ro, ok := obj.(runtime.Object)
	if !ok {
		return false, nil
	}
	cr, ok := ro.DeepCopyObject().(*cmapi.CertificateRequest)
	if !ok || len(cr.Status.Certificate) > 0 {
		return false, nil
	}
	iss := v1alpha1.NewIssuerOfKind(issuerGVK.Kind)
	if iss == nil {
		return false, nil
	}
	if err := s.Client.Get(ctx, issuerName, iss); err != nil {
		return false, client.IgnoreNotFound(err)
	}
	if !readyNow(iss) {
		return false, nil
	}
	req, err := requestOf(obj)
	if err != nil {
		return false, nil
	}
	if _, err := s.policyFor(iss).Check(req); err != nil {
		return false, nil
	}
	base := cr.DeepCopy()
	now := metav1.NewTime(s.Clock.Now().UTC().Truncate(time.Second))
	cr.Status.Conditions = append(cr.Status.Conditions,
		cmapi.CertificateRequestCondition{
			Type: ConditionValidityStarted, Status: cmmeta.ConditionTrue, Reason: ReasonFirstSigningAttempt, Message: validityMessage, LastTransitionTime: &now,
		},
		cmapi.CertificateRequestCondition{
			Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionUnknown, Reason: issuerlibapi.CertificateRequestConditionReasonInitializing,
			Message: fmt.Sprintf("%s has started reconciling this CertificateRequest", FieldOwner), LastTransitionTime: &now,
		})
	err = s.Client.Status().Patch(ctx, cr, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), client.FieldOwner(validityFieldOwner))
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		// A conflict too: the cache lags, and the request is read again
		// after issuer-lib's backoff.
		return false, fmt.Errorf("recording the validity start (condition %s): %w", ConditionValidityStarted, err)
	}
	return true, nil
}

// readyNow: the issuer's Ready condition is True for its current spec, as
// issuer-lib requires before it signs.
func readyNow(iss v1alpha1.GenericIssuer) bool {
	c := meta.FindStatusCondition(iss.GetStatus().Conditions, issuerlibapi.IssuerConditionTypeReady)
	return c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration >= iss.GetGeneration()
}
