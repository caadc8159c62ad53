package controller

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// parseAnchor is the anchor an anchor Secret holds: its certificate and key,
// or, with spec.kms, its certificate and the KMS key.
func (s *Signer) parseAnchor(ctx context.Context, kms *v1alpha1.KMSKey, secret *corev1.Secret, now time.Time) (*signer.Anchor, error) {
	if kms == nil {
		return signer.ParseAnchor(secret.Data[corev1.TLSCertKey], secret.Data[corev1.TLSPrivateKeyKey], now)
	}
	// A copy of the key beside the certificate would make the KMS pointless.
	if len(secret.Data[corev1.TLSPrivateKeyKey]) > 0 {
		return nil, &signer.AnchorError{Reason: fmt.Sprintf("it holds tls.key, but spec.kms keeps the trust anchor's key in %s; remove tls.key (and every other copy of the root's key) from the cluster", kms)}
	}
	certPEM := secret.Data[corev1.TLSCertKey]
	if len(certPEM) == 0 {
		certPEM = secret.Data["ca.crt"]
	}
	return s.openKMSAnchor(ctx, kms, certPEM, now)
}

// openKMSAnchor opens the KMS key and checks it is the certificate's.
func (s *Signer) openKMSAnchor(ctx context.Context, kms *v1alpha1.KMSKey, certPEM []byte, now time.Time) (*signer.Anchor, error) {
	if s.Keys == nil {
		return nil, fmt.Errorf("spec.kms names %s, but this controller runs without KMS providers", kms)
	}
	key, err := s.Keys.Open(ctx, kms)
	if err != nil {
		return nil, err
	}
	return signer.AnchorWithKey(certPEM, key, kms.String(), now)
}

// kmsFailed is a signature the KMS did not give: the issuer goes back to be
// checked, which opens the key again and stays not Ready, with the KMS's
// reason, until the KMS answers; the request waits, it is not failed.
func (s *Signer) kmsFailed(iss v1alpha1.GenericIssuer, err error) error {
	var refusal *signer.Refusal
	kms := s.signingKMS(iss)
	if err == nil || kms == nil || errors.As(err, &refusal) {
		return nil
	}
	s.parsed.secretChanged(s.anchorKey(iss), version{})
	return fmt.Errorf("signing with the trust anchor's key %s: %w", kms, err)
}
