package signer

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"strings"
	"testing"
	"time"
)

// kmsKey stands for a key kept in a KMS: it signs, but its private key
// cannot be marshalled, and its ECDSA signatures are randomized, as KMS
// signatures are.
type kmsKey struct{ key crypto.Signer }

func (k kmsKey) Public() crypto.PublicKey { return k.key.Public() }
func (k kmsKey) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return k.key.Sign(rand.Reader, digest, opts)
}

func kmsAnchor(t testing.TB, key crypto.Signer) *Anchor {
	t.Helper()
	spec := defaultAnchorSpec(t)
	spec.key = key
	certPEM, _ := makeAnchor(t, spec)
	a, err := AnchorWithKey(certPEM, kmsKey{key}, "aws:alias/root", testNow)
	if err != nil {
		t.Fatalf("AnchorWithKey: %v", err)
	}
	return a
}

func TestAnchorWithKeyRefusesAnotherKey(t *testing.T) {
	certPEM, _ := makeAnchor(t, defaultAnchorSpec(t))
	_, err := AnchorWithKey(certPEM, kmsKey{p256Key(t)}, "aws:alias/other", testNow)
	var bad *AnchorError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "aws:alias/other is not the key of the anchor's certificate") {
		t.Fatalf("AnchorWithKey with another key: %v; want an AnchorError naming the key", err)
	}
}

// TestSignWithAKMSKey: what changes when the key is in a KMS. The same
// request signed again gets the same serial, validity and extensions (the
// same TBSCertificate), but another signature, since a KMS's ECDSA
// signatures are randomized; each verifies under the anchor.
func TestSignWithAKMSKey(t *testing.T) {
	for name, key := range map[string]crypto.Signer{"ECDSA P-256": p256Key(t), "RSA 2048": rsaKey(t, 2048)} {
		t.Run(name, func(t *testing.T) {
			anchor := kmsAnchor(t, key)
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
			if !bytes.Equal(first.Certificate.RawTBSCertificate, again.Certificate.RawTBSCertificate) {
				t.Error("the same request signed twice differs in more than its signature")
			}
			for _, c := range []*Issued{first, again} {
				if err := c.Certificate.CheckSignatureFrom(anchor.Certificate); err != nil {
					t.Errorf("not signed by the anchor: %v", err)
				}
			}
			assertSerialPerRequest(t, anchor, req, first)
		})
	}
}

// TestAnchorWithKeyRefusesACertificateItsKeyDidNotSign: whoever may write
// the ConfigMap or Secret beside a KMS key can make a certificate carrying
// that key's public key under another subject and validity, signed by a
// key of their own. It is refused: only the KMS key can sign its anchor.
func TestAnchorWithKeyRefusesACertificateItsKeyDidNotSign(t *testing.T) {
	kmsPriv, forger := p256Key(t), p256Key(t)
	forgerCA := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "forger"}, NotBefore: testNow.Add(-time.Hour),
		NotAfter: testNow.Add(time.Hour), BasicConstraintsValid: true, IsCA: true, KeyUsage: x509.KeyUsageCertSign}
	swapped := &x509.Certificate{SerialNumber: big.NewInt(8), Subject: pkix.Name{CommonName: "root.linkerd.cluster.local"},
		NotBefore: testNow.Add(-time.Hour), NotAfter: testNow.Add(2 * time.Hour), BasicConstraintsValid: true, IsCA: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, swapped, forgerCA, kmsPriv.Public(), forger)
	if err != nil {
		t.Fatal(err)
	}
	_, err = AnchorWithKey(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), kmsKey{kmsPriv}, "aws:alias/root", testNow)
	var bad *AnchorError
	if !errors.As(err, &bad) || !strings.Contains(err.Error(), "not signed by its own key aws:alias/root") {
		t.Fatalf("a certificate with the KMS key's public key, signed by another: %v; want it refused", err)
	}
	kmsAnchor(t, kmsPriv) // the key's own certificate is taken
}
