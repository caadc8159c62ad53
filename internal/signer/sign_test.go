package signer

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	mrand "math/rand/v2"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func parseIssued(t testing.TB, issued *Issued) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(issued.CertificatePEM)
	if block == nil || block.Type != "CERTIFICATE" || len(rest) != 0 {
		t.Fatalf("tls.crt is not exactly one CERTIFICATE block (rest %q)", rest)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

// TestSignSeedCertificate checks the certificate the seed flow gets, field by
// field, against what Linkerd needs of its identity issuer.
func TestSignSeedCertificate(t *testing.T) {
	anchor := parsedAnchor(t, defaultAnchorSpec(t))
	issued, err := Sign(defaultPolicy, anchor, requestFor(t, seedCertificate()), testNow)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseIssued(t, issued)
	if cert.Subject.String() != "CN=identity.linkerd.cluster.local" {
		t.Errorf("subject = %s", cert.Subject)
	}
	if len(cert.DNSNames) != 1 || cert.DNSNames[0] != "identity.linkerd.cluster.local" {
		t.Errorf("DNS names = %v", cert.DNSNames)
	}
	if !cert.BasicConstraintsValid || !cert.IsCA || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
		t.Errorf("basic constraints: valid=%v isCA=%v maxPathLen=%d zero=%v", cert.BasicConstraintsValid, cert.IsCA, cert.MaxPathLen, cert.MaxPathLenZero)
	}
	if cert.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign {
		t.Errorf("key usage = %b", cert.KeyUsage)
	}
	if len(cert.ExtKeyUsage) != 2 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageServerAuth || cert.ExtKeyUsage[1] != x509.ExtKeyUsageClientAuth {
		t.Errorf("ext key usage = %v", cert.ExtKeyUsage)
	}
	if cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm = %s", cert.SignatureAlgorithm)
	}
	if want := testNow.Add(-ClockSkew); !cert.NotBefore.Equal(want) {
		t.Errorf("NotBefore = %s, want %s", cert.NotBefore, want)
	}
	if want := testNow.Add(24 * time.Hour); !cert.NotAfter.Equal(want) || !issued.NotAfter.Equal(want) {
		t.Errorf("NotAfter = %s (reported %s), want %s", cert.NotAfter, issued.NotAfter, want)
	}
	if issued.CappedAt != nil {
		t.Errorf("reported a cap that did not happen: %s", issued.CappedAt)
	}
	for _, pemBytes := range [][]byte{issued.CertificatePEM, anchor.PEM} {
		if bytes.HasSuffix(pemBytes, []byte("\n\n")) || !bytes.HasSuffix(pemBytes, []byte("-----\n")) {
			t.Errorf("PEM ends with blank lines or no newline: %q", pemBytes[len(pemBytes)-10:])
		}
	}
	// No extension beyond what the policy sets.
	allowed := map[string]bool{"2.5.29.15": true, "2.5.29.37": true, "2.5.29.19": true, "2.5.29.14": true, "2.5.29.35": true, "2.5.29.17": true}
	for _, ext := range cert.Extensions {
		if !allowed[ext.Id.String()] {
			t.Errorf("unexpected extension %s", ext.Id)
		}
	}
}

func TestSignDigitalSignatureOnlyWhenAsked(t *testing.T) {
	anchor := parsedAnchor(t, defaultAnchorSpec(t))
	crt := seedCertificate()
	crt.Spec.Usages = append(crt.Spec.Usages, cmapi.UsageDigitalSignature)
	issued, err := Sign(defaultPolicy, anchor, requestFor(t, crt), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if got := parseIssued(t, issued).KeyUsage; got != x509.KeyUsageCertSign|x509.KeyUsageCRLSign|x509.KeyUsageDigitalSignature {
		t.Fatalf("key usage = %b", got)
	}
}

func TestSignCapsAtAnchorExpiry(t *testing.T) {
	s := defaultAnchorSpec(t)
	s.notAfter = testNow.Add(2 * time.Hour)
	anchor := parsedAnchor(t, s)
	issued, err := Sign(defaultPolicy, anchor, requestFor(t, seedCertificate()), testNow)
	if err != nil {
		t.Fatal(err)
	}
	cert := parseIssued(t, issued)
	if !cert.NotAfter.Equal(anchor.Certificate.NotAfter) {
		t.Errorf("NotAfter = %s, want the anchor's %s", cert.NotAfter, anchor.Certificate.NotAfter)
	}
	if issued.CappedAt == nil || !issued.CappedAt.Equal(anchor.Certificate.NotAfter) {
		t.Errorf("cap not reported: %v", issued.CappedAt)
	}
}

func TestSignNeverBackdatesBeforeAnchor(t *testing.T) {
	s := defaultAnchorSpec(t)
	s.notBefore = testNow.Add(-10 * time.Second)
	anchor := parsedAnchor(t, s)
	issued, err := Sign(defaultPolicy, anchor, requestFor(t, seedCertificate()), testNow)
	if err != nil {
		t.Fatal(err)
	}
	if nb := parseIssued(t, issued).NotBefore; !nb.Equal(anchor.Certificate.NotBefore) {
		t.Fatalf("NotBefore = %s, want the anchor's %s", nb, anchor.Certificate.NotBefore)
	}
}

func TestSignUnderRSAAnchorUsesSHA256(t *testing.T) {
	for _, bits := range []int{2048, 4096} {
		s := defaultAnchorSpec(t)
		s.key, s.sigAlg = rsaKey(t, bits), x509.SHA256WithRSA
		anchor := parsedAnchor(t, s)
		issued, err := Sign(defaultPolicy, anchor, requestFor(t, seedCertificate()), testNow)
		if err != nil {
			t.Fatal(err)
		}
		cert := parseIssued(t, issued)
		if cert.SignatureAlgorithm != x509.SHA256WithRSA {
			t.Errorf("RSA %d: signature algorithm = %s, want SHA256-RSA", bits, cert.SignatureAlgorithm)
		}
		if err := cert.CheckSignatureFrom(anchor.Certificate); err != nil {
			t.Errorf("RSA %d: %v", bits, err)
		}
	}
}

func TestSignRefusalIsNotSigned(t *testing.T) {
	anchor := parsedAnchor(t, defaultAnchorSpec(t))
	crt := seedCertificate()
	crt.Spec.IsCA = false
	issued, err := Sign(defaultPolicy, anchor, requestFor(t, crt), testNow)
	var refusal *Refusal
	if issued != nil || !errors.As(err, &refusal) || refusal.Rule != RuleIsCA {
		t.Fatalf("got %v, %v; want no certificate and an isCA refusal", issued, err)
	}
}

// TestSignProperties signs 1,000 requests with random lifetimes under
// anchors that start just now, end soon, or are far from both, and checks
// every invariant of an issued Linkerd identity issuer on each.
func TestSignProperties(t *testing.T) {
	const n = 1000
	anchors := []*Anchor{parsedAnchor(t, defaultAnchorSpec(t))}
	fresh := defaultAnchorSpec(t)
	fresh.notBefore = testNow.Add(-5 * time.Second)
	anchors = append(anchors, parsedAnchor(t, fresh))
	ending := defaultAnchorSpec(t)
	ending.notAfter = testNow.Add(36 * time.Hour)
	anchors = append(anchors, parsedAnchor(t, ending))

	rng := mrand.New(mrand.NewPCG(1, 2))
	seen := make(map[string]bool, n)
	minBits := 128
	for i := range n {
		anchor := anchors[i%len(anchors)]
		crt := seedCertificate()
		crt.Spec.Duration = &metav1.Duration{Duration: time.Hour + time.Duration(rng.Int64N(int64(72*time.Hour)))}
		issued, err := Sign(defaultPolicy, anchor, requestFor(t, crt), testNow)
		if err != nil {
			t.Fatalf("signing %d: %v", i, err)
		}
		cert := parseIssued(t, issued)

		serial := cert.SerialNumber.String()
		if seen[serial] {
			t.Fatalf("serial %s issued twice", serial)
		}
		seen[serial] = true
		if cert.SerialNumber.Sign() <= 0 {
			t.Fatalf("serial %s not positive", serial)
		}
		minBits = min(minBits, cert.SerialNumber.BitLen())

		if !cert.IsCA || cert.MaxPathLen != 0 || !cert.MaxPathLenZero {
			t.Fatalf("%d: not a CA with path length 0", i)
		}
		if cert.NotAfter.After(anchor.Certificate.NotAfter) {
			t.Fatalf("%d: NotAfter %s past the anchor's %s", i, cert.NotAfter, anchor.Certificate.NotAfter)
		}
		if cert.NotBefore.Before(anchor.Certificate.NotBefore) {
			t.Fatalf("%d: NotBefore %s before the anchor's %s", i, cert.NotBefore, anchor.Certificate.NotBefore)
		}
		if testNow.Sub(cert.NotBefore) > 5*time.Minute {
			t.Fatalf("%d: NotBefore backdated by %s", i, testNow.Sub(cert.NotBefore))
		}
		if capped := issued.CappedAt != nil; capped != testNow.Add(crt.Spec.Duration.Duration).After(anchor.Certificate.NotAfter) {
			t.Fatalf("%d: cap reported %v for duration %s", i, capped, crt.Spec.Duration.Duration)
		}
		if len(cert.SubjectKeyId) == 0 {
			t.Fatalf("%d: no subject key id", i)
		}
		if !bytes.Equal(cert.AuthorityKeyId, anchor.Certificate.SubjectKeyId) || len(cert.AuthorityKeyId) == 0 {
			t.Fatalf("%d: authority key id %x, anchor's subject key id %x", i, cert.AuthorityKeyId, anchor.Certificate.SubjectKeyId)
		}
		if cert.SignatureAlgorithm != x509.ECDSAWithSHA256 {
			t.Fatalf("%d: signature algorithm %s", i, cert.SignatureAlgorithm)
		}
		roots := x509.NewCertPool()
		roots.AddCert(anchor.Certificate)
		if _, err := cert.Verify(x509.VerifyOptions{
			Roots: roots, CurrentTime: testNow,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		}); err != nil {
			t.Fatalf("%d: does not verify against the anchor alone: %v", i, err)
		}
	}
	// 128 random bits: the chance that any of 1,000 serials has fewer than
	// 65 significant bits is about 2^-54.
	if minBits <= 64 {
		t.Fatalf("a serial had only %d bits", minBits)
	}
}

// The benchmarks behind docs/performance.md: Sign (policy + template +
// signing + PEM) beside the bare x509.CreateCertificate it wraps, from the
// same parsed CSR and anchor.
func benchInputs(b *testing.B) (*Anchor, *x509.CertificateRequest, *x509.Certificate) {
	anchor := parsedAnchor(b, defaultAnchorSpec(b))
	req := requestFor(b, seedCertificate())
	csr, err := defaultPolicy.Check(req)
	if err != nil {
		b.Fatal(err)
	}
	tmpl, _ := Template(defaultPolicy, anchor, csr, req, testNow)
	return anchor, csr, tmpl
}

func BenchmarkSign(b *testing.B) {
	anchor := parsedAnchor(b, defaultAnchorSpec(b))
	req := requestFor(b, seedCertificate())
	for b.Loop() {
		if _, err := Sign(defaultPolicy, anchor, req, testNow); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCreateCertificate(b *testing.B) {
	anchor, csr, tmpl := benchInputs(b)
	for b.Loop() {
		tmpl.SerialNumber = big.NewInt(1)
		if _, err := x509.CreateCertificate(rand.Reader, tmpl, anchor.Certificate, csr.PublicKey, anchor.Key); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPolicyCheck isolates the policy's share of Sign.
func BenchmarkPolicyCheck(b *testing.B) {
	req := requestFor(b, seedCertificate())
	for b.Loop() {
		if _, err := defaultPolicy.Check(req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateCertificateWithCSRCheck is the floor for Sign: the bare
// signing plus the one CSR signature verification the policy cannot skip.
func BenchmarkCreateCertificateWithCSRCheck(b *testing.B) {
	anchor, csr, tmpl := benchInputs(b)
	for b.Loop() {
		if err := csr.CheckSignature(); err != nil {
			b.Fatal(err)
		}
		tmpl.SerialNumber = big.NewInt(1)
		if _, err := x509.CreateCertificate(rand.Reader, tmpl, anchor.Certificate, csr.PublicKey, anchor.Key); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSignKeepsTheAuthorityKeyIdWithEqualSubjects: a root named like its
// issuer (the original guide's identity.linkerd.cluster.local) still gives
// the issued certificate the anchor's key identifier, which Go leaves out
// on its own when the subjects are equal.
func TestSignKeepsTheAuthorityKeyIdWithEqualSubjects(t *testing.T) {
	for _, subject := range []string{"identity.linkerd.cluster.local", "root.linkerd.cluster.local"} {
		t.Run(subject, func(t *testing.T) {
			spec := defaultAnchorSpec(t)
			spec.subject = subject
			anchor := parsedAnchor(t, spec)
			if len(anchor.Certificate.SubjectKeyId) == 0 {
				t.Fatal("the anchor has no subject key identifier to point at")
			}
			issued, err := Sign(defaultPolicy, anchor, requestFor(t, seedCertificate()), testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(issued.Certificate.AuthorityKeyId, anchor.Certificate.SubjectKeyId) {
				t.Errorf("authority key id %x, want the anchor's %x", issued.Certificate.AuthorityKeyId, anchor.Certificate.SubjectKeyId)
			}
		})
	}
}

// TestSignIsIdempotent: the same request signed again, as after a status
// write that failed, yields the very same certificate; another request, or
// one without an ID, a new one.
func TestSignIsIdempotent(t *testing.T) {
	for name, key := range map[string]crypto.Signer{"ECDSA anchor": p256Key(t), "RSA anchor": rsaKey(t, 2048)} {
		t.Run(name, func(t *testing.T) {
			spec := defaultAnchorSpec(t)
			spec.key = key
			anchor := parsedAnchor(t, spec)
			req := requestFor(t, seedCertificate())
			req.ID = "0b4e-request-uid"
			first, err := Sign(defaultPolicy, anchor, req, testNow)
			if err != nil {
				t.Fatal(err)
			}
			again, err := Sign(defaultPolicy, anchor, req, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(first.CertificatePEM, again.CertificatePEM) {
				t.Fatal("the same request signed twice gave two certificates")
			}
			assertSerialPerRequest(t, anchor, req, first)
			anon := req
			anon.ID = ""
			a1, err := Sign(defaultPolicy, anchor, anon, testNow)
			if err != nil {
				t.Fatal(err)
			}
			a2, err := Sign(defaultPolicy, anchor, anon, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if a1.Certificate.SerialNumber.Cmp(a2.Certificate.SerialNumber) == 0 {
				t.Error("requests without an ID share a serial")
			}
			// Another anchor's key gives the same request another serial.
			otherAnchor := parsedAnchor(t, defaultAnchorSpec(t))
			fromOther, err := Sign(defaultPolicy, otherAnchor, req, testNow)
			if err != nil {
				t.Fatal(err)
			}
			if fromOther.Certificate.SerialNumber.Cmp(first.Certificate.SerialNumber) == 0 {
				t.Error("the serial does not depend on the anchor's key")
			}
		})
	}
}

// assertSerialPerRequest: the request's serial has 64 bits or more, and
// another request to the same anchor gets another serial.
func assertSerialPerRequest(t *testing.T, anchor *Anchor, req Request, first *Issued) {
	t.Helper()
	if first.Certificate.SerialNumber.BitLen() < 64 {
		t.Errorf("serial %x has under 64 bits", first.Certificate.SerialNumber)
	}
	other := req
	other.ID = "another-request-uid"
	second, err := Sign(defaultPolicy, anchor, other, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if second.Certificate.SerialNumber.Cmp(first.Certificate.SerialNumber) == 0 {
		t.Error("two requests share a serial")
	}
}
