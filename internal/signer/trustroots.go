package signer

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// MaxTrustBundleBytes bounds Linkerd's trust roots bundle before decoding: a
// rotation holds two or three roots, never hundreds.
const MaxTrustBundleBytes = 256 << 10

// ParseTrustBundle decodes Linkerd's trust roots (ca-bundle.crt) as strictly
// as Linkerd does: CERTIFICATE blocks only, nothing else around them.
func ParseTrustBundle(bundle []byte) ([]*x509.Certificate, error) {
	if len(bundle) > MaxTrustBundleBytes {
		return nil, fmt.Errorf("the bundle is %d bytes, over the %d byte limit", len(bundle), MaxTrustBundleBytes)
	}
	var certs []*x509.Certificate
	rest := bytes.TrimSpace(bundle)
	for len(rest) > 0 {
		block, r := pem.Decode(rest)
		if block == nil {
			return nil, fmt.Errorf("data that is not PEM after certificate %d", len(certs))
		}
		if block.Type != "CERTIFICATE" || len(block.Headers) > 0 {
			return nil, fmt.Errorf("block %d is %q; the bundle may hold only CERTIFICATE blocks", len(certs)+1, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d: %w", len(certs)+1, err)
		}
		certs = append(certs, cert)
		rest = bytes.TrimSpace(r)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("the bundle holds no certificate")
	}
	return certs, nil
}

// BundleContains reports whether cert is one of the bundle's roots.
func BundleContains(bundle []*x509.Certificate, cert *x509.Certificate) bool {
	for _, c := range bundle {
		if c.Equal(cert) {
			return true
		}
	}
	return false
}

// EncodeBundle is the bundle as ca.crt carries it: one CERTIFICATE block per
// root, no blank lines.
func EncodeBundle(certs []*x509.Certificate) []byte {
	var b bytes.Buffer
	for _, c := range certs {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
	}
	return b.Bytes()
}
