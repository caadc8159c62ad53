package signer

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"errors"
	"io"
	"strings"
	"testing"
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
