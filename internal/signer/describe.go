package signer

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"strings"
)

// DescribeKey names a public key's algorithm and size, as messages say it.
func DescribeKey(pub any) string {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case ed25519.PublicKey:
		return "Ed25519"
	default:
		return fmt.Sprintf("a %T key", pub)
	}
}

// Fingerprint is a certificate's SHA-256 fingerprint as openssl prints it
// (upper-case hex pairs separated by colons).
func Fingerprint(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	pairs := make([]string, 0, len(sum))
	for i := 0; i < len(h); i += 2 {
		pairs = append(pairs, h[i:i+2])
	}
	return strings.Join(pairs, ":")
}

// RootKey identifies what a verifier matches a root by: its subject and
// public key, hex SHA-256. Two certificates with the same RootKey (a root
// renewed with the same key, cert-manager's rotationPolicy Never) verify
// the same issuers, so either one in a proxy's roots trusts what the
// other's key signed.
func RootKey(cert *x509.Certificate) string {
	h := sha256.New()
	h.Write(cert.RawSubject)
	h.Write(cert.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(h.Sum(nil))
}
