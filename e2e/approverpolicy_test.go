//go:build e2e

package e2e

import (
	"errors"
	"fmt"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// approvedByPolicy is the reason approver-policy gives its Approved and
// Denied conditions; cert-manager's own approver says cert-manager.io.
const approvedByPolicy = "policy.cert-manager.io"

// TestApproverPolicy: on a control plane of its own, cert-manager's
// built-in approver is off (its chart's disableAutoApproval) and the real
// approver-policy approves, under the chart's approverPolicy objects. The
// current guide's identity issuer is approved by approver-policy and
// issued; a request outside the policy is Denied by approver-policy and
// never signed. Everything on the local plane runs as system:masters, so
// the chart's grants (approve for approver-policy, use for cert-manager,
// in the control plane's namespace only) are checked by
// SubjectAccessReview as the service accounts they name.
func TestApproverPolicy(t *testing.T) {
	t.Parallel()
	if cp.Existing {
		t.Skip("starts a control plane of its own")
	}
	const ns, issuer = "e2e-approver", "e2e-approver"
	start := time.Now()
	apcp, err := localcp.Start(ctx, localcp.Options{WatchNamespaces: []string{ns}, ApproverPolicy: true})
	if err != nil {
		t.Fatalf("starting a control plane with approver-policy: %v", err)
	}
	t.Logf("control plane with approver-policy up in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(apcp.Logs(40))
		}
		if err := apcp.Stop(); err != nil {
			t.Errorf("stopping the approver-policy control plane: %v", err)
		}
	})
	c := apcp.Client

	anchor := newAnchor(t)
	iss := &v1alpha1.LinkerdCAClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: issuer},
		Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: issuer, ControlPlaneNamespace: ns},
	}
	for _, o := range []client.Object{anchorSecret(localcp.TrustNamespace, issuer, anchor), iss} {
		if err := c.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	pollOn(t, apcp, 30*time.Second, "the issuer Ready", func() error {
		if err := c.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		for _, cond := range iss.Status.Conditions {
			if cond.Type == "Ready" && cond.Status == metav1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("conditions %+v", iss.Status.Conditions)
	})

	identityCertificate := func(name string) *cmapi.Certificate {
		crt := testpki.SeedCertificate(ns)
		cn := "identity." + ns + ".cluster.local"
		crt.Name, crt.Spec.SecretName = name, name
		crt.Spec.CommonName, crt.Spec.DNSNames = cn, []string{cn}
		crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: issuerGroup, Kind: v1alpha1.ClusterIssuerKind, Name: issuer}
		return crt
	}
	good := identityCertificate("linkerd-identity-issuer")
	outside := identityCertificate("outside")
	outside.Spec.PrivateKey = &cmapi.CertificatePrivateKey{Algorithm: cmapi.RSAKeyAlgorithm, Size: 2048}
	for _, crt := range []*cmapi.Certificate{good, outside} {
		if err := c.Create(ctx, crt); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("the identity issuer is approved by approver-policy and issued", func(t *testing.T) {
		cr := waitRequestCondition(t, apcp, ns, good.Name, cmapi.CertificateRequestConditionApproved)
		if cr.Spec.Username != localcp.CertManagerUser {
			t.Errorf("the request's requester is %q, want cert-manager's %q", cr.Spec.Username, localcp.CertManagerUser)
		}
		pollOn(t, apcp, 30*time.Second, "the identity issuer Secret", func() error {
			var s corev1.Secret
			if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: good.Spec.SecretName}, &s); err != nil {
				return err
			}
			if certs := parsePEMCertificates(t, "tls.crt", s.Data[corev1.TLSCertKey]); certs[0].CheckSignatureFrom(anchor.Certificate) != nil {
				return errors.New("not signed by the anchor")
			}
			return nil
		})
	})

	t.Run("a request outside the policy is Denied and never signed", func(t *testing.T) {
		cr := waitRequestCondition(t, apcp, ns, outside.Name, cmapi.CertificateRequestConditionDenied)
		t.Logf("approver-policy: %s", requestCondition(cr, cmapi.CertificateRequestConditionDenied).Message)
		// The issuer sees the denial; give it time to (wrongly) sign.
		time.Sleep(3 * time.Second)
		if err := c.Get(ctx, client.ObjectKeyFromObject(cr), cr); err != nil {
			t.Fatal(err)
		}
		if len(cr.Status.Certificate) != 0 || requestCondition(cr, cmapi.CertificateRequestConditionApproved) != nil {
			t.Errorf("the denied request was approved or signed: %+v", cr.Status)
		}
		if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: outside.Spec.SecretName}, &corev1.Secret{}); err == nil {
			t.Error("the denied request's Secret exists")
		}
	})

	t.Run("the chart's grants, by SubjectAccessReview", func(t *testing.T) {
		// The groups a service account of cert-manager's namespace has.
		groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + localcp.TrustNamespace, "system:authenticated"}
		for _, tc := range []struct {
			what string
			user string
			attr authorizationv1.ResourceAttributes
			want bool
		}{
			{"approver-policy approves the cluster issuer's requests", localcp.ApproverPolicyUser,
				authorizationv1.ResourceAttributes{Group: "cert-manager.io", Resource: "signers", Verb: "approve", Name: "linkerdcaclusterissuers.linkerdca.io/*"}, true},
			{"approver-policy approves the namespaced issuers' requests", localcp.ApproverPolicyUser,
				authorizationv1.ResourceAttributes{Group: "cert-manager.io", Resource: "signers", Verb: "approve", Name: "linkerdcaissuers.linkerdca.io/*"}, true},
			{"approver-policy approves no other signer", localcp.ApproverPolicyUser,
				authorizationv1.ResourceAttributes{Group: "cert-manager.io", Resource: "signers", Verb: "approve", Name: "clusterissuers.cert-manager.io/*"}, false},
			{"cert-manager uses the policy in the control plane's namespace", localcp.CertManagerUser,
				authorizationv1.ResourceAttributes{Namespace: ns, Group: "policy.cert-manager.io", Resource: "certificaterequestpolicies", Verb: "use", Name: "linkerd-ca-issuer-" + ns}, true},
			{"cert-manager uses it nowhere else", localcp.CertManagerUser,
				authorizationv1.ResourceAttributes{Namespace: "default", Group: "policy.cert-manager.io", Resource: "certificaterequestpolicies", Verb: "use", Name: "linkerd-ca-issuer-" + ns}, false},
		} {
			sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{User: tc.user, Groups: groups, ResourceAttributes: &tc.attr}}
			if err := c.Create(ctx, sar); err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != tc.want {
				t.Errorf("%s: allowed %t, want %t (%s)", tc.what, sar.Status.Allowed, tc.want, sar.Status.Reason)
			}
		}
	})
}

// waitRequestCondition waits for the Certificate's CertificateRequest to
// have condition typ True, set by approver-policy.
func waitRequestCondition(t *testing.T, plane *localcp.ControlPlane, ns, certificate string, typ cmapi.CertificateRequestConditionType) *cmapi.CertificateRequest {
	t.Helper()
	var found *cmapi.CertificateRequest
	pollOn(t, plane, 30*time.Second, fmt.Sprintf("%s/%s's request %s", ns, certificate, typ), func() error {
		var list cmapi.CertificateRequestList
		if err := plane.Client.List(ctx, &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for i, cr := range list.Items {
			if cr.Annotations[cmapi.CertificateNameKey] != certificate {
				continue
			}
			cond := requestCondition(&cr, typ)
			if cond == nil || cond.Status != cmmeta.ConditionTrue {
				return fmt.Errorf("conditions %+v", cr.Status.Conditions)
			}
			if cond.Reason != approvedByPolicy {
				return fmt.Errorf("%s by %q, not approver-policy", typ, cond.Reason)
			}
			found = &list.Items[i]
			return nil
		}
		return errors.New("no request yet")
	})
	return found
}
