package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
)

// FuzzPolicyCheck feeds arbitrary CSR bytes and request fields to the policy.
// It must never panic, every refusal must be a *Refusal, and what it accepts
// must be exactly what Linkerd needs.
func FuzzPolicyCheck(f *testing.F) {
	seed := requestFor(f, seedCertificate())
	f.Add(seed.CSR, true, uint16(seed.KeyUsage), int64(seed.Duration))
	rsa := seedCertificate()
	rsa.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.RSAKeyAlgorithm, Size: 2048}
	f.Add(requestFor(f, rsa).CSR, true, uint16(seed.KeyUsage), int64(seed.Duration))
	leaf := seedCertificate()
	leaf.Spec.IsCA = false
	f.Add(requestFor(f, leaf, pki.WithEncodeBasicConstraintsInRequest(true)).CSR, false, uint16(0), int64(time.Hour))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n\n-----END CERTIFICATE REQUEST-----\n"), true, uint16(0), int64(0))

	f.Fuzz(func(t *testing.T, csrPEM []byte, isCA bool, keyUsage uint16, duration int64) {
		req := Request{
			Namespace: "linkerd", CSR: csrPEM, IsCA: isCA, Duration: time.Duration(duration),
			KeyUsage:    x509.KeyUsage(keyUsage),
			ExtKeyUsage: seed.ExtKeyUsage,
		}
		csr, err := defaultPolicy.Check(req)
		if err != nil {
			var refusal *Refusal
			if !errors.As(err, &refusal) {
				t.Fatalf("refusal is not a *Refusal: %#v", err)
			}
			return
		}
		if k, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
			t.Fatalf("accepted a %T key", csr.PublicKey)
		}
		if csr.Subject.CommonName != defaultPolicy.CommonName() || len(csr.Subject.Names) != 1 {
			t.Fatalf("accepted subject %s", csr.Subject)
		}
		if !isCA || req.Duration < defaultPolicy.MinDuration || req.Duration > defaultPolicy.MaxDuration {
			t.Fatalf("accepted isCA=%v duration=%s", isCA, req.Duration)
		}
		if req.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != x509.KeyUsageCertSign|x509.KeyUsageCRLSign ||
			req.KeyUsage&^(x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature) != 0 {
			t.Fatalf("accepted key usage %b", req.KeyUsage)
		}
		if len(csr.IPAddresses)+len(csr.URIs)+len(csr.EmailAddresses) > 0 || len(csr.DNSNames) > 1 {
			t.Fatalf("accepted SANs %v %v %v %v", csr.DNSNames, csr.IPAddresses, csr.URIs, csr.EmailAddresses)
		}
	})
}

// FuzzParseAnchor feeds arbitrary tls.crt and tls.key bytes. It must never
// panic, and whatever it accepts must be a CA whose key matches.
func FuzzParseAnchor(f *testing.F) {
	certPEM, keyPEM := makeAnchor(f, defaultAnchorSpec(f))
	f.Add(certPEM, keyPEM)
	leaf := defaultAnchorSpec(f)
	leaf.isCA = false
	leafCert, leafKey := makeAnchor(f, leaf)
	f.Add(leafCert, leafKey)
	f.Add(certPEM, []byte("-----BEGIN PRIVATE KEY-----\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte("-----BEGIN CERTIFICATE-----\n"), keyPEM)

	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		a, err := ParseAnchor(certPEM, keyPEM, testNow)
		if err != nil {
			if !isAnchorError(err) {
				t.Fatalf("error is not an AnchorError: %#v", err)
			}
			return
		}
		if !a.Certificate.IsCA || a.Certificate.KeyUsage&x509.KeyUsageCertSign == 0 {
			t.Fatal("accepted a certificate that cannot sign")
		}
		if ok, err := pki.PublicKeyMatchesCertificate(a.Key.Public(), a.Certificate); err != nil || !ok {
			t.Fatal("accepted a key that does not match")
		}
	})
}
