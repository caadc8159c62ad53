//go:build e2e

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
)

// assertLinkerdIdentityChecks asserts every rule of `linkerd check`'s
// linkerd-identity category on an identity issuer Secret (../shared/LINKERD.md),
// plus the CLI's "issuer cert is not a CA". It returns the parsed issuer
// certificate and trust anchors.
func assertLinkerdIdentityChecks(t *testing.T, s *corev1.Secret) (*x509.Certificate, []*x509.Certificate) {
	t.Helper()
	now := time.Now()

	// certificate config is valid: ca.crt, tls.crt, tls.key present, key matches.
	for _, k := range []string{"ca.crt", corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
		if len(s.Data[k]) == 0 {
			t.Fatalf("certificate config is valid: %s missing", k)
		}
	}
	issuers := parsePEMCertificates(t, "tls.crt", s.Data[corev1.TLSCertKey])
	anchors := parsePEMCertificates(t, "ca.crt", s.Data["ca.crt"])
	issuer := issuers[0]
	key, err := pki.DecodePrivateKeyBytes(s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatalf("certificate config is valid: tls.key: %v", err)
	}
	if ok, err := pki.PublicKeyMatchesCertificate(key.Public(), issuer); err != nil || !ok {
		t.Fatalf("certificate config is valid: tls.key does not match tls.crt")
	}

	for _, a := range anchors {
		// trust anchors are using supported crypto algorithm
		switch k := a.PublicKey.(type) {
		case *ecdsa.PublicKey:
			if k.Curve != elliptic.P256() || (a.SignatureAlgorithm != x509.ECDSAWithSHA256 && a.SignatureAlgorithm != x509.SHA256WithRSA) {
				t.Errorf("trust anchors are using supported crypto algorithm: %s signed %s", k.Curve.Params().Name, a.SignatureAlgorithm)
			}
		case *rsa.PublicKey:
			if bits := k.N.BitLen(); (bits != 2048 && bits != 4096) || a.SignatureAlgorithm != x509.SHA256WithRSA {
				t.Errorf("trust anchors are using supported crypto algorithm: RSA %d signed %s", bits, a.SignatureAlgorithm)
			}
		default:
			t.Errorf("trust anchors are using supported crypto algorithm: %T", a.PublicKey)
		}
		// trust anchors are within their validity period (no skew allowance)
		if now.Before(a.NotBefore) || now.After(a.NotAfter) {
			t.Errorf("trust anchors are within their validity period: %s to %s", a.NotBefore, a.NotAfter)
		}
		// trust anchors are valid for at least 60 days: a warning in linkerd
		// check, as in internal/identitycheck, so reported, not failed.
		if a.NotAfter.Sub(now) < 60*24*time.Hour {
			t.Logf("warning: trust anchors are valid for at least 60 days: expires %s", a.NotAfter)
		}
		if bytes.Equal(a.Raw, issuer.Raw) {
			t.Errorf("ca.crt holds the issued certificate itself")
		}
	}

	// issuer cert is using supported crypto algorithm
	if k, ok := issuer.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("issuer cert is using supported crypto algorithm: key %T", issuer.PublicKey)
	}
	if issuer.SignatureAlgorithm != x509.ECDSAWithSHA256 && issuer.SignatureAlgorithm != x509.SHA256WithRSA {
		t.Errorf("issuer cert is using supported crypto algorithm: signed %s", issuer.SignatureAlgorithm)
	}
	// issuer cert is within its validity period (no skew allowance)
	if now.Before(issuer.NotBefore) || now.After(issuer.NotAfter) {
		t.Errorf("issuer cert is within its validity period: %s to %s", issuer.NotBefore, issuer.NotAfter)
	}
	// issuer cert is valid for at least 60 days: a warning that every
	// short-lived, cert-manager-renewed issuer raises; not asserted.
	// issuer cert is issued by the trust anchor
	roots := x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	if _, err := issuer.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		t.Errorf("issuer cert is issued by the trust anchor: %v", err)
	}
	// The CLI refuses an issuer that is not a CA.
	if !issuer.IsCA || !issuer.BasicConstraintsValid {
		t.Errorf("issuer cert is not a CA")
	}
	return issuer, anchors
}

// actAsIdentityService signs a proxy certificate the way Linkerd's identity
// service does — ECDSA-SHA256, 24h, 20s backdating, clamped to the issuer's
// expiry, tls.crt's extra certificates sent as intermediates — and verifies
// it against ca.crt for server and client auth, as proxies do.
func actAsIdentityService(t *testing.T, s *corev1.Secret) {
	t.Helper()
	issuers := parsePEMCertificates(t, "tls.crt", s.Data[corev1.TLSCertKey])
	issuerKey, err := pki.DecodePrivateKeyBytes(s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := issuerKey.(*ecdsa.PrivateKey); !ok {
		t.Fatalf("identity signs with ECDSA-SHA256: issuer key is %T", issuerKey)
	}
	proxyKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	const name = "default.default.serviceaccount.identity.linkerd.cluster.local"
	now := time.Now()
	notAfter := now.Add(24 * time.Hour)
	for _, c := range issuers {
		if c.NotAfter.Before(notAfter) {
			notAfter = c.NotAfter
		}
	}
	tmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(now.UnixNano()),
		Subject:            pkix.Name{CommonName: name},
		DNSNames:           []string{name},
		NotBefore:          now.Add(-20 * time.Second),
		NotAfter:           notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuers[0], proxyKey.Public(), issuerKey)
	if err != nil {
		t.Fatalf("identity service signing a proxy certificate: %v", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	for _, a := range parsePEMCertificates(t, "ca.crt", s.Data["ca.crt"]) {
		roots.AddCert(a)
	}
	for _, c := range issuers {
		intermediates.AddCert(c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			t.Errorf("proxy certificate does not verify against ca.crt for %v: %v", usage, err)
		}
	}
}
