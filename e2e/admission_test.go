//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// admissionLabel selects the namespaces whose requests the suite's copy of
// the chart's admission policies judges: the other tests' deliberately bad
// requests are the signer's to refuse.
const admissionLabel = "linkerdca.io/e2e-admission"

// admissionCase is a Certificate the signer refuses, and the words both the
// admission policy's message and the signer's refusal must carry.
type admissionCase struct {
	name   string
	ns     string
	issuer string // a LinkerdCAIssuer's name; empty: the cluster issuer
	mutate func(*cmapi.Certificate)
	want   string
}

// TestAdmissionPolicy: the chart's ValidatingAdmissionPolicies, enforced by
// the real API server, refuse each bad Certificate at `kubectl apply` with
// the signer's own words, let the good one through to be issued, follow an
// issuer's spec as it changes; and with them off, the signer refuses the
// same Certificates for the same reasons.
func TestAdmissionPolicy(t *testing.T) {
	t.Parallel()
	const clusterIssuer, nsIssuer, trustDomain = "e2e-admission", "e2e-admission-ns", "admission.example"
	cn := "identity." + nsAdmission + "." + trustDomain
	applyAdmissionPolicies(t)
	for _, ns := range []string{nsAdmission, nsAdmissionTenant} {
		labelNamespace(t, ns, "on")
	}

	anchor := newAnchor(t)
	create(t, anchorSecret(nsCluster, clusterIssuer, anchor), anchorSecret(nsAdmission, nsIssuer, anchor))
	iss := &v1alpha1.LinkerdCAClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: clusterIssuer},
		Spec: v1alpha1.IssuerSpec{TrustAnchorSecretName: clusterIssuer, ControlPlaneNamespace: nsAdmission, TrustDomain: trustDomain,
			MaxDuration: &metav1.Duration{Duration: 720 * time.Hour}},
	}
	nsIss := linkerdIssuer(nsAdmission, nsIssuer, nsIssuer)
	create(t, iss, nsIss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	waitIssuer(t, nsIss, metav1.ConditionTrue, "")

	cases := []admissionCase{
		{"isCA false", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.IsCA = false },
			"must be a CA (set spec.isCA: true on the Certificate)"},
		{"a usage missing", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.Usages = c.Spec.Usages[:3] },
			`missing "client auth"; a Linkerd identity issuer needs cert sign, crl sign, server auth, client auth`},
		{"cert-manager's default usages", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.Usages = nil },
			`missing "crl sign", "server auth", "client auth"`},
		{"a usage too many", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.Usages = append(c.Spec.Usages, cmapi.UsageKeyEncipherment) },
			`"key encipherment" not allowed; a Linkerd identity issuer may have only`},
		{"another common name", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.CommonName = "identity.linkerd.cluster.local" },
			`the common name must be "` + cn + `", identity.<controlPlaneNamespace>.<trustDomain> of this issuer (set spec.commonName on the Certificate)`},
		{"cert-manager's default key (RSA)", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.PrivateKey = nil },
			"is not allowed; a Linkerd identity issuer key must be ECDSA P-256 (set spec.privateKey.algorithm: ECDSA and size: 256 on the Certificate)"},
		{"P-384", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.PrivateKey.Size = 384 },
			"a Linkerd identity issuer key must be ECDSA P-256"},
		{"longer than maxDuration", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.Duration = &metav1.Duration{Duration: 1000 * time.Hour} },
			"is longer than the maximum; this issuer allows"},
		{"shorter than minDuration", nsAdmission, "", func(c *cmapi.Certificate) {
			c.Spec.Duration, c.Spec.RenewBefore = &metav1.Duration{Duration: 30 * time.Minute}, &metav1.Duration{Duration: 10 * time.Minute}
		}, "is shorter than the minimum; this issuer allows"},
		{"another DNS name", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.DNSNames = append(c.Spec.DNSNames, "evil.example") },
			`DNS name "evil.example" is not allowed; the only subject alternative name allowed is DNS name "` + cn + `"`},
		{"an organization", nsAdmission, "", func(c *cmapi.Certificate) { c.Spec.Subject = &cmapi.X509Subject{Organizations: []string{"acme"}} },
			"the subject must be only CN=" + cn + " (remove spec.subject from the Certificate)"},
		{"the tenant's Certificate to the cluster issuer", nsAdmissionTenant, "", func(*cmapi.Certificate) {},
			`the request comes from namespace "` + nsAdmissionTenant + `"; this issuer signs only for namespace "` + nsAdmission + `"`},
		{"a LinkerdCAIssuer's: isCA false", nsAdmission, nsIssuer, func(c *cmapi.Certificate) { c.Spec.IsCA = false },
			"must be a CA (set spec.isCA: true on the Certificate)"},
		{"a LinkerdCAIssuer's with no issuerRef kind: isCA false", nsAdmission, nsIssuer, func(c *cmapi.Certificate) {
			c.Spec.IsCA, c.Spec.IssuerRef.Kind = false, ""
		}, "must be a CA (set spec.isCA: true on the Certificate)"},
		{"a LinkerdCAIssuer's: the cluster issuer's trust domain", nsAdmission, nsIssuer, func(c *cmapi.Certificate) {
			c.Spec.CommonName, c.Spec.DNSNames = cn, []string{cn}
		},
			`the common name must be "identity.linkerd.cluster.local"`},
	}

	// The API server reads the policies' parameters through an informer:
	// until it has seen an issuer, what names it is allowed.
	eventually(t, 30*time.Second, "the policies judging by both issuers", func() error {
		for _, tc := range []admissionCase{cases[0], cases[len(cases)-2]} {
			if out, err := kubectlApply(t, admissionCertificate(tc, cn, clusterIssuer), "--dry-run=server"); err == nil {
				return fmt.Errorf("%s: allowed: %s", tc.name, out)
			}
		}
		return nil
	})

	t.Run("each bad Certificate is refused at kubectl apply", func(t *testing.T) {
		for _, tc := range cases {
			crt := admissionCertificate(tc, cn, clusterIssuer)
			start := time.Now()
			out, err := kubectlApply(t, crt)
			took := time.Since(start)
			kind := v1alpha1.ClusterIssuerKind + " " + clusterIssuer
			if tc.issuer != "" {
				kind = v1alpha1.IssuerKind + " " + tc.issuer
			}
			switch {
			case err == nil:
				t.Errorf("%s: kubectl apply passed: %s", tc.name, out)
			case !strings.Contains(out, "ValidatingAdmissionPolicy") || !strings.Contains(out, kind+": ") || !strings.Contains(out, tc.want):
				t.Errorf("%s: kubectl apply failed with\n%s\nwant the policy's refusal naming %s, with %q", tc.name, out, kind, tc.want)
			case took > 5*time.Second:
				t.Errorf("%s: refused after %s, not at once", tc.name, took)
			default:
				t.Logf("%s: refused in %s: %s", tc.name, took.Round(time.Millisecond), strings.TrimSpace(out))
			}
			if err := cl.Get(ctx, client.ObjectKeyFromObject(crt), &cmapi.Certificate{}); err == nil {
				t.Errorf("%s: the refused Certificate exists", tc.name)
			}
		}
	})

	t.Run("the good Certificate passes and is issued", func(t *testing.T) {
		good := admissionCertificate(admissionCase{name: "good", ns: nsAdmission, mutate: func(*cmapi.Certificate) {}}, cn, clusterIssuer)
		if out, err := kubectlApply(t, good); err != nil {
			t.Fatalf("kubectl apply of the good Certificate: %v\n%s", err, out)
		}
		t.Cleanup(func() { _ = cl.Delete(ctx, good) })
		// Its CertificateRequest, which cert-manager makes, passes too.
		waitCertificateReady(t, nsAdmission, good.Name, 30*time.Second)
	})

	t.Run("the policy follows an edit of spec.controlPlaneNamespace", func(t *testing.T) {
		update(t, iss, func() { iss.Spec.ControlPlaneNamespace = nsAdmissionTenant })
		tenantCN := "identity." + nsAdmissionTenant + "." + trustDomain
		tenant := admissionCertificate(admissionCase{name: "tenant", ns: nsAdmissionTenant, mutate: func(*cmapi.Certificate) {}}, tenantCN, clusterIssuer)
		old := admissionCertificate(admissionCase{name: "old", ns: nsAdmission, mutate: func(*cmapi.Certificate) {}}, cn, clusterIssuer)
		eventually(t, 30*time.Second, "the policy judging by the edited spec", func() error {
			if out, err := kubectlApply(t, tenant, "--dry-run=server"); err != nil {
				return fmt.Errorf("the new control plane's Certificate is refused: %s", out)
			}
			if out, err := kubectlApply(t, old, "--dry-run=server"); err == nil || !strings.Contains(out, `this issuer signs only for namespace "`+nsAdmissionTenant+`"`) {
				return fmt.Errorf("the old control plane's Certificate: %w %s", err, out)
			}
			return nil
		})
		update(t, iss, func() { iss.Spec.ControlPlaneNamespace = nsAdmission })
		eventually(t, 30*time.Second, "the policy judging by the restored spec", func() error {
			if out, err := kubectlApply(t, old, "--dry-run=server"); err != nil {
				return fmt.Errorf("the restored control plane's Certificate is refused: %s", out)
			}
			return nil
		})
	})

	t.Run("with the policy off, the signer refuses each for the same reason", func(t *testing.T) {
		for _, ns := range []string{nsAdmission, nsAdmissionTenant} {
			labelNamespace(t, ns, "off")
		}
		for _, tc := range cases {
			crt := admissionCertificate(tc, cn, clusterIssuer)
			eventually(t, 30*time.Second, tc.name+": applied with the policy off", func() error {
				if out, err := kubectlApply(t, crt); err != nil {
					return fmt.Errorf("%w: %s", err, out)
				}
				return nil
			})
			t.Cleanup(func() { _ = cl.Delete(ctx, crt) })
		}
		for _, tc := range cases {
			crt := admissionCertificate(tc, cn, clusterIssuer)
			if msg := waitRequestFailed(t, crt.Namespace, crt.Name); !strings.Contains(msg, tc.want) {
				t.Errorf("%s: the signer refused with\n%s\nwant %q, as the policy said", tc.name, msg, tc.want)
			}
		}
	})
}

// admissionCertificate is the guide's identity issuer Certificate for the
// case's issuer, named after the case, changed by its mutate.
func admissionCertificate(tc admissionCase, cn, clusterIssuer string) *cmapi.Certificate {
	name := "adm-" + strings.NewReplacer(" ", "-", "'", "", "(", "", ")", "", ":", "").Replace(strings.ToLower(tc.name))
	crt := seedCertificate(tc.ns, name, tc.issuer)
	crt.TypeMeta = metav1.TypeMeta{APIVersion: cmapi.SchemeGroupVersion.String(), Kind: cmapi.CertificateKind}
	// A LinkerdCAIssuer's is the guide's as it is: its spec is the default.
	if tc.issuer == "" {
		crt.Spec.CommonName, crt.Spec.DNSNames = cn, []string{cn}
		crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: issuerGroup, Kind: v1alpha1.ClusterIssuerKind, Name: clusterIssuer}
	}
	tc.mutate(crt)
	return crt
}

// kubectlApply applies obj with the real kubectl as the cluster admin and
// returns what kubectl printed.
func kubectlApply(t *testing.T, obj client.Object, args ...string) (string, error) {
	t.Helper()
	raw, err := yaml.Marshal(obj)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(repoRoot(t), "bin", "kubectl"), append([]string{"--kubeconfig", cp.AdminKubeconfig, "apply", "-f", "-"}, args...)...)
	cmd.Stdin = bytes.NewReader(raw)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// applyAdmissionPolicies creates the chart's admission policies, rendered
// as `helm install` renders them on a 1.36 cluster, judging only the
// namespaces labelled admissionLabel=on.
func applyAdmissionPolicies(t *testing.T) {
	t.Helper()
	objs, err := localcp.RenderChart(repoRoot(t), `admissionPolicy.namespaceSelector.matchLabels.linkerdca\.io/e2e-admission=on`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		if o.GetKind() == "ValidatingAdmissionPolicy" || o.GetKind() == "ValidatingAdmissionPolicyBinding" {
			create(t, o)
			n++
		}
	}
	if n != 4 {
		t.Fatalf("the chart rendered %d admission policies and bindings, want 2 of each", n)
	}
}

func labelNamespace(t *testing.T, name, value string) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	update(t, ns, func() {
		if ns.Labels == nil {
			ns.Labels = map[string]string{}
		}
		ns.Labels[admissionLabel] = value
	})
}
