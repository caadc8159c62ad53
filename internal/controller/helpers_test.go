package controller

import (
	"crypto/x509"
	"encoding/pem"
	"testing"
)

func decodeOne(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	block, rest := pem.Decode(b)
	if block == nil || len(rest) != 0 {
		t.Fatalf("want exactly one PEM block, got %q", b)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
