package signer

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Linkerd's identity service signs every proxy certificate for 24 hours,
// backdated 20 seconds for clock skew.
const (
	proxyLifetime  = 24 * time.Hour
	proxyClockSkew = 20 * time.Second
)

// TrialProxyName is the identity the trial proxy certificate carries: the
// default service account of the default namespace, as Linkerd names it.
func (p Policy) TrialProxyName() string {
	return "default.default.serviceaccount." + p.CommonName()
}

// CheckTrialChain proves the anchor usable rather than assuming it: it signs
// a trial identity issuer exactly as Sign would, a proxy certificate under
// that issuer as Linkerd's identity service does, and verifies the chain
// against the anchor alone with Go's x509 verifier, for server auth and for
// client auth. Whatever in the anchor would make Linkerd reject its chain —
// name constraints, path length, policy constraints, extended key usages,
// critical extensions nobody understands — fails here with an *AnchorError,
// before a real issuer is signed.
func CheckTrialChain(p Policy, anchor *Anchor, now time.Time) error {
	if err := checkPolicyConstraints(anchor.Certificate); err != nil {
		return err
	}
	issuerKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("trial issuer key: %w", err)
	}
	lifetime := min(max(p.MinDuration, time.Hour), p.MaxDuration)
	req := Request{Duration: lifetime, IsCA: true}
	tmpl, _ := Template(p, anchor, &x509.CertificateRequest{PublicKey: issuerKey.Public()}, req, now)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, anchor.Certificate, issuerKey.Public(), anchor.Key)
	if err != nil {
		return badAnchor("the trust anchor cannot sign an identity issuer: %v", err)
	}
	issuer, err := x509.ParseCertificate(der)
	if err != nil {
		return badAnchor("the identity issuer the trust anchor signs does not parse: %v", err)
	}

	leafKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("trial proxy key: %w", err)
	}
	name := p.TrialProxyName()
	// Linkerd clamps a proxy's expiry to its issuer's.
	notAfter := now.Add(proxyLifetime)
	if notAfter.After(issuer.NotAfter) {
		notAfter = issuer.NotAfter
	}
	leafTmpl := &x509.Certificate{
		SerialNumber:       big.NewInt(1),
		Subject:            pkix.Name{CommonName: name},
		DNSNames:           []string{name},
		NotBefore:          now.Add(-proxyClockSkew),
		NotAfter:           notAfter,
		KeyUsage:           x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:        []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		SignatureAlgorithm: x509.ECDSAWithSHA256,
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, issuer, leafKey.Public(), issuerKey)
	if err != nil {
		return fmt.Errorf("signing the trial proxy certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return fmt.Errorf("reading the trial proxy certificate: %w", err)
	}
	return VerifyProxyChain(leaf, issuer, anchor.Certificate, now)
}

// checkPolicyConstraints refuses an anchor that requires an explicit
// certificate policy within the two certificates below it. Go, following RFC
// 5280, applies no constraint of a trust anchor's own, but verifiers that
// treat the root as part of the chain (OpenSSL among them) do, and nothing
// Linkerd signs carries a certificate policy.
func checkPolicyConstraints(anchor *x509.Certificate) error {
	if anchor.RequireExplicitPolicyZero || (anchor.RequireExplicitPolicy > 0 && anchor.RequireExplicitPolicy <= 2) {
		return badAnchor("the trust anchor's policy constraints require an explicit certificate policy (requireExplicitPolicy %d), which neither Linkerd's identity issuer nor its proxy certificates carry, so verifiers that apply them reject every chain; create a trust anchor without policy constraints (linkerd-ca trust-anchor create makes one) and rotate to it (docs/rotation.md)",
			anchor.RequireExplicitPolicy)
	}
	return nil
}

// VerifyProxyChain verifies a proxy certificate under an identity issuer
// against one trust anchor, for both server and client auth, as Linkerd's
// proxies use it. A failure is an *AnchorError that says what in the anchor
// breaks the chain and how to fix it.
func VerifyProxyChain(leaf, issuer, anchor *x509.Certificate, now time.Time) error {
	roots, intermediates := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(anchor)
	intermediates.AddCert(issuer)
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := leaf.Verify(x509.VerifyOptions{
			Roots: roots, Intermediates: intermediates, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage},
		})
		if err != nil {
			return explainChainError(anchor, leaf, usage, err)
		}
	}
	return nil
}

// explainChainError turns a verifier error into what is wrong with the
// anchor and how to fix it.
func explainChainError(anchor, leaf *x509.Certificate, usage x509.ExtKeyUsage, err error) error {
	const remake = "create a trust anchor without it (linkerd-ca trust-anchor create makes one) and rotate to it (docs/rotation.md)"
	if len(anchor.UnhandledCriticalExtensions) > 0 {
		return badAnchor("the trust anchor has critical extension %s, which verifiers do not understand, so every chain under it is rejected; %s",
			anchor.UnhandledCriticalExtensions[0], remake)
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		switch invalid.Reason {
		case x509.CANotAuthorizedForThisName:
			return badAnchor("the trust anchor's name constraints do not permit the proxy identity %q (%v), so Linkerd could not verify a single proxy certificate; its permitted DNS names must include the trust domain, or %s",
				leaf.DNSNames[0], err, remake)
		case x509.TooManyIntermediates:
			return badAnchor("the trust anchor's path length does not allow an identity issuer that signs proxy certificates (%v); it needs path length 1 or more, or none; %s", err, remake)
		case x509.NameConstraintsWithoutSANs, x509.UnconstrainedName:
			return badAnchor("the trust anchor's name constraints cannot be checked against proxy identities (%v); %s", err, remake)
		}
	}
	if errors.As(err, new(x509.UnhandledCriticalExtension)) {
		return badAnchor("a certificate in the chain has a critical extension verifiers do not understand (%v); %s", err, remake)
	}
	return badAnchor("a proxy certificate under an identity issuer signed by this trust anchor does not verify for %s: %v. Linkerd would reject every proxy; check the anchor's extended key usages and certificate policies, or %s",
		usageName(usage), err, remake)
}

func usageName(u x509.ExtKeyUsage) string {
	if u == x509.ExtKeyUsageServerAuth {
		return "server auth"
	}
	return "client auth"
}
