package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// Size limits checked before any PEM decoding, so a hostile or mistaken
// Secret costs nothing to refuse (cert-manager bounds its decoders the same
// way since GHSA-r4pg-vg54-wxx4). A 4096-bit RSA root is under 2.5 KiB and
// its key under 3.5 KiB.
const (
	MaxAnchorCertificateBytes = 16 << 10
	MaxAnchorKeyBytes         = 16 << 10
)

// Anchor is a trust anchor fit to sign Linkerd identity issuers.
type Anchor struct {
	Certificate *x509.Certificate
	Key         crypto.Signer
	// PEM is the certificate alone, as ca.crt carries it.
	PEM []byte
}

// AnchorError says what is wrong with a trust anchor and how to fix it.
type AnchorError struct{ Reason string }

func (e *AnchorError) Error() string { return e.Reason }

func badAnchor(format string, args ...any) error {
	return &AnchorError{Reason: fmt.Sprintf(format, args...)}
}

// ParseAnchor decodes a trust anchor from the tls.crt and tls.key of its
// Secret and checks that it can sign a Linkerd identity issuer at now: one CA
// certificate with cert sign, valid now, with a key Linkerd accepts for trust
// anchors (ECDSA P-256 or RSA 2048/4096, signed with SHA-256), and the
// matching private key.
func ParseAnchor(certPEM, keyPEM []byte, now time.Time) (*Anchor, error) {
	switch {
	case len(keyPEM) == 0:
		return nil, badAnchor("tls.key is missing or empty; put the trust anchor private key (PEM) in tls.key")
	case len(keyPEM) > MaxAnchorKeyBytes:
		return nil, badAnchor("tls.key is %d bytes, over the %d byte limit; it must hold only the trust anchor private key", len(keyPEM), MaxAnchorKeyBytes)
	}
	cert, err := parseAnchorCertificate(certPEM, now)
	if err != nil {
		return nil, err
	}
	key, err := pki.DecodePrivateKeyBytes(keyPEM)
	if err != nil {
		return nil, badAnchor("tls.key does not decode as a PEM private key: %v", err)
	}
	if ok, err := pki.PublicKeyMatchesCertificate(key.Public(), cert); err != nil || !ok {
		return nil, badAnchor("tls.key does not match the certificate in tls.crt; store the private key of that certificate")
	}
	return newAnchor(cert, key), nil
}

// AnchorWithKey is ParseAnchor for a key kept outside the cluster, in a
// KMS: the certificate is checked the same way, and the key, described by
// keyRef in messages, must be the certificate's.
func AnchorWithKey(certPEM []byte, key crypto.Signer, keyRef string, now time.Time) (*Anchor, error) {
	cert, err := parseAnchorCertificate(certPEM, now)
	if err != nil {
		return nil, err
	}
	if ok, err := pki.PublicKeyMatchesCertificate(key.Public(), cert); err != nil || !ok {
		return nil, badAnchor("the KMS key %s is not the key of the anchor's certificate: its public key differs; name the certificate's key in spec.kms, or store the certificate made with this key (linkerd-ca trust-anchor create --kms)", keyRef)
	}
	// The certificate sits in a Secret or ConfigMap beside a key that never
	// leaves the KMS; anyone who may write that object could put there
	// another certificate with the same public key (another subject, key
	// identifier or validity) and break every chain, or stop renewals. Only
	// one the key signed itself is taken: that needs the KMS.
	if err := cert.CheckSignatureFrom(cert); err != nil {
		return nil, badAnchor("the anchor's certificate is not signed by its own key %s (%v): a certificate whose key is in a KMS is taken only as that key signed it, so that one written beside it cannot change the root; make it with linkerd-ca trust-anchor create --kms", keyRef, err)
	}
	return newAnchor(cert, key), nil
}

func newAnchor(cert *x509.Certificate, key crypto.Signer) *Anchor {
	return &Anchor{Certificate: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})}
}

func parseAnchorCertificate(certPEM []byte, now time.Time) (*x509.Certificate, error) {
	switch {
	case len(certPEM) == 0:
		return nil, badAnchor("tls.crt is missing or empty; put the trust anchor certificate (PEM) in tls.crt")
	case len(certPEM) > MaxAnchorCertificateBytes:
		return nil, badAnchor("tls.crt is %d bytes, over the %d byte limit; it must hold only the trust anchor certificate", len(certPEM), MaxAnchorCertificateBytes)
	}
	certs, err := pki.DecodeX509CertificateChainBytes(certPEM)
	if err != nil {
		return nil, badAnchor("tls.crt does not decode as a PEM certificate: %v", err)
	}
	if len(certs) != 1 {
		return nil, badAnchor("tls.crt holds %d certificates; it must hold exactly one, the trust anchor (root CA) Linkerd trusts", len(certs))
	}
	if err := checkAnchorCertificate(certs[0], now); err != nil {
		return nil, err
	}
	return certs[0], nil
}

func checkAnchorCertificate(cert *x509.Certificate, now time.Time) error {
	if !cert.BasicConstraintsValid || !cert.IsCA {
		return badAnchor("the certificate in tls.crt is not a CA (basic constraints CA:TRUE missing); a trust anchor must be a root CA")
	}
	if cert.KeyUsage&x509.KeyUsageCertSign == 0 {
		return badAnchor("the certificate in tls.crt lacks the cert sign key usage; a trust anchor must be allowed to sign certificates")
	}
	if cert.MaxPathLen == 0 && cert.MaxPathLenZero {
		return badAnchor("the certificate in tls.crt has path length 0, so the issuer it signs could not sign proxy certificates; create the trust anchor without a path length limit (or with 1 or more)")
	}
	if len(cert.ExtKeyUsage) > 0 && !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageAny) &&
		(!slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageServerAuth) || !slices.Contains(cert.ExtKeyUsage, x509.ExtKeyUsageClientAuth)) {
		return badAnchor("the certificate in tls.crt restricts extended key usages without both server auth and client auth; Linkerd proxies would reject every certificate under it")
	}
	if err := CheckAnchorValidity(cert, now); err != nil {
		return err
	}
	if err := CheckAnchorAlgorithm(cert); err != nil {
		return badAnchor("the certificate in tls.crt %v", err)
	}
	return nil
}

// CheckAnchorValidity is the anchor's validity period at now, the one check
// of ParseAnchor that changes with time: a parsed anchor kept for later must
// pass it again.
func CheckAnchorValidity(cert *x509.Certificate, now time.Time) error {
	if now.Before(cert.NotBefore) {
		return badAnchor("the certificate in tls.crt is not valid until %s; wait, or fix the clock that made it", cert.NotBefore.UTC().Format(time.RFC3339))
	}
	if now.After(cert.NotAfter) {
		return badAnchor("the certificate in tls.crt expired at %s; create a new trust anchor and rotate Linkerd's trust roots", cert.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

// CheckAnchorAlgorithm is `linkerd check`'s "trust anchors are using
// supported crypto algorithm". The error reads after "the certificate".
func CheckAnchorAlgorithm(cert *x509.Certificate) error {
	const allowed = "Linkerd accepts trust anchors with ECDSA P-256 or RSA 2048/4096 keys, signed with ECDSA-SHA256 or SHA256-RSA"
	switch k := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			return fmt.Errorf("has an %s key; %s", DescribeKey(k), allowed)
		}
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits != 2048 && bits != 4096 {
			return fmt.Errorf("has an %s key; %s", DescribeKey(k), allowed)
		}
	default:
		return fmt.Errorf("has %s key; %s", DescribeKey(cert.PublicKey), allowed)
	}
	if cert.SignatureAlgorithm != x509.ECDSAWithSHA256 && cert.SignatureAlgorithm != x509.SHA256WithRSA {
		return fmt.Errorf("is signed with %s; %s", cert.SignatureAlgorithm, allowed)
	}
	return nil
}
