// Package controller wires the Linkerd signing policy into cert-manager's
// issuer-lib: Check reports whether an issuer's trust anchor is usable and
// trusted by Linkerd, Sign signs an approved request with it, and watches on
// the anchor Secret and Linkerd's trust roots ConfigMap re-check issuers
// when either changes.
package controller

import (
	"context"
	"fmt"
	"time"

	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	"github.com/go-logr/logr"
	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/clock"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/anchorkey"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/metrics"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// DefaultAnchorExpiryWarning is linkerd check's "trust anchors are valid for
// at least 60 days".
const DefaultAnchorExpiryWarning = 60 * 24 * time.Hour

// Signer implements issuer-lib's Check and Sign for both issuer kinds.
type Signer struct {
	// Client reads Secrets' metadata and trust roots ConfigMaps from a cache
	// scoped to WatchNamespaces, and applies issuers' status.trustAnchor.
	Client client.Client
	// Secrets reads a whole anchor Secret, once per revision, from the API
	// server: no Secret's data is cached.
	Secrets client.Reader
	// ClusterResourceNamespace is where LinkerdCAClusterIssuers' anchors live.
	ClusterResourceNamespace string
	// WatchNamespaces are the namespaces whose Secrets and ConfigMaps may be
	// read.
	WatchNamespaces []string
	// CSRRequesters are the users whose Kubernetes CertificateSigningRequests
	// may be signed.
	CSRRequesters []string
	// AnchorExpiryWarning is how long before its anchor expires an issuer
	// warns.
	AnchorExpiryWarning time.Duration
	// Audit is the audit trail's logger (Options.AuditLog).
	Audit logr.Logger
	// EventRecorder reports capped lifetimes and anchor warnings.
	EventRecorder events.EventRecorder
	Clock         clock.PassiveClock
	// Rotation: the rotation controller runs, and issuers with
	// spec.rotation sign under the root its status names.
	Rotation bool
	// Keys opens the trust anchor keys of issuers with spec.kms.
	Keys anchorkey.Opener

	parsed parsed
	// confirmations confirm anchor Secrets' revisions for signing.
	confirmations confirmations
	// unrecorded are first-sight signatures whose write was refused.
	unrecorded sightings
}

// Check is issuer-lib's readiness check: the issuer is Ready when its trust
// anchor Secret holds an anchor that can sign a chain Linkerd accepts and,
// once Linkerd is installed, is among the roots Linkerd trusts. Every failure
// is retryable: fixing the Secret or the bundle fixes the issuer, and the
// watches re-check it as soon as that happens.
func (s *Signer) Check(ctx context.Context, issuer issuerapi.Issuer) error {
	iss, err := generic(issuer)
	if err != nil {
		return err
	}
	err = s.check(ctx, iss)
	kind, name := IssuerLabels(iss)
	metrics.Ready(kind, name, err == nil)
	return err
}

func (s *Signer) check(ctx context.Context, iss v1alpha1.GenericIssuer) error {
	p := s.policyFor(iss)
	anchor, err := s.readAnchor(ctx, iss, p, false)
	if err != nil {
		s.reportUnusable(ctx, iss, err)
		return err
	}
	t, err := s.readTrust(ctx, iss, anchor)
	s.reportAnchor(ctx, iss, p, anchor, t)
	if err != nil {
		return err
	}
	return t.blocksSigning()
}

// Sign signs an approved CertificateRequest or CertificateSigningRequest. A
// policy refusal fails the request for good; an anchor that went bad since
// the last Check sends the issuer back to be checked.
func (s *Signer) Sign(ctx context.Context, cr issuersigner.CertificateRequestObject, issuer issuerapi.Issuer) (issuersigner.PEMBundle, error) {
	iss, err := generic(issuer)
	if err != nil {
		return issuersigner.PEMBundle{}, err
	}
	p := s.policyFor(iss)
	anchor, t, err := s.prepare(ctx, iss, p)
	if err != nil {
		return issuersigner.PEMBundle{}, err
	}
	req, err := requestOf(cr)
	if err != nil {
		s.auditRefused(ctx, cr, iss, &signer.Refusal{Rule: "request", Reason: err.Error()})
		return issuersigner.PEMBundle{}, issuersigner.PermanentError{Err: fmt.Errorf("reading the request: %w", err)}
	}
	start, recorded := validityStart(cr)
	if recorded {
		if err := checkValidityStart(cr, start, s.Clock.Now()); err != nil {
			return s.refused(ctx, cr, iss, &signer.Refusal{Rule: signer.RuleValidity, Reason: err.Error()})
		}
	}
	if !recorded {
		// A request the policy refuses gets no validity start.
		if _, err := p.Check(req); err != nil {
			return s.refused(ctx, cr, iss, err)
		}
		if start, err = s.recordValidityStart(ctx, cr); err != nil {
			return issuersigner.PEMBundle{}, err
		}
	}
	req.Start = start
	return s.issue(ctx, cr, iss, p, anchor, t, req)
}

// generic is the issuer as both kinds share it. issuer-lib hands over only
// the types registered in Setup, which all implement it.
func generic(issuer issuerapi.Issuer) (v1alpha1.GenericIssuer, error) {
	iss, ok := issuer.(v1alpha1.GenericIssuer)
	if !ok {
		return nil, fmt.Errorf("issuer %s has unexpected type %T", issuer.GetName(), issuer)
	}
	return iss, nil
}

// requestOf is what a CertificateRequest or a Kubernetes
// CertificateSigningRequest asks for. A CSR has no namespace; its requester
// stands in for one.
func requestOf(cr issuersigner.CertificateRequestObject) (signer.Request, error) {
	d, err := cr.GetCertificateDetails()
	if err != nil {
		return signer.Request{}, err
	}
	req := signer.Request{
		ID: string(cr.GetUID()), Namespace: cr.GetNamespace(), CSR: d.CSR, Duration: d.Duration,
		IsCA: d.IsCA, KeyUsage: d.KeyUsage, ExtKeyUsage: d.ExtKeyUsage,
	}
	// issuer-lib wraps the API object; its DeepCopyObject is that object.
	if obj, ok := cr.(runtime.Object); ok && req.Namespace == "" {
		if csr, ok := obj.DeepCopyObject().(*certificatesv1.CertificateSigningRequest); ok {
			req.Requester = csr.Spec.Username
		}
	}
	return req, nil
}

// PolicyFor is the signing policy an issuer's spec sets. The CRD schema
// defaults every field; the fallbacks cover objects written around it. A
// cluster issuer signs only for its control plane's namespace.
func PolicyFor(iss v1alpha1.GenericIssuer, csrRequesters []string) signer.Policy {
	spec := iss.GetSpec()
	p := signer.Policy{
		TrustDomain:           spec.TrustDomain,
		ControlPlaneNamespace: spec.ControlPlaneNamespace,
		MinDuration:           v1alpha1.DefaultMinDuration,
		MaxDuration:           v1alpha1.DefaultMaxDuration,
		Requesters:            csrRequesters,
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
	if iss.IsClusterScoped() {
		p.Namespace = p.ControlPlaneNamespace
	}
	return p
}

func (s *Signer) policyFor(iss v1alpha1.GenericIssuer) signer.Policy {
	return PolicyFor(iss, s.CSRRequesters)
}

// IssuerLabels are an issuer's metric labels: its kind, and namespace/name
// (name alone for a cluster issuer).
func IssuerLabels(iss v1alpha1.GenericIssuer) (kind, name string) {
	if iss.IsClusterScoped() {
		return iss.IssuerKind(), iss.GetName()
	}
	return iss.IssuerKind(), iss.GetNamespace() + "/" + iss.GetName()
}
