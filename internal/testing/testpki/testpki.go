// Package testpki makes the certificates and requests tests need: trust
// anchors with chosen lifetimes, and requests shaped the way cert-manager
// builds them from the guide's Certificate.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/trustanchor"
)

// IdentityCommonName is the default Linkerd identity issuer name.
const IdentityCommonName = "identity.linkerd.cluster.local"

// SeedCertificate is the linkerd-identity-issuer Certificate of Linkerd's
// "automatically rotating control plane TLS credentials" guide, with its
// issuerRef left for the caller.
func SeedCertificate(namespace string) *cmapi.Certificate {
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd-identity-issuer", Namespace: namespace},
		Spec: cmapi.CertificateSpec{
			SecretName:  "linkerd-identity-issuer",
			Duration:    &metav1.Duration{Duration: 24 * time.Hour},
			RenewBefore: &metav1.Duration{Duration: time.Hour},
			CommonName:  IdentityCommonName,
			DNSNames:    []string{IdentityCommonName},
			IsCA:        true,
			PrivateKey:  &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm},
			Usages:      []cmapi.KeyUsage{cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageServerAuth, cmapi.UsageClientAuth},
		},
	}
}

// Anchor is a trust anchor in the PEM form its Secret holds.
type Anchor struct {
	Certificate *x509.Certificate
	Key         crypto.Signer
	CertPEM     []byte
	KeyPEM      []byte
}

// NewAnchor makes a trust anchor with linkerd-ca's own maker, subject
// CN=root.linkerd.cluster.local, valid from notBefore to notAfter.
func NewAnchor(notBefore, notAfter time.Time) (*Anchor, error) {
	return NewAnchorNamed(trustanchor.DefaultCommonName, notBefore, notAfter)
}

// NewAnchorNamed makes a trust anchor with subject CN=commonName.
func NewAnchorNamed(commonName string, notBefore, notAfter time.Time) (*Anchor, error) {
	now := notBefore.Add(time.Minute) // trustanchor backdates by a minute
	p, err := trustanchor.Create(commonName, notAfter.Sub(now), now)
	if err != nil {
		return nil, err
	}
	cert, err := pki.DecodeX509CertificateBytes(p.Certificate)
	if err != nil {
		return nil, err
	}
	key, err := pki.DecodePrivateKeyBytes(p.Key)
	if err != nil {
		return nil, err
	}
	return &Anchor{Certificate: cert, Key: key, CertPEM: p.Certificate, KeyPEM: p.Key}, nil
}

// NewAnchorWith makes a self-signed ECDSA P-256 root CA like NewAnchor's,
// after mutate has changed its template: for anchors that parse and can
// sign, but carry constraints that break Linkerd's chain.
func NewAnchorWith(mutate func(*x509.Certificate), notBefore, notAfter time.Time) (*Anchor, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: trustanchor.DefaultCommonName},
		NotBefore: notBefore, NotAfter: notAfter,
		BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	mutate(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := pki.EncodePKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Anchor{Certificate: cert, Key: key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: keyPEM}, nil
}

// Renewed is a new copy of the anchor with the same key and subject (what
// cert-manager's rotationPolicy Never makes of a renewal): another
// serial, another validity, another fingerprint.
func (a *Anchor) Renewed(notBefore, notAfter time.Time) (*Anchor, error) {
	tmpl := *a.Certificate
	tmpl.SerialNumber = new(big.Int).Add(a.Certificate.SerialNumber, big.NewInt(1))
	tmpl.NotBefore, tmpl.NotAfter = notBefore, notAfter
	der, err := x509.CreateCertificate(rand.Reader, &tmpl, &tmpl, a.Key.Public(), a.Key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Anchor{Certificate: cert, Key: a.Key, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), KeyPEM: a.KeyPEM}, nil
}

// CSRFor returns a PEM CSR for crt the way cert-manager generates it, and
// the private key it carries.
func CSRFor(crt *cmapi.Certificate) ([]byte, crypto.Signer, error) {
	key, err := pki.GeneratePrivateKeyForCertificate(crt)
	if err != nil {
		return nil, nil, err
	}
	tmpl, err := pki.GenerateCSR(crt)
	if err != nil {
		return nil, nil, err
	}
	der, err := pki.EncodeCSR(tmpl, key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key, nil
}
