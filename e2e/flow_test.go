//go:build e2e

package e2e

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// TestSeedFlow is Linkerd's guide with this issuer in place of cert-manager's
// CA issuer: trust anchor Secret, LinkerdCAIssuer, the guide's Certificate,
// and the linkerd-identity-issuer Secret Linkerd reads.
func TestSeedFlow(t *testing.T) {
	anchor := newAnchor(t)
	create(t, anchorSecret(nsLinkerd, "linkerd-trust-anchor", anchor))
	iss := linkerdIssuer(nsLinkerd, "linkerd-trust-anchor", "linkerd-trust-anchor")
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "Succeeded checking the issuer")

	create(t, seedCertificate(nsLinkerd, "linkerd-identity-issuer", iss.Name))
	waitCertificateReady(t, nsLinkerd, "linkerd-identity-issuer", 60*time.Second)

	s := mustSecret(t, nsLinkerd, "linkerd-identity-issuer")
	if s.Type != corev1.SecretTypeTLS {
		t.Errorf("Secret type %s, want %s", s.Type, corev1.SecretTypeTLS)
	}
	if !bytes.Equal(s.Data["ca.crt"], anchor.CertPEM) {
		t.Errorf("ca.crt is not the trust anchor:\n%s", s.Data["ca.crt"])
	}
	issuer, _ := assertLinkerdIdentityChecks(t, s)
	if issuer.Subject.String() != "CN=identity.linkerd.cluster.local" {
		t.Errorf("subject %s", issuer.Subject)
	}
	if !issuer.IsCA || issuer.MaxPathLen != 0 || !issuer.MaxPathLenZero {
		t.Errorf("want a CA with path length 0: isCA=%v maxPathLen=%d zero=%v", issuer.IsCA, issuer.MaxPathLen, issuer.MaxPathLenZero)
	}
	if issuer.KeyUsage != x509.KeyUsageCertSign|x509.KeyUsageCRLSign ||
		!slices.Equal(issuer.ExtKeyUsage, []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}) {
		t.Errorf("usages: key %b, extended %v", issuer.KeyUsage, issuer.ExtKeyUsage)
	}
	if k, ok := issuer.PublicKey.(*ecdsa.PublicKey); !ok || k.Curve != elliptic.P256() {
		t.Errorf("key %T, want ECDSA P-256", issuer.PublicKey)
	}
	if got := issuer.NotAfter.Sub(issuer.NotBefore); got < 24*time.Hour || got > 24*time.Hour+5*time.Minute {
		t.Errorf("lifetime %s, want 24h (plus backdating)", got)
	}
	actAsIdentityService(t, s)
}

// TestAutomaticRotation lets cert-manager renew every ten seconds and checks
// every revision it writes.
func TestAutomaticRotation(t *testing.T) {
	t.Parallel() // twenty seconds of cert-manager's renewals, beside the mesh's rotation
	anchor, iss := readyIssuer(t, nsRotation, "linkerd", "anchor")

	crt := seedCertificate(nsRotation, "rotating", iss.Name)
	crt.Spec.Duration = &metav1.Duration{Duration: time.Hour}
	crt.Spec.RenewBefore = &metav1.Duration{Duration: 59*time.Minute + 50*time.Second}
	create(t, crt)

	serials := map[string]bool{}
	eventually(t, 90*time.Second, "three revisions (two renewals)", func() error {
		s, err := getSecret(t, nsRotation, "rotating")
		if err != nil {
			return err
		}
		issuer, _ := assertLinkerdIdentityChecks(t, s)
		if !bytes.Equal(s.Data["ca.crt"], anchor.CertPEM) {
			t.Fatalf("ca.crt changed to something other than the anchor")
		}
		serials[issuer.SerialNumber.String()] = true
		if len(serials) < 3 {
			return fmt.Errorf("%d distinct serials so far", len(serials))
		}
		// cert-manager counts the revision after it writes the Secret.
		var got cmapi.Certificate
		if err := cl.Get(ctx, client.ObjectKeyFromObject(crt), &got); err != nil {
			return err
		}
		if got.Status.Revision == nil || *got.Status.Revision < 3 {
			return fmt.Errorf("three serials, but the Certificate's revision is %v", ptr.Deref(got.Status.Revision, 0))
		}
		return nil
	})
}

// TestRefusals: requests that would not work as a Linkerd identity issuer
// end Failed with the rule's message, and leave no Secret behind.
func TestRefusals(t *testing.T) {
	_, iss := readyIssuer(t, nsRefusals, "linkerd", "anchor")

	for _, tc := range []struct {
		name   string
		mutate func(*cmapi.Certificate)
		want   string
	}{
		{"not-ca", func(c *cmapi.Certificate) { c.Spec.IsCA = false },
			"isCA: the request has isCA false; a Linkerd identity issuer must be a CA"},
		{"no-crl-sign", func(c *cmapi.Certificate) {
			c.Spec.Usages = []cmapi.KeyUsage{cmapi.UsageCertSign, cmapi.UsageServerAuth, cmapi.UsageClientAuth}
		}, `usages: missing "crl sign"; a Linkerd identity issuer needs cert sign, crl sign, server auth, client auth`},
		{"wrong-cn", func(c *cmapi.Certificate) { c.Spec.CommonName, c.Spec.DNSNames = "identity.linkerd.example.org", nil },
			`subject: common name "identity.linkerd.example.org"; the common name must be "identity.linkerd.cluster.local"`},
		{"rsa", func(c *cmapi.Certificate) {
			c.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.RSAKeyAlgorithm, Size: 2048}
		}, "key: RSA 2048 is not allowed; a Linkerd identity issuer key must be ECDSA P-256"},
		{"extra-dns", func(c *cmapi.Certificate) { c.Spec.DNSNames = append(c.Spec.DNSNames, "evil.example.org") },
			`subjectAltNames: DNS name "evil.example.org" is not allowed`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crt := seedCertificate(nsRefusals, tc.name, iss.Name)
			tc.mutate(crt)
			create(t, crt)
			msg := waitRequestFailed(t, nsRefusals, tc.name)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("CertificateRequest message %q\nwant it to contain %q", msg, tc.want)
			}
			var got cmapi.Certificate
			if err := cl.Get(ctx, client.ObjectKeyFromObject(crt), &got); err != nil {
				t.Fatal(err)
			}
			if c := certificateCondition(&got, cmapi.CertificateConditionReady); c != nil && c.Status == cmmeta.ConditionTrue {
				t.Errorf("Certificate is Ready after a refusal")
			}
			assertNoSecret(t, nsRefusals, tc.name)
		})
	}

	t.Run("a refused change leaves the good Secret untouched", func(t *testing.T) {
		crt := seedCertificate(nsRefusals, "was-good", iss.Name)
		create(t, crt)
		waitCertificateReady(t, nsRefusals, crt.Name, 60*time.Second)
		before := mustSecret(t, nsRefusals, crt.Name)

		cur := crt.DeepCopy()
		update(t, cur, func() { cur.Spec.DNSNames = append(cur.Spec.DNSNames, "evil.example.org") })
		msg := waitRequestFailed(t, nsRefusals, crt.Name)
		if !strings.Contains(msg, `DNS name "evil.example.org" is not allowed`) {
			t.Errorf("message %q", msg)
		}
		after := mustSecret(t, nsRefusals, crt.Name)
		for _, k := range []string{"ca.crt", corev1.TLSCertKey, corev1.TLSPrivateKeyKey} {
			if !bytes.Equal(before.Data[k], after.Data[k]) {
				t.Errorf("%s changed after a refused request", k)
			}
		}
	})
}

// TestIssuerHealth: readiness follows the anchor Secret, without restarts.
func TestIssuerHealth(t *testing.T) {
	iss := linkerdIssuer(nsHealth, "linkerd", "anchor")
	create(t, iss)
	c := waitIssuer(t, iss, metav1.ConditionFalse, "trust anchor Secret e2e-health/anchor not found; create it")
	t.Logf("without its Secret: Ready=%s reason=%s message=%q", c.Status, c.Reason, c.Message)

	first := newAnchor(t)
	secret := anchorSecret(nsHealth, "anchor", first)
	create(t, secret)
	waitIssuer(t, iss, metav1.ConditionTrue, "")

	other := newAnchor(t)
	secret.Data[corev1.TLSPrivateKeyKey] = other.KeyPEM
	if err := cl.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitIssuer(t, iss, metav1.ConditionFalse, "tls.key does not match the certificate in tls.crt")

	second := newAnchor(t)
	secret.Data = anchorSecret(nsHealth, "anchor", second).Data
	if err := cl.Update(ctx, secret); err != nil {
		t.Fatal(err)
	}
	waitIssuer(t, iss, metav1.ConditionTrue, "")

	create(t, seedCertificate(nsHealth, "after-rotation", iss.Name))
	waitCertificateReady(t, nsHealth, "after-rotation", 60*time.Second)
	s := mustSecret(t, nsHealth, "after-rotation")
	if !bytes.Equal(s.Data["ca.crt"], second.CertPEM) {
		t.Errorf("ca.crt is not the new root")
	}
	issuer, _ := assertLinkerdIdentityChecks(t, s)
	if err := issuer.CheckSignatureFrom(second.Certificate); err != nil {
		t.Errorf("not signed by the new root: %v", err)
	}
}

// TestClusterIssuer: the anchor lives in the controller's cluster resource
// namespace, the Certificate in linkerd.
func TestClusterIssuer(t *testing.T) {
	anchor, iss := readyClusterIssuer(t, "linkerd-cluster", "cluster-anchor")

	crt := seedCertificate(nsLinkerd, "from-cluster-issuer", iss.Name)
	crt.Spec.IssuerRef.Kind = v1alpha1.ClusterIssuerKind
	create(t, crt)
	waitCertificateReady(t, nsLinkerd, crt.Name, 60*time.Second)
	s := mustSecret(t, nsLinkerd, crt.Name)
	if !bytes.Equal(s.Data["ca.crt"], anchor.CertPEM) {
		t.Errorf("ca.crt is not the cluster issuer's anchor")
	}
	assertLinkerdIdentityChecks(t, s)
	actAsIdentityService(t, s)
}

// TestRefusedCertificateIsNotRetriedAtOnce: the local cert-manager backs off
// a failed request as a real one does (an hour at first), so a refused
// Certificate yields exactly one CertificateRequest within a minute.
func TestRefusedCertificateIsNotRetriedAtOnce(t *testing.T) {
	t.Parallel() // a minute of waiting, beside the mesh's rotation
	_, iss := readyIssuer(t, nsRefusals, "backoff", "backoff-anchor")
	crt := seedCertificate(nsRefusals, "refused-once", iss.Name)
	crt.Spec.IsCA = false
	create(t, crt)
	start := time.Now()
	waitRequestFailed(t, nsRefusals, crt.Name)
	for time.Since(start) < time.Minute {
		if n := len(requestsFor(t, nsRefusals, crt.Name)); n != 1 {
			t.Fatalf("%d CertificateRequests %s after the Certificate was created; want exactly 1 (cert-manager's backoff)", n, time.Since(start).Round(time.Second))
		}
		time.Sleep(time.Second)
	}
}
