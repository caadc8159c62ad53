// Package anchorkey opens trust anchor keys kept outside the cluster, in a
// KMS, as crypto.Signers. The signer and the policy see only a
// crypto.Signer: another provider (GCP KMS, Azure Key Vault, Vault transit,
// PKCS #11) is one more Opener here, and touches neither.
package anchorkey

import (
	"context"
	"crypto"
	"fmt"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// Opener opens the key an issuer's spec.kms names, checked fit to sign as a
// Linkerd trust anchor. It is called once per anchor revision; the
// crypto.Signer it returns makes one KMS call per signature.
type Opener interface {
	Open(ctx context.Context, ref *v1alpha1.KMSKey) (crypto.Signer, error)
}

// Providers opens a key with the provider its reference names.
type Providers struct {
	// AWS opens keys in AWS KMS (awskms.Provider).
	AWS Opener
}

// Open implements Opener.
func (p Providers) Open(ctx context.Context, ref *v1alpha1.KMSKey) (crypto.Signer, error) {
	switch {
	case ref == nil:
		return nil, fmt.Errorf("no KMS key named")
	case ref.AWS != nil && p.AWS != nil:
		return p.AWS.Open(ctx, ref)
	}
	return nil, fmt.Errorf("spec.kms names %s, a provider this controller does not have; set spec.kms.aws", ref)
}
