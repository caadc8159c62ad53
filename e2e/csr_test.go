//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// TestKubernetesCSR: with the CSR path turned on for a named requester, the
// same policy applies to certificates.k8s.io CertificateSigningRequests
// naming the cluster issuer as signer; anyone else's CSR is refused.
func TestKubernetesCSR(t *testing.T) {
	anchor, iss := readyClusterIssuer(t, "linkerd-csr", "csr-anchor")
	var requestAs func(c client.Client, name string, isCA bool) *certificatesv1.CertificateSigningRequest

	request := func(name string, isCA bool) *certificatesv1.CertificateSigningRequest {
		return requestAs(cl, name, isCA)
	}
	requestAs = func(c client.Client, name string, isCA bool) *certificatesv1.CertificateSigningRequest {
		csrPEM, _, err := testpki.CSRFor(testpki.SeedCertificate(nsLinkerd))
		if err != nil {
			t.Fatal(err)
		}
		csr := &certificatesv1.CertificateSigningRequest{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.CertificateSigningRequestSpec{
				Request:           csrPEM,
				SignerName:        iss.GetIssuerTypeIdentifier() + "/" + iss.Name,
				ExpirationSeconds: new(int32(24 * 3600)),
				Usages: []certificatesv1.KeyUsage{
					certificatesv1.UsageCertSign, certificatesv1.UsageCRLSign, certificatesv1.UsageServerAuth, certificatesv1.UsageClientAuth,
				},
			},
		}
		if isCA {
			csr.Annotations = map[string]string{"experimental.cert-manager.io/request-is-ca": "true"}
		}
		if err := c.Create(ctx, csr); err != nil {
			t.Fatalf("creating CSR %s: %v", name, err)
		}
		t.Cleanup(func() { _ = cl.Delete(ctx, csr) })
		csr.Status.Conditions = append(csr.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateApproved, Status: corev1.ConditionTrue, Reason: "E2E", Message: "approved by the e2e suite",
		})
		if err := cl.SubResource("approval").Update(ctx, csr); err != nil {
			t.Fatalf("approving %s: %v", name, err)
		}
		return csr
	}

	t.Run("signed", func(t *testing.T) {
		csr := request("linkerd-identity-csr", true)
		eventually(t, 30*time.Second, "status.certificate", func() error {
			if err := cl.Get(ctx, client.ObjectKeyFromObject(csr), csr); err != nil {
				return err
			}
			if len(csr.Status.Certificate) == 0 {
				return fmt.Errorf("no certificate yet; conditions %+v", csr.Status.Conditions)
			}
			return nil
		})
		cert := parsePEMCertificates(t, "status.certificate", csr.Status.Certificate)[0]
		if cert.Subject.CommonName != testpki.IdentityCommonName || !cert.IsCA || !cert.MaxPathLenZero {
			t.Errorf("subject %s isCA %v pathLenZero %v", cert.Subject, cert.IsCA, cert.MaxPathLenZero)
		}
		if err := cert.CheckSignatureFrom(anchor.Certificate); err != nil {
			t.Errorf("not signed by the anchor: %v", err)
		}
		if got := cert.NotAfter.Sub(cert.NotBefore); got < 24*time.Hour || got > 24*time.Hour+5*time.Minute {
			t.Errorf("lifetime %s, want expirationSeconds' 24h", got)
		}
	})
	t.Run("refused", func(t *testing.T) {
		csr := request("not-a-ca-csr", false)
		eventually(t, 30*time.Second, "Failed condition", func() error {
			if err := cl.Get(ctx, client.ObjectKeyFromObject(csr), csr); err != nil {
				return err
			}
			for _, c := range csr.Status.Conditions {
				if c.Type == certificatesv1.CertificateFailed && c.Status == corev1.ConditionTrue {
					if len(csr.Status.Certificate) != 0 {
						t.Fatal("Failed CSR carries a certificate")
					}
					t.Logf("Failed: %s", c.Message)
					return nil
				}
			}
			return fmt.Errorf("conditions %+v", csr.Status.Conditions)
		})
	})
	t.Run("refused for a requester not named", func(t *testing.T) {
		const tenant = "system:serviceaccount:" + nsRefusals + ":default"
		create(t, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-csr-creator"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"certificatesigningrequests"}, Verbs: []string{"create", "get"}}},
		}, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "e2e-csr-creator"},
			RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "e2e-csr-creator"},
			Subjects:   []rbacv1.Subject{{Kind: "User", Name: tenant}},
		})
		cfg := rest.CopyConfig(cp.Config)
		cfg.Impersonate = rest.ImpersonationConfig{UserName: tenant}
		tenantClient, err := client.New(cfg, client.Options{Scheme: cl.Scheme()})
		if err != nil {
			t.Fatal(err)
		}
		csr := requestAs(tenantClient, "tenant-identity-csr", true)
		eventually(t, 30*time.Second, "Failed condition", func() error {
			if err := cl.Get(ctx, client.ObjectKeyFromObject(csr), csr); err != nil {
				return err
			}
			if csr.Spec.Username != tenant {
				t.Fatalf("CSR made by %q, want the tenant", csr.Spec.Username)
			}
			for _, c := range csr.Status.Conditions {
				if c.Type == certificatesv1.CertificateFailed && c.Status == corev1.ConditionTrue {
					if len(csr.Status.Certificate) != 0 {
						t.Fatal("Failed CSR carries a certificate")
					}
					if want := `requester: Kubernetes CertificateSigningRequest from "` + tenant + `"`; !strings.Contains(c.Message, want) {
						t.Errorf("message %q, want %q", c.Message, want)
					}
					return nil
				}
			}
			return fmt.Errorf("conditions %+v", csr.Status.Conditions)
		})
	})
}

// TestDeniedIsNeverSigned: a CertificateRequest denied before any approver
// approves it is left alone. An admission policy stands in for an approver
// that lacks permission for this signer, so the suite's denial cannot race
// cert-manager's approver.
func TestDeniedIsNeverSigned(t *testing.T) {
	const label = "e2e.linkerdca.io/never-approve"
	policy, binding := denyPolicy("e2e-never-approve", []admissionv1.OperationType{admissionv1.Create, admissionv1.Update},
		[]string{"certificaterequests", "certificaterequests/status"},
		"!has(object.metadata.labels) || !('"+label+"' in object.metadata.labels) || !has(object.status) || !has(object.status.conditions) || !object.status.conditions.exists(c, c.type == 'Approved')",
		"this CertificateRequest may not be approved")
	create(t, policy, binding)

	_, iss := readyIssuer(t, nsDenied, "linkerd", "anchor")

	csrPEM, _, err := testpki.CSRFor(testpki.SeedCertificate(nsDenied))
	if err != nil {
		t.Fatal(err)
	}
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: nsDenied, Name: "denied", Labels: map[string]string{label: "true"}},
		Spec: cmapi.CertificateRequestSpec{
			Request:   csrPEM,
			IsCA:      true,
			Duration:  &metav1.Duration{Duration: 24 * time.Hour},
			Usages:    []cmapi.KeyUsage{cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageServerAuth, cmapi.UsageClientAuth},
			IssuerRef: cmmeta.IssuerReference{Group: issuerGroup, Kind: v1alpha1.IssuerKind, Name: iss.Name},
		},
	}
	// The policy must really stop an approval, or this test proves nothing.
	eventually(t, 10*time.Second, "admission policy in force", func() error {
		probe := cr.DeepCopy()
		probe.Name = "policy-probe"
		if err := cl.Create(ctx, probe); err != nil {
			return err
		}
		defer func() { _ = cl.Delete(ctx, probe) }()
		probe.Status.Conditions = []cmapi.CertificateRequestCondition{{Type: cmapi.CertificateRequestConditionApproved, Status: cmmeta.ConditionTrue, Reason: "Probe", Message: "probe"}}
		err := cl.Status().Update(ctx, probe)
		if err == nil || !strings.Contains(err.Error(), "may not be approved") {
			return fmt.Errorf("an approval was not refused by the policy: %w", err)
		}
		return nil
	})

	create(t, cr)
	cr.Status.Conditions = []cmapi.CertificateRequestCondition{{
		Type: cmapi.CertificateRequestConditionDenied, Status: cmmeta.ConditionTrue, Reason: "E2E", Message: "denied by the e2e suite",
	}}
	if err := cl.Status().Update(ctx, cr); err != nil {
		t.Fatalf("denying: %v", err)
	}
	// Give the issuer every chance to (wrongly) sign.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
			t.Fatal(err)
		}
		if len(cr.Status.Certificate) != 0 {
			t.Fatal("a denied CertificateRequest was signed")
		}
		if c := requestCondition(cr, cmapi.CertificateRequestConditionReady); c != nil && c.Status == cmmeta.ConditionTrue {
			t.Fatalf("a denied CertificateRequest is Ready: %+v", c)
		}
		time.Sleep(250 * time.Millisecond)
	}
	if c := requestCondition(cr, cmapi.CertificateRequestConditionApproved); c != nil {
		t.Errorf("the request was approved after all: %+v", c)
	}
}
