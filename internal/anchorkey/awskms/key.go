// Package awskms is a trust anchor key kept in AWS KMS, as a crypto.Signer:
// the private key never leaves the KMS, and each signature is one Sign call.
package awskms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// API is what a Key calls of AWS KMS; *kms.Client has it.
type API interface {
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, opts ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, opts ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
	Sign(ctx context.Context, in *kms.SignInput, opts ...func(*kms.Options)) (*kms.SignOutput, error)
}

// SignTimeout bounds one Sign call: crypto.Signer passes no context.
const SignTimeout = 30 * time.Second

// The key specs a Linkerd trust anchor may have, and the one algorithm each
// signs with: SHA-256, which Linkerd's proxies and x509 both take.
var algorithms = map[types.KeySpec]types.SigningAlgorithmSpec{
	types.KeySpecEccNistP256: types.SigningAlgorithmSpecEcdsaSha256,
	types.KeySpecRsa2048:     types.SigningAlgorithmSpecRsassaPkcs1V15Sha256,
	types.KeySpecRsa3072:     types.SigningAlgorithmSpecRsassaPkcs1V15Sha256,
	types.KeySpecRsa4096:     types.SigningAlgorithmSpecRsassaPkcs1V15Sha256,
}

// KeyError is a key that can never sign a trust anchor's certificates as it
// is: of another spec or usage, disabled, or not found. Fixing it takes a
// change to the key or to spec.kms, not a retry.
type KeyError struct{ Reason string }

func (e *KeyError) Error() string { return e.Reason }

// Key is a KMS key checked fit to sign as a Linkerd trust anchor.
type Key struct {
	api       API
	id        string
	public    crypto.PublicKey
	algorithm types.SigningAlgorithmSpec
}

// Open checks the key named by id (key ID, ARN, alias name or alias ARN):
// enabled, SIGN_VERIFY, of a spec Linkerd accepts for trust anchors, with
// its algorithm. Two calls, DescribeKey and GetPublicKey: once per anchor
// revision, not per request.
func Open(ctx context.Context, api API, id string) (*Key, error) {
	desc, err := api.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: &id})
	if err != nil {
		return nil, Explain("DescribeKey", id, err)
	}
	if m := desc.KeyMetadata; m != nil && m.KeyState != types.KeyStateEnabled {
		return nil, &KeyError{Reason: fmt.Sprintf("AWS KMS key %s is %s; it must be Enabled to sign (aws kms enable-key, or cancel its deletion)", id, m.KeyState)}
	}
	out, err := api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: &id})
	if err != nil {
		return nil, Explain("GetPublicKey", id, err)
	}
	if out.KeyUsage != types.KeyUsageTypeSignVerify {
		return nil, &KeyError{Reason: fmt.Sprintf("AWS KMS key %s has key usage %s; a trust anchor's key must be SIGN_VERIFY (create it with --key-usage SIGN_VERIFY --key-spec ECC_NIST_P256)", id, out.KeyUsage)}
	}
	alg, ok := algorithms[out.KeySpec]
	if !ok {
		return nil, &KeyError{Reason: fmt.Sprintf("AWS KMS key %s has key spec %s; Linkerd's trust anchors are ECDSA P-256 or RSA, so use ECC_NIST_P256 (recommended) or RSA_2048, RSA_3072, RSA_4096", id, out.KeySpec)}
	}
	if !slices.Contains(out.SigningAlgorithms, alg) {
		return nil, &KeyError{Reason: fmt.Sprintf("AWS KMS key %s does not offer %s (it offers %v)", id, alg, out.SigningAlgorithms)}
	}
	public, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("AWS KMS key %s: its public key does not parse: %w", id, err)
	}
	if err := checkPublic(out.KeySpec, public); err != nil {
		return nil, fmt.Errorf("AWS KMS key %s: %w", id, err)
	}
	return &Key{api: api, id: id, public: public, algorithm: alg}, nil
}

func checkPublic(spec types.KeySpec, public crypto.PublicKey) error {
	switch k := public.(type) {
	case *ecdsa.PublicKey:
		if spec == types.KeySpecEccNistP256 && k.Curve == elliptic.P256() {
			return nil
		}
	case *rsa.PublicKey:
		if spec != types.KeySpecEccNistP256 {
			return nil
		}
	}
	return fmt.Errorf("its public key (%T) is not of its key spec %s", public, spec)
}

// Public is the key's public key, as GetPublicKey gave it.
func (k *Key) Public() crypto.PublicKey { return k.public }

// Algorithm is the KMS signing algorithm the key signs with.
func (k *Key) Algorithm() types.SigningAlgorithmSpec { return k.algorithm }

// Sign has the KMS sign a SHA-256 digest: ECDSA keys return the ASN.1 DER
// signature, RSA keys the PKCS #1 v1.5 one, both as x509 wants them.
// ECDSA signatures from KMS are randomized: the same digest signed twice
// gives two valid, different signatures.
func (k *Key) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	if opts.HashFunc() != crypto.SHA256 {
		return nil, fmt.Errorf("AWS KMS key %s signs SHA-256 digests only, not %v", k.id, opts.HashFunc())
	}
	if _, pss := opts.(*rsa.PSSOptions); pss {
		return nil, fmt.Errorf("AWS KMS key %s signs with %s, not RSA-PSS", k.id, k.algorithm)
	}
	if len(digest) != crypto.SHA256.Size() {
		return nil, fmt.Errorf("a SHA-256 digest is %d bytes, not %d", crypto.SHA256.Size(), len(digest))
	}
	ctx, cancel := context.WithTimeout(context.Background(), SignTimeout)
	defer cancel()
	out, err := k.api.Sign(ctx, &kms.SignInput{KeyId: &k.id, Message: digest, MessageType: types.MessageTypeDigest, SigningAlgorithm: k.algorithm})
	if err != nil {
		return nil, Explain("Sign", k.id, err)
	}
	return out.Signature, nil
}

// Explain turns an error of a KMS call into what to fix. Refusals that
// only a change to the key or its spec.kms reference fixes are KeyErrors;
// the rest (access, throttling, the network) may pass with time or a
// policy change, and are retried.
func Explain(call, id string, err error) error {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return fmt.Errorf("AWS KMS could not be reached for %s on key %s: %w; check the network path to KMS, AWS_ENDPOINT_URL_KMS and the region", call, id, err)
	}
	switch api.ErrorCode() {
	case "AccessDeniedException":
		return fmt.Errorf("AWS KMS refused %s on key %s: the controller's AWS identity lacks kms:%s on it; allow it in the key policy or the role's policy (IRSA or EKS Pod Identity: the chart's serviceAccount.annotations): %s", call, id, call, api.ErrorMessage())
	case "NotFoundException":
		return &KeyError{Reason: fmt.Sprintf("AWS KMS key %s not found (%s): check spec.kms.aws.keyID and region: %s", id, call, api.ErrorMessage())}
	case "DisabledException", "KMSInvalidStateException":
		return &KeyError{Reason: fmt.Sprintf("AWS KMS key %s cannot be used (%s): %s; it must be Enabled (aws kms enable-key, or cancel its deletion)", id, api.ErrorCode(), api.ErrorMessage())}
	case "InvalidKeyUsageException", "UnsupportedOperationException":
		return &KeyError{Reason: fmt.Sprintf("AWS KMS key %s cannot sign (%s): %s; a trust anchor's key must be SIGN_VERIFY, ECC_NIST_P256 or RSA", id, api.ErrorCode(), api.ErrorMessage())}
	}
	return fmt.Errorf("AWS KMS %s on key %s failed: %s: %s", call, id, api.ErrorCode(), api.ErrorMessage())
}
