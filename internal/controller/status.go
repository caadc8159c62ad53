package controller

import (
	"context"
	"time"

	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/metrics"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// ConditionTrustAnchorTrusted is the API's condition, which the controller
// sets beside issuer-lib's Ready.
const ConditionTrustAnchorTrusted = v1alpha1.ConditionTrustAnchorTrusted

// The reasons of ConditionTrustAnchorTrusted. ReasonTrustAnchorNotTrusted
// also starts the Ready message of an issuer it stops.
const (
	ReasonTrusted               = "Trusted"
	ReasonTrustAnchorNotTrusted = "TrustAnchorNotTrusted"
	ReasonTrustRootsNotFound    = "TrustRootsNotFound"
	// ReasonTrustGateOff: the trust roots ConfigMap does not exist, so the
	// anchor is used unchecked. Fails open for Linkerd's bootstrap; a typo
	// in spec.trustRoots.configMapName looks the same, hence the warning.
	ReasonTrustGateOff  = "TrustGateOff"
	ReasonCheckDisabled = "CheckDisabled"
	// ReasonTrustAnchorUnusable: the anchor Secret is missing or broken, so
	// whether Linkerd trusts it is unknown until it is fixed.
	ReasonTrustAnchorUnusable = "TrustAnchorUnusable"
)

// The Warning events an issuer's anchor raises.
const (
	EventTrustAnchorExpiring        = "TrustAnchorExpiring"
	EventTrustAnchorNamedLikeIssuer = "TrustAnchorNamedLikeIssuer"
	EventNotAfterCapped             = "NotAfterCapped"
	EventTrustGateOff               = ReasonTrustGateOff
)

// reportAnchor publishes what the controller knows of an issuer's usable
// anchor: status.trustAnchor, the TrustAnchorTrusted condition, the anchor
// expiry metric, and Warning events when a new anchor expires within
// AnchorExpiryWarning or shares the issuer's subject.
func (s *Signer) reportAnchor(ctx context.Context, iss v1alpha1.GenericIssuer, p signer.Policy, anchor *signer.Anchor, t trust) {
	cert := anchor.Certificate
	kind, name := IssuerLabels(iss)
	metrics.AnchorExpiry(kind, name, cert.NotAfter)

	want := &v1alpha1.TrustAnchorStatus{
		Subject:           cert.Subject.String(),
		NotAfter:          metav1.NewTime(cert.NotAfter),
		SHA256Fingerprint: signer.Fingerprint(cert),
		ExpiringSoon:      cert.NotAfter.Sub(s.Clock.Now()) < s.AnchorExpiryWarning,
		TrustedByLinkerd:  t.condition.Status,
	}
	have := iss.GetStatus().TrustAnchor
	newAnchor := have == nil || have.SHA256Fingerprint != want.SHA256Fingerprint
	if s.EventRecorder != nil && want.ExpiringSoon && (newAnchor || !have.ExpiringSoon) {
		s.EventRecorder.Eventf(iss, nil, corev1.EventTypeWarning, EventTrustAnchorExpiring, "Check",
			"the trust anchor %s (SHA-256 %s) expires at %s, in less than %s; everything it signs expires with it. Rotate it (docs/rotation.md).",
			want.Subject, want.SHA256Fingerprint, cert.NotAfter.UTC().Format(time.RFC3339), s.AnchorExpiryWarning)
	}
	if s.EventRecorder != nil && newAnchor && p.SubjectIsIssuers(cert) {
		s.EventRecorder.Eventf(iss, nil, corev1.EventTypeWarning, EventTrustAnchorNamedLikeIssuer, "Check",
			"the trust anchor's subject %s is the identity issuer's own; signing goes on, with the anchor's key identifier set explicitly, but tools that match certificates by name can confuse the two. Name the next root CN=root.%s.%s, as Linkerd's guides do (linkerd-ca trust-anchor create's default).",
			want.Subject, p.ControlPlaneNamespace, p.TrustDomain)
	}
	s.warnGateOff(iss, t.condition)
	cond := s.conditionFor(iss, t.condition)
	if have != nil && *have == *want && sameCondition(iss, cond) {
		return
	}
	if err := s.applyAnchorStatus(ctx, iss, want, cond); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "updating status.trustAnchor")
	}
}

// warnGateOff records a Warning event when an issuer's trust gate turns off.
func (s *Signer) warnGateOff(iss v1alpha1.GenericIssuer, cond metav1.Condition) {
	if s.EventRecorder == nil || cond.Reason != ReasonTrustGateOff {
		return
	}
	if have := meta.FindStatusCondition(iss.GetStatus().Conditions, ConditionTrustAnchorTrusted); have != nil && have.Reason == ReasonTrustGateOff {
		return
	}
	s.EventRecorder.Eventf(iss, nil, corev1.EventTypeWarning, EventTrustGateOff, "Check", "%s", cond.Message)
}

// reportUnusable sets TrustAnchorTrusted to Unknown while the anchor cannot
// be used, so the condition never claims a trust it can no longer check.
// status.trustAnchor keeps the last anchor that was usable.
func (s *Signer) reportUnusable(ctx context.Context, iss v1alpha1.GenericIssuer, err error) {
	cond := s.conditionFor(iss, trustCondition(metav1.ConditionUnknown, ReasonTrustAnchorUnusable,
		"the trust anchor cannot be used, so whether Linkerd trusts it is unknown: %v", err))
	if sameCondition(iss, cond) {
		return
	}
	if err := s.applyAnchorStatus(ctx, iss, iss.GetStatus().TrustAnchor, cond); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "updating the TrustAnchorTrusted condition")
	}
}

// conditionFor stamps a condition with the issuer's generation, keeping its
// transition time while the status stays the same.
func (s *Signer) conditionFor(iss v1alpha1.GenericIssuer, cond metav1.Condition) metav1.Condition {
	cond.ObservedGeneration = iss.GetGeneration()
	cond.LastTransitionTime = metav1.NewTime(s.Clock.Now())
	if have := meta.FindStatusCondition(iss.GetStatus().Conditions, cond.Type); have != nil && have.Status == cond.Status {
		cond.LastTransitionTime = have.LastTransitionTime
	}
	return cond
}

func sameCondition(iss v1alpha1.GenericIssuer, cond metav1.Condition) bool {
	have := meta.FindStatusCondition(iss.GetStatus().Conditions, cond.Type)
	return have != nil && *have == cond
}

// applyAnchorStatus server-side-applies status.trustAnchor (when known) and
// the TrustAnchorTrusted condition under a field manager of its own, beside
// issuer-lib's Ready condition.
func (s *Signer) applyAnchorStatus(ctx context.Context, iss v1alpha1.GenericIssuer, st *v1alpha1.TrustAnchorStatus, cond metav1.Condition) error {
	condFields, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cond)
	if err != nil {
		return err
	}
	status := map[string]any{"conditions": []any{condFields}}
	if st != nil {
		fields, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
		if err != nil {
			return err
		}
		status["trustAnchor"] = fields
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": status}}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(iss.IssuerKind()))
	u.SetName(iss.GetName())
	u.SetNamespace(iss.GetNamespace())
	return s.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner+"-anchor"), client.ForceOwnership)
}

// warnCapped records a Warning event on the request. The request object
// issuer-lib hands over wraps the API object, whose DeepCopyObject yields the
// registered type the recorder can reference.
func (s *Signer) warnCapped(cr issuersigner.CertificateRequestObject, asked time.Duration, issued *signer.Issued) {
	obj, ok := cr.(runtime.Object)
	if !ok || s.EventRecorder == nil {
		return
	}
	s.EventRecorder.Eventf(obj.DeepCopyObject(), nil, corev1.EventTypeWarning, EventNotAfterCapped, "Sign",
		"the requested duration %s would outlive the trust anchor; the issued certificate expires with the anchor at %s. Rotate the trust anchor before then.",
		asked, issued.CappedAt.UTC().Format(time.RFC3339))
}
