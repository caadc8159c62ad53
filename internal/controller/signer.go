// Package controller wires the Linkerd signing policy into cert-manager's
// issuer-lib: Check reports whether an issuer's trust anchor is usable and
// trusted by Linkerd, Sign signs an approved request with it, and watches on
// the anchor Secret and Linkerd's trust roots ConfigMap re-check issuers
// when either changes.
package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/metrics"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// DefaultAnchorExpiryWarning is linkerd check's "trust anchors are valid for
// at least 60 days".
const DefaultAnchorExpiryWarning = 60 * 24 * time.Hour

// Signer implements issuer-lib's Check and Sign for both issuer kinds.
type Signer struct {
	// Client reads anchor Secrets and trust roots ConfigMaps from a cache
	// scoped to WatchNamespaces, and patches issuers' status.trustAnchor.
	Client client.Client
	// ClusterResourceNamespace is where LinkerdCAClusterIssuers' anchors live.
	ClusterResourceNamespace string
	// WatchNamespaces are the namespaces whose Secrets and ConfigMaps may be
	// read.
	WatchNamespaces []string
	// AnchorExpiryWarning is how long before its anchor expires an issuer
	// warns.
	AnchorExpiryWarning time.Duration
	// EventRecorder reports capped lifetimes and expiring anchors.
	EventRecorder events.EventRecorder
	Clock         clock.PassiveClock
}

// loaded is an issuer's trust anchor and what ca.crt carries with it.
type loaded struct {
	anchor *signer.Anchor
	// caPEM is Linkerd's trust roots bundle when it exists, else the anchor.
	caPEM []byte
	// trust is the TrustAnchorTrusted condition: is the anchor among the
	// roots Linkerd's identity service trusts.
	trust metav1.Condition
}

// ConditionTrustAnchorTrusted says whether an issuer's anchor is among the
// roots Linkerd's identity service trusts; the controller sets it beside
// issuer-lib's Ready.
const ConditionTrustAnchorTrusted = "TrustAnchorTrusted"

// The reasons of ConditionTrustAnchorTrusted. ReasonTrustAnchorNotTrusted
// also starts the Ready message of an issuer it stops.
const (
	ReasonTrusted               = "Trusted"
	ReasonTrustAnchorNotTrusted = "TrustAnchorNotTrusted"
	ReasonTrustRootsNotFound    = "TrustRootsNotFound"
	ReasonCheckDisabled         = "CheckDisabled"
)

// Check is issuer-lib's readiness check: the issuer is Ready when its trust
// anchor Secret holds an anchor that can sign and, once Linkerd is
// installed, is among the roots Linkerd trusts. Every failure is retryable:
// fixing the Secret or the bundle fixes the issuer, and the watches re-check
// it as soon as that happens.
func (s *Signer) Check(ctx context.Context, issuer issuerapi.Issuer) error {
	l, err := s.load(ctx, issuer)
	if l != nil {
		s.reportAnchor(ctx, issuer, l)
	}
	return err
}

// Sign signs an approved CertificateRequest or CertificateSigningRequest. A
// policy refusal fails the request for good; an anchor that went bad since
// the last Check sends the issuer back to be checked.
func (s *Signer) Sign(ctx context.Context, req issuersigner.CertificateRequestObject, issuer issuerapi.Issuer) (issuersigner.PEMBundle, error) {
	l, err := s.load(ctx, issuer)
	if err != nil {
		return issuersigner.PEMBundle{}, issuersigner.IssuerError{Err: err}
	}
	kind, name := issuerLabels(issuer)
	details, err := req.GetCertificateDetails()
	if err != nil {
		metrics.Refused(kind, name, "request")
		return issuersigner.PEMBundle{}, issuersigner.PermanentError{Err: fmt.Errorf("reading the request: %w", err)}
	}
	start := s.Clock.Now()
	issued, err := signer.Sign(PolicyFor(issuer), l.anchor, details, start)
	if err != nil {
		if refusal := (*signer.Refusal)(nil); errors.As(err, &refusal) {
			metrics.Refused(kind, name, refusal.Rule)
		}
		return issuersigner.PEMBundle{}, err
	}
	metrics.Signed(kind, name, s.Clock.Since(start), issued.NotAfter)
	if issued.CappedAt != nil {
		s.warnCapped(req, details.Duration.String(), issued)
	}
	return issuersigner.PEMBundle{ChainPEM: issued.CertificatePEM, CAPEM: l.caPEM}, nil
}

// warnCapped records a Warning event on the request. The request object
// issuer-lib hands over wraps the API object, whose DeepCopyObject yields the
// registered type the recorder can reference.
func (s *Signer) warnCapped(req issuersigner.CertificateRequestObject, asked string, issued *signer.Issued) {
	obj, ok := req.(runtime.Object)
	if !ok || s.EventRecorder == nil {
		return
	}
	s.EventRecorder.Eventf(obj.DeepCopyObject(), nil, corev1.EventTypeWarning, "NotAfterCapped", "Sign",
		"the requested duration %s would outlive the trust anchor; the issued certificate expires with the anchor at %s. Rotate the trust anchor before then.",
		asked, issued.CappedAt.UTC().Format(time.RFC3339))
}

// PolicyFor is the signing policy an issuer's spec sets. The CRD schema
// defaults every field; the fallbacks cover objects written around it.
func PolicyFor(issuer issuerapi.Issuer) signer.Policy {
	spec := specOf(issuer)
	p := signer.Policy{
		TrustDomain:           spec.TrustDomain,
		ControlPlaneNamespace: spec.ControlPlaneNamespace,
		MinDuration:           v1alpha1.DefaultMinDuration,
		MaxDuration:           v1alpha1.DefaultMaxDuration,
	}
	if p.TrustDomain == "" {
		p.TrustDomain = v1alpha1.DefaultTrustDomain
	}
	if p.ControlPlaneNamespace == "" {
		p.ControlPlaneNamespace = v1alpha1.DefaultControlPlaneNamespace
	}
	if spec.MinDuration != nil {
		p.MinDuration = spec.MinDuration.Duration
	}
	if spec.MaxDuration != nil {
		p.MaxDuration = spec.MaxDuration.Duration
	}
	return p
}

func specOf(issuer issuerapi.Issuer) *v1alpha1.IssuerSpec {
	switch i := issuer.(type) {
	case *v1alpha1.LinkerdCAIssuer:
		return &i.Spec
	case *v1alpha1.LinkerdCAClusterIssuer:
		return &i.Spec
	}
	// issuer-lib only hands over the types registered in Setup.
	panic(fmt.Sprintf("unexpected issuer type %T", issuer))
}

func statusOf(issuer issuerapi.Issuer) *v1alpha1.IssuerStatus {
	switch i := issuer.(type) {
	case *v1alpha1.LinkerdCAIssuer:
		return &i.Status
	case *v1alpha1.LinkerdCAClusterIssuer:
		return &i.Status
	}
	panic(fmt.Sprintf("unexpected issuer type %T", issuer))
}

func isCluster(issuer issuerapi.Issuer) bool {
	_, ok := issuer.(*v1alpha1.LinkerdCAClusterIssuer)
	return ok
}

// issuerLabels are an issuer's metric labels: its kind, and namespace/name
// (name alone for a cluster issuer).
func issuerLabels(issuer issuerapi.Issuer) (kind, name string) {
	if isCluster(issuer) {
		return "LinkerdCAClusterIssuer", issuer.GetName()
	}
	return "LinkerdCAIssuer", issuer.GetNamespace() + "/" + issuer.GetName()
}

// AnchorSecret is where an issuer's trust anchor lives.
func (s *Signer) AnchorSecret(issuer issuerapi.Issuer) types.NamespacedName {
	ns := issuer.GetNamespace()
	if isCluster(issuer) {
		ns = s.ClusterResourceNamespace
	}
	return types.NamespacedName{Namespace: ns, Name: specOf(issuer).TrustAnchorSecretName}
}

// TrustRootsConfigMap is where Linkerd's identity service reads the roots
// it trusts, for an issuer, and the key of the bundle; ok is false when the
// issuer's trust roots check is off.
func TrustRootsConfigMap(issuer issuerapi.Issuer) (ref types.NamespacedName, key string, ok bool) {
	tr := specOf(issuer).TrustRoots
	if tr.Check != nil && !*tr.Check {
		return ref, "", false
	}
	ref = types.NamespacedName{Namespace: issuer.GetNamespace(), Name: tr.ConfigMapName}
	if isCluster(issuer) {
		ref.Namespace = PolicyFor(issuer).ControlPlaneNamespace
	}
	if ref.Name == "" {
		ref.Name = v1alpha1.DefaultTrustRootsConfigMap
	}
	if key = tr.Key; key == "" {
		key = v1alpha1.DefaultTrustRootsKey
	}
	return ref, key, true
}

func (s *Signer) checkWatched(what string, ref types.NamespacedName) error {
	if !slices.Contains(s.WatchNamespaces, ref.Namespace) {
		return fmt.Errorf("%s %s: namespace %q is not watched by the controller (watched: %v); add it to --watch-namespaces (Helm value watchNamespaces)", what, ref, ref.Namespace, s.WatchNamespaces)
	}
	return nil
}

// load reads and checks an issuer's anchor, then Linkerd's trust roots. It
// returns the anchor with an error when only the trust check failed.
func (s *Signer) load(ctx context.Context, issuer issuerapi.Issuer) (*loaded, error) {
	ref := s.AnchorSecret(issuer)
	if err := s.checkWatched("trust anchor Secret", ref); err != nil {
		return nil, err
	}
	var secret corev1.Secret
	if err := s.Client.Get(ctx, ref, &secret); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, fmt.Errorf("trust anchor Secret %s not found; create it with type kubernetes.io/tls and the root CA in tls.crt and tls.key", ref)
		}
		return nil, fmt.Errorf("reading trust anchor Secret %s: %w", ref, err)
	}
	if secret.Type != corev1.SecretTypeTLS {
		return nil, fmt.Errorf("trust anchor Secret %s has type %q; it must be of type %s (tls.crt and tls.key)", ref, secret.Type, corev1.SecretTypeTLS)
	}
	anchor, err := signer.ParseAnchor(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], s.Clock.Now())
	if err != nil {
		return nil, fmt.Errorf("trust anchor Secret %s: %w", ref, err)
	}
	l := &loaded{anchor: anchor, caPEM: anchor.PEM}
	return l, s.checkTrusted(ctx, issuer, l)
}

func trustCondition(status metav1.ConditionStatus, reason, format string, args ...any) metav1.Condition {
	return metav1.Condition{Type: ConditionTrustAnchorTrusted, Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// checkTrusted: signing with an anchor Linkerd's identity service does not
// trust would break every proxy, so while Linkerd's trust roots ConfigMap
// exists the anchor must be in it, and ca.crt becomes the whole bundle.
// Without the ConfigMap (Linkerd not installed yet) issuance goes on.
func (s *Signer) checkTrusted(ctx context.Context, issuer issuerapi.Issuer, l *loaded) error {
	ref, key, ok := TrustRootsConfigMap(issuer)
	if !ok {
		l.trust = trustCondition(metav1.ConditionUnknown, ReasonCheckDisabled, "spec.trustRoots.check is false; ca.crt is the anchor alone")
		return nil
	}
	if err := s.checkWatched("trust roots ConfigMap", ref); err != nil {
		l.trust = trustCondition(metav1.ConditionUnknown, ReasonTrustRootsNotFound, "%v", err)
		return err
	}
	var cm corev1.ConfigMap
	if err := s.Client.Get(ctx, ref, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			l.trust = trustCondition(metav1.ConditionUnknown, ReasonTrustRootsNotFound,
				"ConfigMap %s not found: Linkerd is not installed yet, so ca.crt is the anchor alone; once it exists the anchor must be in it", ref)
			return nil
		}
		return fmt.Errorf("reading trust roots ConfigMap %s: %w", ref, err)
	}
	untrusted := func(format string, args ...any) error {
		l.trust = trustCondition(metav1.ConditionFalse, ReasonTrustAnchorNotTrusted, format, args...)
		return fmt.Errorf("%s: %s", ReasonTrustAnchorNotTrusted, l.trust.Message)
	}
	bundle, ok := cm.Data[key]
	if !ok {
		return untrusted("ConfigMap %s has no key %q, so Linkerd trusts no root; fix the ConfigMap or spec.trustRoots.key", ref, key)
	}
	roots, err := signer.ParseTrustBundle([]byte(bundle))
	if err != nil {
		return untrusted("ConfigMap %s key %s, Linkerd's trust roots, does not parse as Linkerd requires: %v; it must hold only PEM CERTIFICATE blocks", ref, key, err)
	}
	if !signer.BundleContains(roots, l.anchor.Certificate) {
		return untrusted("the trust anchor %s (SHA-256 %s) is not among the roots Linkerd's identity service trusts (ConfigMap %s key %s); an issuer signed by it would break every proxy. Add the anchor to that bundle first (see docs/rotation.md), or set spec.trustRoots.check: false",
			l.anchor.Certificate.Subject, signer.Fingerprint(l.anchor.Certificate), ref, key)
	}
	l.caPEM = signer.EncodeBundle(roots)
	l.trust = trustCondition(metav1.ConditionTrue, ReasonTrusted, "the trust anchor is among the roots in ConfigMap %s key %s; ca.crt carries all %d", ref, key, len(roots))
	return nil
}

// reportAnchor publishes what the controller knows of an issuer's anchor:
// status.trustAnchor, the anchor expiry metric, and a Warning event when the
// anchor starts to expire within AnchorExpiryWarning.
func (s *Signer) reportAnchor(ctx context.Context, issuer issuerapi.Issuer, l *loaded) {
	cert := l.anchor.Certificate
	kind, name := issuerLabels(issuer)
	metrics.AnchorExpiry(kind, name, cert.NotAfter)

	want := &v1alpha1.TrustAnchorStatus{
		Subject:           cert.Subject.String(),
		NotAfter:          metav1.NewTime(cert.NotAfter),
		SHA256Fingerprint: signer.Fingerprint(cert),
		ExpiringSoon:      cert.NotAfter.Sub(s.Clock.Now()) < s.AnchorExpiryWarning,
		TrustedByLinkerd:  l.trust.Status,
	}
	have := statusOf(issuer).TrustAnchor
	if want.ExpiringSoon && (have == nil || !have.ExpiringSoon || have.SHA256Fingerprint != want.SHA256Fingerprint) && s.EventRecorder != nil {
		s.EventRecorder.Eventf(issuer, nil, corev1.EventTypeWarning, "TrustAnchorExpiring", "Check",
			"the trust anchor %s (SHA-256 %s) expires at %s, in less than %s; everything it signs expires with it. Rotate it (docs/rotation.md).",
			want.Subject, want.SHA256Fingerprint, cert.NotAfter.UTC().Format(time.RFC3339), s.AnchorExpiryWarning)
	}
	cond := l.trust
	cond.ObservedGeneration = issuer.GetGeneration()
	cond.LastTransitionTime = metav1.NewTime(s.Clock.Now())
	haveCond := meta.FindStatusCondition(statusOf(issuer).Conditions, ConditionTrustAnchorTrusted)
	if haveCond != nil && haveCond.Status == cond.Status {
		cond.LastTransitionTime = haveCond.LastTransitionTime
	}
	if have != nil && have.Subject == want.Subject && have.NotAfter.Equal(&want.NotAfter) && have.SHA256Fingerprint == want.SHA256Fingerprint &&
		have.ExpiringSoon == want.ExpiringSoon && have.TrustedByLinkerd == want.TrustedByLinkerd &&
		haveCond != nil && *haveCond == cond {
		return
	}
	if err := s.applyAnchorStatus(ctx, issuer, want, cond); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "updating status.trustAnchor")
	}
}

// applyAnchorStatus server-side-applies status.trustAnchor and the
// TrustAnchorTrusted condition under a field manager of its own, beside
// issuer-lib's Ready condition.
func (s *Signer) applyAnchorStatus(ctx context.Context, issuer issuerapi.Issuer, st *v1alpha1.TrustAnchorStatus, cond metav1.Condition) error {
	kind, _ := issuerLabels(issuer)
	fields, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
	if err != nil {
		return err
	}
	condFields, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cond)
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{
		"trustAnchor": fields,
		"conditions":  []any{condFields},
	}}}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(kind))
	u.SetName(issuer.GetName())
	u.SetNamespace(issuer.GetNamespace())
	return s.Client.Status().Patch(ctx, u, client.Apply, client.FieldOwner(FieldOwner+"-anchor"), client.ForceOwnership)
}
