package controller

import (
	"context"
	"time"

	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	"github.com/go-logr/logr"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/metrics"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// The audit trail: one log line at the default level for every certificate
// the trust anchor signs and for every request refused, so what the root
// signed can be told from the logs alone. Fingerprints and serials only:
// never key material, nor the CSR.

func (s *Signer) auditSigned(ctx context.Context, cr issuersigner.CertificateRequestObject, iss v1alpha1.GenericIssuer, anchor *signer.Anchor, issued *signer.Issued, took time.Duration) {
	kind, name := IssuerLabels(iss)
	metrics.Signed(kind, name, took, issued.NotAfter)
	s.auditLog(ctx).Info("signed",
		"request", requestName(cr), "requestKind", requestKind(cr),
		"issuerKind", kind, "issuer", name,
		"serial", issued.Certificate.SerialNumber.Text(16),
		"notAfter", issued.NotAfter.UTC().Format(time.RFC3339),
		"sha256", signer.Fingerprint(issued.Certificate),
		"anchorSHA256", signer.Fingerprint(anchor.Certificate))
}

func (s *Signer) auditRefused(ctx context.Context, cr issuersigner.CertificateRequestObject, iss v1alpha1.GenericIssuer, refusal *signer.Refusal) {
	kind, name := IssuerLabels(iss)
	metrics.Refused(kind, name, refusal.Rule)
	s.auditLog(ctx).Info("refused",
		"request", requestName(cr), "requestKind", requestKind(cr),
		"issuerKind", kind, "issuer", name,
		"rule", refusal.Rule, "reason", refusal.Reason)
}

// auditLog is the unsampled audit logger, or the request's.
func (s *Signer) auditLog(ctx context.Context) logr.Logger {
	if s.Audit.GetSink() != nil {
		return s.Audit
	}
	return ctrl.LoggerFrom(ctx).WithName("audit")
}

func requestName(cr issuersigner.CertificateRequestObject) string {
	if cr.GetNamespace() == "" {
		return cr.GetName()
	}
	return cr.GetNamespace() + "/" + cr.GetName()
}

// requestKind tells the two request kinds apart: only a CertificateRequest
// has a namespace.
func requestKind(cr issuersigner.CertificateRequestObject) string {
	if cr.GetNamespace() == "" {
		return "CertificateSigningRequest"
	}
	return "CertificateRequest"
}
