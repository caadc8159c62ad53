// Package identitycheck runs the checks of `linkerd check`'s
// linkerd-identity category on an identity issuer Secret (ca.crt, tls.crt,
// tls.key), plus a trial proxy certificate issuance and, when Linkerd's
// trust roots are known, that the issuer chains to them.
package identitycheck

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/cert-manager/cert-manager/pkg/util/pki"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// Input is an identity issuer Secret's data, and optionally Linkerd's trust
// roots (the linkerd-identity-trust-roots ConfigMap's ca-bundle.crt).
type Input struct {
	CACert, TLSCert, TLSKey []byte
	TrustRoots              []byte
	// TrustRootsFound says the trust roots' ConfigMap (or file) exists, so
	// that empty TrustRoots is a bundle Linkerd trusts nothing from, not an
	// unknown one.
	TrustRootsFound bool
	Now             time.Time
}

// The names of the checks, as `linkerd check` prints them.
const (
	ConfigValid        = "certificate config is valid"
	AnchorsAlgorithm   = "trust anchors are using supported crypto algorithm"
	AnchorsValidNow    = "trust anchors are within their validity period"
	AnchorsValid60Days = "trust anchors are valid for at least 60 days"
	IssuerAlgorithm    = "issuer cert is using supported crypto algorithm"
	IssuerValidNow     = "issuer cert is within its validity period"
	IssuerValid60Days  = "issuer cert is valid for at least 60 days"
	IssuerIsCA         = "issuer cert is a CA"
	IssuedByAnchor     = "issuer cert is issued by the trust anchor"
	TrialIssuance      = "issuer can sign a proxy certificate"
	ChainsToTrustRoots = "issuer cert chains to Linkerd's trust roots"
)

const sixtyDays = 60 * 24 * time.Hour

// trustRootsKey is where Linkerd reads its trust roots bundle from.
const trustRootsKey = "ca-bundle.crt"

// Run runs every check. When the Secret itself is unusable only the first
// check runs, as in `linkerd check`.
func Run(in Input) []Result {
	anchors, issuer, key, err := parse(in)
	if err != nil {
		return []Result{{ConfigValid, Fail, err.Error()}}
	}
	results := []Result{{Name: ConfigValid, Status: Pass}}
	results = append(results, Anchors(anchors, in.Now)...)
	add := func(name string, err error) {
		if err != nil {
			results = append(results, Result{name, Fail, err.Error()})
		} else {
			results = append(results, Result{Name: name, Status: Pass})
		}
	}
	add(IssuerAlgorithm, issuerAlgorithm(issuer))
	add(IssuerValidNow, validNow("issuer certificate", issuer, in.Now))
	results = append(results, valid60Days(IssuerValid60Days, "issuer certificate", issuer, in.Now))
	add(IssuerIsCA, isCA(issuer))
	add(IssuedByAnchor, verify(issuer, anchors, in.Now))
	add(TrialIssuance, trialIssuance(issuer, key, anchors, in.Now))
	switch {
	case in.TrustRootsFound && len(in.TrustRoots) == 0:
		add(ChainsToTrustRoots, fmt.Errorf("the trust roots have no %s, or it is empty, so Linkerd trusts no root and every proxy fails; publish the roots into it (trust-manager's Bundle, or `linkerd-ca trust-roots render`)", trustRootsKey))
	case len(in.TrustRoots) > 0:
		roots, err := signer.ParseTrustBundle(in.TrustRoots)
		if err == nil {
			err = verify(issuer, roots, in.Now)
		}
		add(ChainsToTrustRoots, err)
	}
	return results
}

// Anchors runs the trust anchor checks alone, on the certificates of ca.crt.
func Anchors(anchors []*x509.Certificate, now time.Time) []Result {
	var results []Result
	algorithm, validity := Result{Name: AnchorsAlgorithm, Status: Pass}, Result{Name: AnchorsValidNow, Status: Pass}
	sixty := Result{Name: AnchorsValid60Days, Status: Pass}
	for _, a := range anchors {
		if err := signer.CheckAnchorAlgorithm(a); err != nil && algorithm.Status == Pass {
			algorithm = Result{AnchorsAlgorithm, Fail, fmt.Sprintf("trust anchor %s %v", a.Subject, err)}
		}
		if err := validNow("trust anchor "+a.Subject.String(), a, now); err != nil && validity.Status == Pass {
			validity = Result{AnchorsValidNow, Fail, err.Error()}
		}
		if r := valid60Days(AnchorsValid60Days, "trust anchor "+a.Subject.String(), a, now); r.Status != Pass && sixty.Status == Pass {
			sixty = r
		}
	}
	return append(results, algorithm, validity, sixty)
}

func parse(in Input) (anchors []*x509.Certificate, issuer *x509.Certificate, key crypto.Signer, err error) {
	for _, f := range []struct {
		name string
		data []byte
	}{{"ca.crt", in.CACert}, {"tls.crt", in.TLSCert}, {"tls.key", in.TLSKey}} {
		if len(f.data) == 0 {
			return nil, nil, nil, fmt.Errorf("%s is missing or empty", f.name)
		}
	}
	if anchors, err = signer.ParseTrustBundle(in.CACert); err != nil {
		return nil, nil, nil, fmt.Errorf("ca.crt: %w", err)
	}
	issuers, err := signer.ParseTrustBundle(in.TLSCert)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("tls.crt: %w", err)
	}
	if key, err = pki.DecodePrivateKeyBytes(in.TLSKey); err != nil {
		return nil, nil, nil, fmt.Errorf("tls.key: %w", err)
	}
	if ok, err := pki.PublicKeyMatchesCertificate(key.Public(), issuers[0]); err != nil || !ok {
		return nil, nil, nil, fmt.Errorf("tls.key does not match the certificate in tls.crt")
	}
	return anchors, issuers[0], key, nil
}

// issuerAlgorithm requires an ECDSA P-256 issuer key: Linkerd's identity
// service signs proxy certificates with ECDSA-SHA256.
func issuerAlgorithm(c *x509.Certificate) error {
	if k, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		return fmt.Errorf("the issuer key is %s; Linkerd needs ECDSA P-256", signer.DescribeKey(c.PublicKey))
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 && c.SignatureAlgorithm != x509.SHA256WithRSA {
		return fmt.Errorf("the issuer certificate is signed with %s; Linkerd needs ECDSA-SHA256 (SHA256-RSA under an RSA root)", c.SignatureAlgorithm)
	}
	return nil
}

func validNow(what string, c *x509.Certificate, now time.Time) error {
	switch {
	case now.Before(c.NotBefore):
		return fmt.Errorf("%s is not valid before %s", what, c.NotBefore.UTC().Format(time.RFC3339))
	case now.After(c.NotAfter):
		return fmt.Errorf("%s expired at %s", what, c.NotAfter.UTC().Format(time.RFC3339))
	}
	return nil
}

func valid60Days(name, what string, c *x509.Certificate, now time.Time) Result {
	if c.NotAfter.Sub(now) < sixtyDays {
		return Result{name, Warn, fmt.Sprintf("%s expires at %s, in less than 60 days", what, c.NotAfter.UTC().Format(time.RFC3339))}
	}
	return Result{Name: name, Status: Pass}
}

func isCA(c *x509.Certificate) error {
	if !c.BasicConstraintsValid || !c.IsCA {
		return fmt.Errorf("the issuer certificate is not a CA; Linkerd's identity service cannot sign proxy certificates with it")
	}
	return nil
}

func verify(issuer *x509.Certificate, roots []*x509.Certificate, now time.Time) error {
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	_, err := issuer.Verify(x509.VerifyOptions{Roots: pool, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err
}

// trialIssuance signs a proxy certificate as Linkerd's identity service
// does (ECDSA-SHA256, 24h, 20 s backdating, clamped to the issuer's expiry)
// and verifies it as proxies do, for server and client auth.
func trialIssuance(issuer *x509.Certificate, key crypto.Signer, anchors []*x509.Certificate, now time.Time) error {
	proxyKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	const name = "default.default.serviceaccount.identity.linkerd.cluster.local"
	notAfter := now.Add(24 * time.Hour)
	if issuer.NotAfter.Before(notAfter) {
		notAfter = issuer.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber:       big.NewInt(now.UnixNano()),
		Subject:            pkix.Name{CommonName: name},
		DNSNames:           []string{name},
		NotBefore:          now.Add(-20 * time.Second),
		NotAfter:           notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}, issuer, proxyKey.Public(), key)
	if err != nil {
		return fmt.Errorf("signing a proxy certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	for _, a := range anchors {
		roots.AddCert(a)
	}
	intermediates.AddCert(issuer)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots, Intermediates: intermediates, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
			return fmt.Errorf("a proxy certificate it signs does not verify against ca.crt: %w", err)
		}
	}
	return nil
}
