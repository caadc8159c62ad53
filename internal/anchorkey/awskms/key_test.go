package awskms

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// fakeKMS answers as AWS KMS does for one asymmetric key: DescribeKey,
// GetPublicKey (the SubjectPublicKeyInfo DER) and Sign of a digest (ASN.1
// DER for ECDSA, PKCS #1 v1.5 for RSA). It checks what it is sent.
type fakeKMS struct {
	t       *testing.T
	key     crypto.Signer
	spec    types.KeySpec
	usage   types.KeyUsageType
	state   types.KeyState
	signErr error
	signs   int
}

func (f *fakeKMS) DescribeKey(_ context.Context, in *kms.DescribeKeyInput, _ ...func(*kms.Options)) (*kms.DescribeKeyOutput, error) {
	return &kms.DescribeKeyOutput{KeyMetadata: &types.KeyMetadata{KeyId: in.KeyId, KeyState: f.state, KeySpec: f.spec, KeyUsage: f.usage}}, nil
}

func (f *fakeKMS) GetPublicKey(_ context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	der, err := x509.MarshalPKIXPublicKey(f.key.Public())
	if err != nil {
		f.t.Fatal(err)
	}
	algs := []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecRsassaPssSha256, types.SigningAlgorithmSpecRsassaPkcs1V15Sha256}
	if _, ec := f.key.(*ecdsa.PrivateKey); ec {
		algs = []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha256}
		if f.spec == types.KeySpecEccNistP384 {
			algs = []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEcdsaSha384}
		}
	}
	return &kms.GetPublicKeyOutput{KeyId: in.KeyId, PublicKey: der, KeySpec: f.spec, KeyUsage: f.usage, SigningAlgorithms: algs}, nil
}

func (f *fakeKMS) Sign(_ context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	f.signs++
	if f.signErr != nil {
		return nil, f.signErr
	}
	if in.MessageType != types.MessageTypeDigest || len(in.Message) != sha256.Size {
		f.t.Errorf("Sign of a %s message of %d bytes; want a SHA-256 DIGEST", in.MessageType, len(in.Message))
	}
	switch k := f.key.(type) {
	case *ecdsa.PrivateKey:
		if in.SigningAlgorithm != types.SigningAlgorithmSpecEcdsaSha256 {
			f.t.Errorf("algorithm %s", in.SigningAlgorithm)
		}
		sig, err := ecdsa.SignASN1(rand.Reader, k, in.Message)
		return &kms.SignOutput{Signature: sig, SigningAlgorithm: in.SigningAlgorithm}, err
	case *rsa.PrivateKey:
		if in.SigningAlgorithm != types.SigningAlgorithmSpecRsassaPkcs1V15Sha256 {
			f.t.Errorf("algorithm %s", in.SigningAlgorithm)
		}
		sig, err := rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, in.Message)
		return &kms.SignOutput{Signature: sig, SigningAlgorithm: in.SigningAlgorithm}, err
	}
	return nil, errors.New("unexpected key")
}

func newFake(t *testing.T, spec types.KeySpec) *fakeKMS {
	t.Helper()
	var key crypto.Signer
	var err error
	switch spec {
	case types.KeySpecEccNistP256:
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case types.KeySpecEccNistP384:
		key, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	default:
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &fakeKMS{t: t, key: key, spec: spec, usage: types.KeyUsageTypeSignVerify, state: types.KeyStateEnabled}
}

// selfSigned is a root CA certificate made with k, as `linkerd-ca
// trust-anchor create --kms` makes it: x509 hashes, the KMS signs.
func selfSigned(t *testing.T, k crypto.Signer) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "root.linkerd.cluster.local"},
		NotBefore: time.Now().Add(-time.Minute), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatalf("signing through the KMS: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestKeySignsCertificates(t *testing.T) {
	for _, spec := range []types.KeySpec{types.KeySpecEccNistP256, types.KeySpecRsa2048} {
		t.Run(string(spec), func(t *testing.T) {
			f := newFake(t, spec)
			k, err := Open(context.Background(), f, "alias/root")
			if err != nil {
				t.Fatal(err)
			}
			cert := selfSigned(t, k)
			if err := cert.CheckSignatureFrom(cert); err != nil {
				t.Errorf("the KMS's signature does not verify: %v", err)
			}
			want := map[types.KeySpec]x509.SignatureAlgorithm{types.KeySpecEccNistP256: x509.ECDSAWithSHA256, types.KeySpecRsa2048: x509.SHA256WithRSA}[spec]
			if cert.SignatureAlgorithm != want {
				t.Errorf("signature algorithm %s, want %s", cert.SignatureAlgorithm, want)
			}
			if f.signs != 1 {
				t.Errorf("%d Sign calls for one certificate, want 1", f.signs)
			}
		})
	}
}

func TestKeyRefusesOtherHashes(t *testing.T) {
	k, err := Open(context.Background(), newFake(t, types.KeySpecEccNistP256), "alias/root")
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("x"))
	if _, err := k.Sign(nil, digest[:], crypto.SHA384); err == nil || !strings.Contains(err.Error(), "SHA-256 digests only") {
		t.Errorf("signing for SHA-384: %v", err)
	}
	if _, err := k.Sign(nil, digest[:], &rsa.PSSOptions{Hash: crypto.SHA256}); err == nil {
		t.Error("signed with RSA-PSS options")
	}
}

func TestOpenRefusesKeysThatCannotBeAnAnchor(t *testing.T) {
	tests := []struct {
		name   string
		change func(*fakeKMS)
		want   string
	}{
		{"P-384", func(f *fakeKMS) { *f = *newFake(f.t, types.KeySpecEccNistP384) }, "has key spec ECC_NIST_P384; Linkerd's trust anchors are ECDSA P-256 or RSA"},
		{"disabled", func(f *fakeKMS) { f.state = types.KeyStateDisabled }, "alias/root is Disabled; it must be Enabled"},
		{"pending deletion", func(f *fakeKMS) { f.state = types.KeyStatePendingDeletion }, "is PendingDeletion"},
		{"encryption key", func(f *fakeKMS) { f.usage = types.KeyUsageTypeEncryptDecrypt }, "has key usage ENCRYPT_DECRYPT; a trust anchor's key must be SIGN_VERIFY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, types.KeySpecEccNistP256)
			tc.change(f)
			_, err := Open(context.Background(), f, "alias/root")
			var keyErr *KeyError
			if !errors.As(err, &keyErr) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Open: %v; want a KeyError saying %q", err, tc.want)
			}
		})
	}
}

func TestSignFailuresSayWhatToFix(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		want      string
		permanent bool
	}{
		{"access denied", &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "not authorized"}, "lacks kms:Sign on it; allow it in the key policy", false},
		{"disabled since", &smithy.GenericAPIError{Code: "DisabledException", Message: "key is disabled"}, "must be Enabled", true},
		{"throttled", &smithy.GenericAPIError{Code: "ThrottlingException", Message: "slow down"}, "ThrottlingException: slow down", false},
		{"unreachable", fmt.Errorf("dial tcp 127.0.0.1:1: connect: connection refused"), "could not be reached for Sign on key alias/root", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake(t, types.KeySpecEccNistP256)
			k, err := Open(context.Background(), f, "alias/root")
			if err != nil {
				t.Fatal(err)
			}
			f.signErr = tc.err
			digest := sha256.Sum256([]byte("tbs"))
			_, err = k.Sign(nil, digest[:], crypto.SHA256)
			var keyErr *KeyError
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.As(err, &keyErr) != tc.permanent {
				t.Errorf("Sign: %v; want %q, a KeyError: %v", err, tc.want, tc.permanent)
			}
		})
	}
}
