package signer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// testNow is fixed so that lifetimes and caps are exact.
var testNow = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

var defaultPolicy = Policy{
	TrustDomain:           "cluster.local",
	ControlPlaneNamespace: "linkerd",
	MinDuration:           time.Hour,
	MaxDuration:           8760 * time.Hour,
}

// seedCertificate is the Certificate of Linkerd's guide.
func seedCertificate() *cmapi.Certificate { return testpki.SeedCertificate("linkerd") }

// requestFor builds a request the way cert-manager and issuer-lib do: a
// private key and CSR from the Certificate, then the CertificateRequest's
// details as issuer-lib reads them, in the Certificate's namespace.
func requestFor(t testing.TB, crt *cmapi.Certificate, opts ...pki.GenerateCSROption) Request {
	t.Helper()
	key, err := pki.GeneratePrivateKeyForCertificate(crt)
	if err != nil {
		t.Fatalf("generating key: %v", err)
	}
	return requestWithKey(t, crt, key, opts...)
}

func requestWithKey(t testing.TB, crt *cmapi.Certificate, key crypto.Signer, opts ...pki.GenerateCSROption) Request {
	t.Helper()
	tmpl, err := pki.GenerateCSR(crt, opts...)
	if err != nil {
		t.Fatalf("generating CSR: %v", err)
	}
	der, err := pki.EncodeCSR(tmpl, key)
	if err != nil {
		t.Fatalf("encoding CSR: %v", err)
	}
	cr := &cmapi.CertificateRequest{Spec: cmapi.CertificateRequestSpec{
		Request:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		Duration: crt.Spec.Duration,
		IsCA:     crt.Spec.IsCA,
		Usages:   crt.Spec.Usages,
	}}
	d, err := issuersigner.CertificateRequestObjectFromCertificateRequest(cr).GetCertificateDetails()
	if err != nil {
		t.Fatalf("request details: %v", err)
	}
	return Request{Namespace: crt.Namespace, CSR: d.CSR, Duration: d.Duration, IsCA: d.IsCA, KeyUsage: d.KeyUsage, ExtKeyUsage: d.ExtKeyUsage}
}

type anchorSpec struct {
	key       crypto.Signer
	notBefore time.Time
	notAfter  time.Time
	isCA      bool
	keyUsage  x509.KeyUsage
	extUsage  []x509.ExtKeyUsage
	pathLen   int // -1: none
	sigAlg    x509.SignatureAlgorithm
	subject   string // root.linkerd.cluster.local when empty
	// Constraints that break chains without making the anchor unparseable.
	permittedDNS []string
	excludedDNS  []string
	extra        []pkix.Extension
}

func defaultAnchorSpec(t testing.TB) anchorSpec {
	return anchorSpec{
		key:       p256Key(t),
		notBefore: testNow.Add(-24 * time.Hour),
		notAfter:  testNow.Add(10 * 365 * 24 * time.Hour),
		isCA:      true,
		keyUsage:  x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		pathLen:   -1,
	}
}

// makeAnchor returns the PEM of a self-signed root like `step certificate
// create root.linkerd.cluster.local ca.crt ca.key --profile root-ca`.
func makeAnchor(t testing.TB, s anchorSpec) (certPEM, keyPEM []byte) {
	t.Helper()
	certPEM, keyPEM, err := encodeAnchor(s)
	if err != nil {
		t.Fatalf("creating anchor: %v", err)
	}
	return certPEM, keyPEM
}

func encodeAnchor(s anchorSpec) (certPEM, keyPEM []byte, err error) {
	subject := s.subject
	if subject == "" {
		subject = "root.linkerd.cluster.local"
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: subject},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		BasicConstraintsValid: true,
		IsCA:                  s.isCA,
		KeyUsage:              s.keyUsage,
		ExtKeyUsage:           s.extUsage,
		MaxPathLen:            s.pathLen,
		MaxPathLenZero:        s.pathLen == 0,
		SignatureAlgorithm:    s.sigAlg,
		PermittedDNSDomains:   s.permittedDNS,
		ExcludedDNSDomains:    s.excludedDNS,
		ExtraExtensions:       s.extra,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, s.key.Public(), s.key)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(s.key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), nil
}

func parsedAnchor(t testing.TB, s anchorSpec) *Anchor {
	t.Helper()
	certPEM, keyPEM := makeAnchor(t, s)
	a, err := ParseAnchor(certPEM, keyPEM, testNow)
	if err != nil {
		t.Fatalf("ParseAnchor: %v", err)
	}
	return a
}

// rawAnchor is an anchor taken as it is, without ParseAnchor's named
// checks, to prove what the trial chain catches on its own.
func rawAnchor(t testing.TB, s anchorSpec) *Anchor {
	t.Helper()
	a, err := anchorAsIs(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func anchorAsIs(s anchorSpec) (*Anchor, error) {
	certPEM, _, err := encodeAnchor(s)
	if err != nil {
		return nil, err
	}
	cert, err := pki.DecodeX509CertificateBytes(certPEM)
	if err != nil {
		return nil, err
	}
	return &Anchor{Certificate: cert, Key: s.key, PEM: certPEM}, nil
}

// proxyUnder signs a proxy certificate the way Linkerd's identity service
// does, under an issuer whose key the test holds.
func proxyUnder(t testing.TB, issuer *x509.Certificate, issuerKey crypto.Signer, name string) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    testNow.Add(-20 * time.Second),
		NotAfter:     testNow.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, p256Key(t).Public(), issuerKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return leaf
}

func p256Key(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// RSA keys are slow to make; each size is made once per test binary.
var (
	rsaKeysMu sync.Mutex
	rsaKeys   = map[int]*rsa.PrivateKey{}
)

func rsaKey(t testing.TB, bits int) *rsa.PrivateKey {
	t.Helper()
	rsaKeysMu.Lock()
	defer rsaKeysMu.Unlock()
	if k, ok := rsaKeys[bits]; ok {
		return k
	}
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	rsaKeys[bits] = k
	return k
}

// isAnchorError reports whether err says what is wrong with a trust anchor.
func isAnchorError(err error) bool {
	var ae *AnchorError
	return errors.As(err, &ae)
}
