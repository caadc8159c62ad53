package signer

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"time"
)

// ClockSkew is how far NotBefore is backdated, so that a control plane whose
// clock lags ours still sees the issuer as valid.
const ClockSkew = time.Minute

// serialLimit bounds serial numbers to 128 bits (CA/B Forum asks for at
// least 64 unpredictable ones).
var serialLimit = new(big.Int).Lsh(big.NewInt(1), 128)

// serialFor is a request's serial: random without an ID; with one, an
// HMAC-SHA256 of the ID, the CSR and the validity start under a key derived
// from the anchor's private key, so it is the same for the same request and
// start, unpredictable to anyone without that key, and never shared by two
// certificates of different validity. A key in a KMS never leaves it: the
// HMAC key is then derived from the anchor's certificate, so the serial is
// still the same for the same request and start, but predictable to whoever
// can read both (docs/kms.md).
func (a *Anchor) serialFor(req Request, start time.Time) *big.Int {
	if req.ID == "" {
		serial, err := rand.Int(rand.Reader, serialLimit)
		if err != nil {
			// crypto/rand never fails on supported platforms.
			panic(fmt.Sprintf("reading random serial: %v", err))
		}
		return serial
	}
	var derived [sha256.Size]byte
	if keyDER, err := x509.MarshalPKCS8PrivateKey(a.Key); err == nil {
		derived = sha256.Sum256(append([]byte("linkerd-ca-issuer serial key\x00"), keyDER...))
	} else {
		derived = sha256.Sum256(append([]byte("linkerd-ca-issuer serial key of a KMS anchor\x00"), a.Certificate.Raw...))
	}
	mac := hmac.New(sha256.New, derived[:])
	mac.Write([]byte(req.ID))
	mac.Write([]byte{0})
	mac.Write(req.CSR)
	mac.Write([]byte{0})
	mac.Write([]byte(start.UTC().Format(time.RFC3339Nano)))
	serial := new(big.Int).SetBytes(mac.Sum(nil)[:16])
	if serial.Sign() == 0 {
		serial.SetInt64(1) // a serial must be positive
	}
	return serial
}

// Issued is a signed Linkerd identity issuer certificate.
type Issued struct {
	// Certificate is the issued certificate, parsed.
	Certificate *x509.Certificate
	// CertificatePEM is the issued certificate alone (tls.crt).
	CertificatePEM []byte
	// NotAfter is the issued certificate's expiry.
	NotAfter time.Time
	// CappedAt is set when the requested lifetime would have outlived the
	// trust anchor and NotAfter was cut to the anchor's NotAfter.
	CappedAt *time.Time
}

// Sign checks the request against the policy and, if it holds, signs it with
// the anchor, valid from req.Start (now when zero). Nothing is copied from
// the CSR but its public key and the names the policy has already pinned.
// A certificate that would not live at least the policy's MinDuration from
// now, or would expire before it starts, is refused (RuleValidity).
//
// Signing is idempotent: for a request with an ID, the serial comes from the
// anchor's key, the ID, the CSR and the start, and the signature is
// deterministic (RFC 6979 for ECDSA; PKCS #1 v1.5 is so already), so signing
// the same request with the same start again yields the very same
// certificate. A controller that signs, then fails to record the result and
// retries, issues nothing new.
func Sign(p Policy, anchor *Anchor, req Request, now time.Time) (*Issued, error) {
	csr, err := p.Check(req)
	if err != nil {
		return nil, err
	}
	tmpl, capped := Template(p, anchor, csr, req, now)
	if err := checkValidity(p, anchor, req, tmpl, now); err != nil {
		return nil, err
	}
	var random io.Reader // nil: a deterministic signature
	if req.ID == "" {
		random = rand.Reader
	}
	der, err := x509.CreateCertificate(random, tmpl, anchor.Certificate, csr.PublicKey, anchor.Key)
	if err != nil {
		return nil, fmt.Errorf("signing the issuer certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("reading back the issued certificate: %w", err)
	}
	issued := &Issued{
		Certificate:    cert,
		CertificatePEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		NotAfter:       tmpl.NotAfter,
	}
	if capped {
		issued.CappedAt = &tmpl.NotAfter
	}
	return issued, nil
}

// Template is the certificate Sign issues for a request the policy accepted,
// valid from req.Start (now when zero). It reports whether NotAfter was
// capped at the anchor's.
func Template(p Policy, anchor *Anchor, csr *x509.CertificateRequest, req Request, now time.Time) (*x509.Certificate, bool) {
	start := req.Start
	if start.IsZero() {
		start = now
	}
	serial := anchor.serialFor(req, start)
	notBefore := start.Add(-ClockSkew)
	if notBefore.Before(anchor.Certificate.NotBefore) {
		notBefore = anchor.Certificate.NotBefore
	}
	notAfter, capped := start.Add(req.Duration), false
	if notAfter.After(anchor.Certificate.NotAfter) {
		notAfter, capped = anchor.Certificate.NotAfter, true
	}
	cn := p.CommonName()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            0,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | req.KeyUsage&x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		// Linkerd's identity service and `linkerd check` want SHA-256
		// whatever the anchor's key size; x509's default would pick SHA-384
		// or SHA-512 for larger RSA keys.
		SignatureAlgorithm: x509.ECDSAWithSHA256,
		// x509.CreateCertificate takes the anchor's key identifier only when
		// the subjects differ; a root named like its issuer (the original
		// guide's) would leave the issuer without one, and OpenSSL-based
		// verifiers then fail to build the chain. Set it whatever the names.
		AuthorityKeyId: anchor.Certificate.SubjectKeyId,
	}
	if _, ok := anchor.Key.Public().(*rsa.PublicKey); ok {
		tmpl.SignatureAlgorithm = x509.SHA256WithRSA
	}
	if len(csr.DNSNames) > 0 {
		tmpl.DNSNames = []string{cn}
	}
	// SubjectKeyId is derived from the public key by x509.CreateCertificate
	// for CA templates.
	return tmpl, capped
}
