//go:build e2e

package e2e

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// TestWaitedRequestGetsItsWholeDuration: a Certificate is requested while
// its issuer is not Ready (no anchor yet); the request waits, then the
// anchor arrives and the issuer recovers. The certificate's validity starts
// when it could first be signed, not when it was requested: it is valid for
// its whole duration from then.
func TestWaitedRequestGetsItsWholeDuration(t *testing.T) {
	iss := linkerdIssuer(nsHealth, "waited", "waited-anchor")
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionFalse, "not found")
	crt := seedCertificate(nsHealth, "waited", iss.Name)
	create(t, crt)
	eventually(t, 30*time.Second, "a request waiting for the issuer", func() error {
		if len(requestsFor(t, nsHealth, crt.Name)) == 0 {
			return fmt.Errorf("no request yet")
		}
		return nil
	})
	const wait = 8 * time.Second
	time.Sleep(wait)
	recovered := time.Now()
	create(t, anchorSecret(nsHealth, "waited-anchor", newAnchor(t)))
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	waitCertificateReady(t, nsHealth, crt.Name, 60*time.Second)

	cert := parsePEMCertificates(t, "tls.crt", mustSecret(t, nsHealth, crt.Name).Data["tls.crt"])[0]
	requested := requestsFor(t, nsHealth, crt.Name)[0].CreationTimestamp.Time
	// Times on the request have a second's precision.
	if start := cert.NotBefore.Add(signer.ClockSkew); start.Before(recovered.Add(-time.Second).Truncate(time.Second)) {
		t.Errorf("validity starts at %s, before the issuer recovered at %s (requested at %s): the wait was taken from its lifetime", start, recovered, requested)
	}
	if got, want := cert.NotAfter.Sub(cert.NotBefore), crt.Spec.Duration.Duration+signer.ClockSkew; got != want {
		t.Errorf("valid for %s, want the whole %s (plus the backdating)", got, crt.Spec.Duration.Duration)
	}
	// The start stays on the request, for a re-sign and for the record.
	cr := requestsFor(t, nsHealth, crt.Name)[0]
	if c := requestCondition(&cr, "ValidityStarted"); c == nil || c.LastTransitionTime == nil || !c.LastTransitionTime.Time.Equal(cert.NotBefore.Add(signer.ClockSkew)) {
		t.Errorf("request condition ValidityStarted %+v, want it at the certificate's start", c)
	}
}

// TestNamespacedIssuerInTheClusterResourceNamespace: a LinkerdCAIssuer
// beside the cluster issuers' anchors is refused with why, and signs
// nothing; the cluster issuer on the same Secret is unaffected.
func TestNamespacedIssuerInTheClusterResourceNamespace(t *testing.T) {
	_, clusterIss := readyClusterIssuer(t, "beside-namespaced", "beside-anchor")
	iss := linkerdIssuer(nsCluster, "sneaky", "beside-anchor")
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionFalse, `is in namespace "cert-manager", the cluster resource namespace, where LinkerdCAClusterIssuers keep their trust anchors`)
	crt := seedCertificate(nsCluster, "sneaky", iss.Name)
	create(t, crt)
	time.Sleep(3 * time.Second)
	if _, err := getSecret(t, nsCluster, crt.Name); err == nil {
		t.Error("the namespaced issuer in the cluster resource namespace signed")
	}
	waitIssuer(t, clusterIss, metav1.ConditionTrue, "")
}

// TestTrustGateOff: a typo in spec.trustRoots.configMapName turns the trust
// gate off. The issuer still signs (Linkerd's bootstrap needs it), but its
// condition says why, a Warning event is recorded, and linkerd-ca check
// warns.
func TestTrustGateOff(t *testing.T) {
	anchor := newAnchor(t)
	create(t, anchorSecret(nsMetrics, "gate-anchor", anchor))
	iss := linkerdIssuer(nsMetrics, "gate-typo", "gate-anchor")
	iss.Spec.TrustRoots.ConfigMapName = "linkerd-identity-trust-root"
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	eventually(t, 30*time.Second, "TrustAnchorTrusted TrustGateOff and its Warning event", func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		c := meta.FindStatusCondition(iss.Status.Conditions, v1alpha1.ConditionTrustAnchorTrusted)
		if c == nil || c.Reason != "TrustGateOff" || !strings.Contains(c.Message, "linkerd-identity-trust-root not found") {
			return fmt.Errorf("condition %+v", c)
		}
		var list eventsv1.EventList
		if err := cl.List(ctx, &list, client.InNamespace(nsMetrics)); err != nil {
			return err
		}
		for _, e := range list.Items {
			if e.Regarding.Name == iss.Name && e.Reason == "TrustGateOff" && e.Type == corev1.EventTypeWarning {
				return nil
			}
		}
		return fmt.Errorf("no TrustGateOff event among %d", len(list.Items))
	})
	crt := seedCertificate(nsMetrics, "gate-issued", iss.Name)
	create(t, crt)
	waitCertificateReady(t, nsMetrics, crt.Name, 60*time.Second)
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, []string{"check", "--secret", crt.Name, "--kubeconfig", cp.AdminKubeconfig, "-L", nsMetrics}, &out, &errOut)
	if want := "‼ the issuer signs only under roots Linkerd trusts\n    LinkerdCAIssuer e2e-metrics/gate-typo: TrustGateOff: the trust gate is off"; code != 0 || !strings.Contains(out.String(), want) {
		t.Errorf("check: %d, no %q in\n%s%s", code, want, out.String(), errOut.String())
	}
}
