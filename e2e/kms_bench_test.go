//go:build e2e

package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/anchorkey/awskms"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/trustanchor"
)

// BenchmarkSignThroughKMS is one signing of the guide's identity issuer,
// policy and all, with the trust anchor's key in a Secret and in local-kms
// (one Sign call over loopback per certificate), side by side (make
// bench-kms; figures in docs/performance.md).
func BenchmarkSignThroughKMS(b *testing.B) {
	now := time.Now()
	policy := signer.Policy{TrustDomain: "cluster.local", ControlPlaneNamespace: "linkerd", MinDuration: time.Hour, MaxDuration: 8760 * time.Hour}
	req := identityIssuerRequest(b, policy.CommonName())

	secretPEM, err := trustanchor.Create("root.linkerd.cluster.local", trustanchor.DefaultValidity, now)
	if err != nil {
		b.Fatal(err)
	}
	secretAnchor, err := signer.ParseAnchor(secretPEM.Certificate, secretPEM.Key, now)
	if err != nil {
		b.Fatal(err)
	}

	kc := cp.KMSClient()
	created, err := kc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: kmstypes.KeySpecEccNistP256, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		b.Fatalf("creating a key in local-kms: %v", err)
	}
	key, err := awskms.Open(ctx, kc, *created.KeyMetadata.KeyId)
	if err != nil {
		b.Fatal(err)
	}
	certPEM, err := trustanchor.CreateWith(key, "root.linkerd.cluster.local", trustanchor.DefaultValidity, now)
	if err != nil {
		b.Fatal(err)
	}
	kmsAnchor, err := signer.AnchorWithKey(certPEM, key, "aws:"+*created.KeyMetadata.KeyId, now)
	if err != nil {
		b.Fatal(err)
	}

	for _, bc := range []struct {
		name   string
		anchor *signer.Anchor
	}{{"secret", secretAnchor}, {"local-kms", kmsAnchor}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				issued, err := signer.Sign(policy, bc.anchor, req, time.Now())
				if err != nil {
					b.Fatal(err)
				}
				if issued.Certificate.CheckSignatureFrom(bc.anchor.Certificate) != nil {
					b.Fatal("the certificate does not verify under its anchor")
				}
			}
		})
	}
}

// identityIssuerRequest is what cert-manager asks for the guide's
// Certificate in namespace linkerd: an ECDSA P-256 CA for cn, Linkerd's
// usages, 48h.
func identityIssuerRequest(b *testing.B, cn string) signer.Request {
	b.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: []string{cn}}, key)
	if err != nil {
		b.Fatal(err)
	}
	return signer.Request{
		Namespace:   "linkerd",
		CSR:         pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}),
		Duration:    48 * time.Hour,
		IsCA:        true,
		KeyUsage:    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
}
