package controller

import (
	"context"
	"fmt"
	"time"

	cmapiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuerlibapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// signedPromptly bounds how long after its approval a request is signed
// from its approval time.
const signedPromptly = 5 * time.Minute

// SignAtFirstSight is issuer-lib's IgnoreCertificateRequest hook,
// called on every reconcile of an approved, unfinished request just before
// issuer-lib would write its first Ready condition (Initializing) and end
// the reconcile, to sign it in the next one with a third write. For a
// CertificateRequest seen for the first time while its issuer is Ready, it
// does in one write what would take issuer-lib two and this issuer a third
// (its validity start), as cert-manager's own CA issuer does:
//
//   - approved within signedPromptly, it is signed from its approval time,
//     which the request carries and which no retry can move, so signing it
//     again (the write lost, a new leader) yields the same certificate; the
//     start, the certificate and Ready=True go in one write, conditional on
//     the request's resourceVersion;
//   - approved earlier (the issuer was down), it gets its start now and the
//     Initializing condition in one write, and issuer-lib signs it next.
//
// Either write ends this reconcile (true). Anything else (a CSR, a request
// whose issuer is not Ready, that the policy refuses, or that cannot be
// signed now) goes issuer-lib's way unchanged, and Sign records the start at
// its first attempt.
func (s *Signer) SignAtFirstSight(ctx context.Context, obj issuersigner.CertificateRequestObject, issuerGVK schema.GroupVersionKind, issuerName types.NamespacedName) (bool, error) {
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
	p := s.policyFor(iss)
	if _, err := p.Check(req); err != nil {
		return false, nil
	}
	base := cr.DeepCopy()
	now := s.Clock.Now()
	if approved, ok := approvedPromptly(cr, now); ok {
		anchor, t, err := s.prepare(ctx, iss, p)
		if err != nil {
			return false, nil
		}
		req.Start = approved
		bundle, err := s.issue(ctx, obj, iss, p, anchor, t, req)
		if err != nil {
			return false, nil
		}
		at := metav1.NewTime(approved)
		cr.Status.Certificate, cr.Status.CA = bundle.ChainPEM, bundle.CAPEM
		cr.Status.Conditions = append(cr.Status.Conditions, validityCondition(at), cmapi.CertificateRequestCondition{
			Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionTrue, Reason: cmapi.CertificateRequestReasonIssued,
			Message: issuedMessage, LastTransitionTime: ptr.To(metav1.NewTime(now)),
		})
		if done, err := s.patchFirst(ctx, cr, base); !done || err != nil {
			s.unrecorded.signed(cr.UID, approved, now)
			return done, err
		}
		s.EventRecorder.Eventf(cr, nil, corev1.EventTypeNormal, cmapi.CertificateRequestReasonIssued, "Synced", issuedMessage)
		return true, nil
	}
	at := metav1.NewTime(now.UTC().Truncate(time.Second))
	cr.Status.Conditions = append(cr.Status.Conditions, validityCondition(at), cmapi.CertificateRequestCondition{
		Type: cmapi.CertificateRequestConditionReady, Status: cmmeta.ConditionUnknown, Reason: issuerlibapi.CertificateRequestConditionReasonInitializing,
		Message: fmt.Sprintf("%s has started reconciling this CertificateRequest", FieldOwner), LastTransitionTime: &at,
	})
	return s.patchFirst(ctx, cr, base)
}

// issuedMessage is issuer-lib's, so a request reads the same either way.
const issuedMessage = "Succeeded signing the CertificateRequest"

func validityCondition(at metav1.Time) cmapi.CertificateRequestCondition {
	return cmapi.CertificateRequestCondition{
		Type: ConditionValidityStarted, Status: cmmeta.ConditionTrue, Reason: ReasonFirstSigningAttempt, Message: validityMessage, LastTransitionTime: &at,
	}
}

// approvedPromptly is the request's approval time, when it lies within the
// request's life and no more than signedPromptly ago. An approver writes
// it, but can move it only within those bounds: a few minutes off the
// certificate's life, which it could as well have denied.
func approvedPromptly(cr *cmapi.CertificateRequest, now time.Time) (time.Time, bool) {
	c := cmapiutil.GetCertificateRequestCondition(cr, cmapi.CertificateRequestConditionApproved)
	if c == nil || c.Status != cmmeta.ConditionTrue || c.LastTransitionTime == nil {
		return time.Time{}, false
	}
	at := c.LastTransitionTime.Time
	if at.Before(cr.CreationTimestamp.Time) || at.After(now) || now.Sub(at) > signedPromptly {
		return time.Time{}, false
	}
	return at, true
}

// patchFirst writes the hook's conditions on the request's status under
// the validity field manager, only over the revision it read.
func (s *Signer) patchFirst(ctx context.Context, cr, base *cmapi.CertificateRequest) (bool, error) {
	err := s.Client.Status().Patch(ctx, cr, client.MergeFromWithOptions(base, client.MergeFromWithOptimisticLock{}), client.FieldOwner(validityFieldOwner))
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
