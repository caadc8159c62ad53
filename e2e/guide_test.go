//go:build e2e

package e2e

import (
	"bytes"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

func waitTrustRoots(t *testing.T, anchors ...[]byte) *corev1.ConfigMap {
	t.Helper()
	var cm corev1.ConfigMap
	eventually(t, 30*time.Second, "trust-manager's "+guide.TrustRoots+" ConfigMap with the anchors", func() error {
		if err := cl.Get(ctx, client.ObjectKey{Namespace: nsGuide, Name: guide.TrustRoots}, &cm); err != nil {
			return err
		}
		bundle := cm.Data["ca-bundle.crt"]
		for i, a := range anchors {
			if !strings.Contains(bundle, strings.TrimSpace(string(a))) {
				return fmt.Errorf("anchor %d not in the bundle yet", i+1)
			}
		}
		if n := strings.Count(bundle, "BEGIN CERTIFICATE"); n != len(anchors) {
			return fmt.Errorf("%d roots in the bundle, want %d", n, len(anchors))
		}
		return nil
	})
	return &cm
}

func waitTrusted(t *testing.T, iss client.Object, status metav1.ConditionStatus) {
	t.Helper()
	eventually(t, 30*time.Second, "TrustAnchorTrusted="+string(status), func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		c := meta.FindStatusCondition(iss.(v1alpha1.GenericIssuer).GetStatus().Conditions, "TrustAnchorTrusted")
		if c == nil || c.Status != status {
			return fmt.Errorf("condition %+v", c)
		}
		return nil
	})
}

// renew asks cert-manager to reissue a Certificate now, as cmctl renew does.
func renew(t *testing.T, ns, name string) {
	t.Helper()
	var crt cmapi.Certificate
	if err := cl.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &crt); err != nil {
		t.Fatal(err)
	}
	crt.Status.Conditions = append(crt.Status.Conditions, cmapi.CertificateCondition{
		Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue, Reason: "ManuallyTriggered",
		Message: "renewed by the e2e suite", LastTransitionTime: &metav1.Time{Time: time.Now()}, ObservedGeneration: crt.Generation,
	})
	if err := cl.Status().Update(ctx, &crt); err != nil {
		t.Fatalf("renewing %s/%s: %v", ns, name, err)
	}
}

// TestCurrentGuideFlow is Linkerd's current guide with this issuer: the
// root made by cert-manager's SelfSigned issuer and kept in cert-manager, a
// LinkerdCAClusterIssuer signing linkerd-identity-issuer in the control
// plane's namespace, trust-manager distributing the trusted set the issuer
// keeps. Then the same cluster issuer refuses a tenant, and the anchor is
// rotated by hand, as docs/rotation.md's appendix describes, once the
// issuer's own rotation is turned off.
func TestCurrentGuideFlow(t *testing.T) {
	var ns corev1.Namespace
	if err := cl.Get(ctx, client.ObjectKey{Name: nsGuide}, &ns); err != nil {
		t.Fatal(err)
	}
	ns.Labels = map[string]string{guide.ControlPlaneLabel: "true"}
	if err := cl.Update(ctx, &ns); err != nil {
		t.Fatal(err)
	}

	// 1–2. The root, from cert-manager's SelfSigned issuer, in cert-manager.
	create(t, guide.SelfSignedRootIssuer())
	create(t, guide.TrustAnchorCertificate(guide.TrustAnchor))
	waitCertificateReady(t, nsCluster, guide.TrustAnchor, 60*time.Second)
	anchor := mustSecret(t, nsCluster, guide.TrustAnchor)

	// 3. The cluster issuer reads it from the cluster resource namespace.
	iss := guide.ClusterIssuer(guide.TrustAnchor, nsGuide)
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")

	// 5. trust-manager writes the roots into the control plane's namespace.
	bundle := guide.Bundle()
	create(t, bundle)
	waitTrustRoots(t, anchor.Data["tls.crt"])
	waitTrusted(t, iss, metav1.ConditionTrue)

	// 4. The identity issuer Certificate in the control plane's namespace.
	create(t, guide.IdentityIssuerCertificate(nsGuide, guide.IdentityIssuer))
	waitCertificateReady(t, nsGuide, "linkerd-identity-issuer", 60*time.Second)
	s := mustSecret(t, nsGuide, "linkerd-identity-issuer")
	if !bytes.Equal(bytes.TrimSpace(s.Data["ca.crt"]), bytes.TrimSpace(anchor.Data["tls.crt"])) {
		t.Errorf("ca.crt is not the trust roots bundle (the anchor):\n%s", s.Data["ca.crt"])
	}
	issued, _ := assertLinkerdIdentityChecks(t, s)
	if got := issued.NotAfter.Sub(issued.NotBefore); got < 48*time.Hour || got > 48*time.Hour+5*time.Minute {
		t.Errorf("lifetime %s, want the guide's 48h", got)
	}
	actAsIdentityService(t, s)

	// 6. linkerd-ca check passes on it, trust roots included.
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, []string{"check", "--kubeconfig", cp.AdminKubeconfig, "-L", nsGuide}, &out, &errOut)
	if code != 0 || !strings.Contains(out.String(), "√ issuer cert chains to Linkerd's trust roots") ||
		!strings.Contains(out.String(), "√ the identity issuer's LinkerdCA issuer is Ready") {
		t.Errorf("linkerd-ca check: %d\n%s%s", code, out.String(), errOut.String())
	}

	t.Run("a tenant gets no mesh CA", func(t *testing.T) {
		// The control plane's own request, made from a tenant's namespace.
		crt := guide.IdentityIssuerCertificate(nsGuide, "stolen-identity-issuer")
		crt.Namespace = nsRefusals
		create(t, crt)
		msg := waitRequestFailed(t, nsRefusals, crt.Name)
		want := fmt.Sprintf(`namespace: the request comes from namespace %q; this issuer signs only for namespace %q`, nsRefusals, nsGuide)
		if !strings.Contains(msg, want) {
			t.Errorf("message %q\nwant it to contain %q", msg, want)
		}
		assertNoSecret(t, nsRefusals, crt.Name)
	})

	t.Run("rotating the anchor by hand through the Bundle", func(t *testing.T) {
		update(t, iss, func() { iss.Spec.Rotation = nil })
		update(t, bundle, func() { bundle.Object["spec"] = guide.BundleOfSecrets(guide.TrustAnchor).Object["spec"] })
		create(t, guide.TrustAnchorCertificate(guide.TrustAnchor+"-next"))
		waitCertificateReady(t, nsCluster, guide.TrustAnchor+"-next", 60*time.Second)
		next := mustSecret(t, nsCluster, guide.TrustAnchor+"-next")

		// Switching before the Bundle carries the new root: the trust gate
		// holds, nothing is signed with it.
		setAnchor := func(name string) {
			t.Helper()
			update(t, iss, func() { iss.Spec.TrustAnchorSecretName = name })
		}
		setAnchor(guide.TrustAnchor + "-next")
		waitIssuer(t, iss, metav1.ConditionFalse, "TrustAnchorNotTrusted")
		setAnchor(guide.TrustAnchor)
		waitIssuer(t, iss, metav1.ConditionTrue, "")

		// 1. Trust both roots: old and new Bundle sources.
		update(t, bundle, func() {
			bundle.Object["spec"] = guide.BundleOfSecrets(guide.TrustAnchor, guide.TrustAnchor+"-next").Object["spec"]
		})
		waitTrustRoots(t, anchor.Data["tls.crt"], next.Data["tls.crt"])

		// 2. Switch the issuer, renew: signed by the new root, both in ca.crt.
		setAnchor(guide.TrustAnchor + "-next")
		waitIssuer(t, iss, metav1.ConditionTrue, "")
		renew(t, nsGuide, "linkerd-identity-issuer")
		eventually(t, 60*time.Second, "the identity issuer re-signed by the new root", func() error {
			s, err := getSecret(t, nsGuide, "linkerd-identity-issuer")
			if err != nil {
				return err
			}
			certs := parsePEMCertificates(t, "tls.crt", s.Data["tls.crt"])
			nextRoot := parsePEMCertificates(t, "next root", next.Data["tls.crt"])[0]
			if err := certs[0].CheckSignatureFrom(nextRoot); err != nil {
				return err
			}
			if n := bytes.Count(s.Data["ca.crt"], []byte("BEGIN CERTIFICATE")); n != 2 {
				return fmt.Errorf("ca.crt holds %d roots, want both", n)
			}
			return nil
		})
		assertLinkerdIdentityChecks(t, mustSecret(t, nsGuide, "linkerd-identity-issuer"))

		// 3. Retire the old root: the issuer stays Ready and trusted.
		update(t, bundle, func() { bundle.Object["spec"] = guide.BundleOfSecrets(guide.TrustAnchor + "-next").Object["spec"] })
		waitTrustRoots(t, next.Data["tls.crt"])
		waitTrusted(t, iss, metav1.ConditionTrue)
		waitIssuer(t, iss, metav1.ConditionTrue, "")
	})
}

// TestAnchorConstraintsRefused: an anchor whose constraints would make
// Linkerd reject its chain never makes a Ready issuer; each kind says what
// is wrong.
func TestAnchorConstraintsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*x509.Certificate)
		want   string
	}{
		{"name-constraints", func(c *x509.Certificate) { c.PermittedDNSDomains = []string{"example.com"} },
			`the trust anchor's name constraints do not permit the proxy identity "default.default.serviceaccount.identity.linkerd.cluster.local"`},
		{"critical-extension", func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 55555, 1}, Critical: true, Value: []byte{0x05, 0x00}}}
		}, "the trust anchor has critical extension 1.3.6.1.4.1.55555.1, which verifiers do not understand"},
		{"policy-constraints", func(c *x509.Certificate) {
			c.ExtraExtensions = []pkix.Extension{{Id: asn1.ObjectIdentifier{2, 5, 29, 36}, Critical: true, Value: []byte{0x30, 0x03, 0x80, 0x01, 0x00}}}
		}, "the trust anchor's policy constraints require an explicit certificate policy"},
		{"ext-key-usage", func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageCodeSigning} },
			"restricts extended key usages without both server auth and client auth"},
		{"path-length", func(c *x509.Certificate) { c.MaxPathLen, c.MaxPathLenZero = 0, true },
			"has path length 0, so the issuer it signs could not sign proxy certificates"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := testpki.NewAnchorWith(tc.mutate, time.Now().Add(-time.Minute), time.Now().Add(365*24*time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			create(t, anchorSecret(nsHealth, "constrained-"+tc.name, a))
			iss := linkerdIssuer(nsHealth, "constrained-"+tc.name, "constrained-"+tc.name)
			create(t, iss)
			c := waitIssuer(t, iss, metav1.ConditionFalse, tc.want)
			t.Logf("%s: %s", tc.name, c.Message)
		})
	}
}
