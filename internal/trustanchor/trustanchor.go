// Package trustanchor makes a trust anchor fit for Linkerd: a self-signed
// ECDSA P-256 root CA, as `step certificate create --profile root-ca` makes
// in Linkerd's guide.
package trustanchor

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// DefaultCommonName is the subject of the root in Linkerd's guides since
// 2021: distinct from the identity issuer's identity.linkerd.cluster.local,
// so no verifier can confuse the two.
const DefaultCommonName = "root.linkerd.cluster.local"

// DefaultValidity is ten years: a root outlives many issuer rotations, and
// replacing it is the rotation docs/rotation.md describes.
const DefaultValidity = 10 * 365 * 24 * time.Hour

// PEM is a trust anchor as its kubernetes.io/tls Secret holds it.
type PEM struct {
	Certificate []byte // tls.crt
	Key         []byte // tls.key (PKCS#8)
}

// Create makes a root CA valid from now (backdated a minute for clock skew)
// for validity: ECDSA P-256, signed ECDSA-SHA256, CA with cert sign and CRL
// sign, path length 1 (it signs issuers, which sign proxies).
func Create(commonName string, validity time.Duration, now time.Time) (*PEM, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	certPEM, err := CreateWith(key, commonName, validity, now)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodePrivateKey(key, cmapi.PKCS8)
	if err != nil {
		return nil, err
	}
	return &PEM{Certificate: certPEM, Key: keyPEM}, nil
}

// CreateWith makes the same root CA with a key kept elsewhere (a KMS, which
// signs it once), SHA-256 whatever the key: the certificate alone, PEM.
func CreateWith(key crypto.Signer, commonName string, validity time.Duration, now time.Time) ([]byte, error) {
	if commonName == "" {
		return nil, fmt.Errorf("the common name must not be empty")
	}
	if validity < time.Hour {
		return nil, fmt.Errorf("validity %s is too short for a trust anchor; use at least 1h (default %s)", validity, DefaultValidity)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: commonName},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	switch key.Public().(type) {
	case *ecdsa.PublicKey:
		tmpl.SignatureAlgorithm = x509.ECDSAWithSHA256
	case *rsa.PublicKey:
		tmpl.SignatureAlgorithm = x509.SHA256WithRSA
	default:
		return nil, fmt.Errorf("a %T key cannot be a Linkerd trust anchor's; use ECDSA P-256 or RSA", key.Public())
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("signing the trust anchor: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}
