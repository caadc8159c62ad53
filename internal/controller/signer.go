// Package controller wires the Linkerd signing policy into cert-manager's
// issuer-lib: Check reports whether an issuer's trust anchor is usable, Sign
// signs an approved request with it, and a Secret watch re-checks issuers
// when their anchor changes.
package controller

import (
	"context"
	"fmt"
	"slices"

	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// Signer implements issuer-lib's Check and Sign for both issuer kinds.
type Signer struct {
	// Client reads issuers' anchor Secrets, from a cache scoped to
	// WatchNamespaces.
	Client client.Reader
	// ClusterResourceNamespace is where LinkerdCAClusterIssuers' anchors live.
	ClusterResourceNamespace string
	// WatchNamespaces are the namespaces whose Secrets may be read.
	WatchNamespaces []string
	// EventRecorder reports capped lifetimes on requests.
	EventRecorder events.EventRecorder
	Clock         clock.PassiveClock
}

// Check is issuer-lib's readiness check: the issuer is Ready when its trust
// anchor Secret exists and holds an anchor that can sign. Every failure is
// retryable: fixing the Secret fixes the issuer, and the Secret watch
// re-checks it as soon as that happens.
func (s *Signer) Check(ctx context.Context, issuer issuerapi.Issuer) error {
	_, err := s.loadAnchor(ctx, issuer)
	return err
}

// Sign signs an approved CertificateRequest or CertificateSigningRequest. A
// policy refusal fails the request for good; an anchor that went bad since
// the last Check sends the issuer back to be checked.
func (s *Signer) Sign(ctx context.Context, req issuersigner.CertificateRequestObject, issuer issuerapi.Issuer) (issuersigner.PEMBundle, error) {
	anchor, err := s.loadAnchor(ctx, issuer)
	if err != nil {
		return issuersigner.PEMBundle{}, issuersigner.IssuerError{Err: err}
	}
	details, err := req.GetCertificateDetails()
	if err != nil {
		return issuersigner.PEMBundle{}, issuersigner.PermanentError{Err: fmt.Errorf("reading the request: %w", err)}
	}
	issued, err := signer.Sign(PolicyFor(issuer), anchor, details, s.Clock.Now())
	if err != nil {
		return issuersigner.PEMBundle{}, err
	}
	if issued.CappedAt != nil {
		s.warnCapped(req, details.Duration.String(), issued)
	}
	return issuersigner.PEMBundle{ChainPEM: issued.CertificatePEM, CAPEM: issued.CAPEM}, nil
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
		asked, issued.CappedAt.UTC().Format("2006-01-02T15:04:05Z"))
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

// AnchorSecret is where an issuer's trust anchor lives.
func (s *Signer) AnchorSecret(issuer issuerapi.Issuer) types.NamespacedName {
	ns := issuer.GetNamespace()
	if _, cluster := issuer.(*v1alpha1.LinkerdCAClusterIssuer); cluster {
		ns = s.ClusterResourceNamespace
	}
	return types.NamespacedName{Namespace: ns, Name: specOf(issuer).TrustAnchorSecretName}
}

func (s *Signer) loadAnchor(ctx context.Context, issuer issuerapi.Issuer) (*signer.Anchor, error) {
	ref := s.AnchorSecret(issuer)
	if !slices.Contains(s.WatchNamespaces, ref.Namespace) {
		return nil, fmt.Errorf("trust anchor Secret %s: namespace %q is not watched by the controller (watched: %v); add it to --watch-namespaces (Helm value watchNamespaces)", ref, ref.Namespace, s.WatchNamespaces)
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
	return anchor, nil
}
