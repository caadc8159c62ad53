package controller

import (
	"context"
	"errors"

	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// prepare reads what every signature needs: the anchor, confirmed against
// its Secret's current revision, and Linkerd's trust roots, which must not
// block signing. A failure sends the issuer back to be checked.
func (s *Signer) prepare(ctx context.Context, iss v1alpha1.GenericIssuer, p signer.Policy) (*signer.Anchor, trust, error) {
	anchor, err := s.readAnchor(ctx, iss, p, true)
	if err != nil {
		return nil, trust{}, issuersigner.IssuerError{Err: err}
	}
	t, err := s.readTrust(ctx, iss, anchor)
	if err == nil {
		err = t.blocksSigning()
	}
	if err != nil {
		return nil, trust{}, issuersigner.IssuerError{Err: err}
	}
	return anchor, t, nil
}

// issue signs req, from its start, with the anchor, and audits the
// signature or the refusal.
func (s *Signer) issue(ctx context.Context, cr issuersigner.CertificateRequestObject, iss v1alpha1.GenericIssuer, p signer.Policy, anchor *signer.Anchor, t trust, req signer.Request) (issuersigner.PEMBundle, error) {
	began := s.Clock.Now()
	issued, err := signer.Sign(p, anchor, req, began)
	if kmsErr := s.kmsFailed(iss, err); kmsErr != nil {
		return issuersigner.PEMBundle{}, issuersigner.IssuerError{Err: kmsErr}
	}
	if err != nil {
		return s.refused(ctx, cr, iss, err)
	}
	s.auditSigned(ctx, cr, iss, anchor, issued, s.Clock.Since(began))
	if issued.CappedAt != nil {
		s.warnCapped(cr, req.Duration, issued)
	}
	return issuersigner.PEMBundle{ChainPEM: issued.CertificatePEM, CAPEM: t.caPEM}, nil
}

// refused fails a request the policy refuses for good, with an audit line;
// any other error is retried.
func (s *Signer) refused(ctx context.Context, cr issuersigner.CertificateRequestObject, iss v1alpha1.GenericIssuer, err error) (issuersigner.PEMBundle, error) {
	if refusal := (*signer.Refusal)(nil); errors.As(err, &refusal) {
		s.auditRefused(ctx, cr, iss, refusal)
		return issuersigner.PEMBundle{}, issuersigner.PermanentError{Err: err}
	}
	return issuersigner.PEMBundle{}, err
}
