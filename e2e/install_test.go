//go:build e2e

package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// TestIssuerSchema: the CRD schema defaults and rejects before the
// controller ever sees an issuer.
func TestIssuerSchema(t *testing.T) {
	iss := linkerdIssuer(nsHealth, "defaults", "anchor")
	create(t, iss)
	if iss.Spec.TrustDomain != "cluster.local" || iss.Spec.ControlPlaneNamespace != "linkerd" ||
		iss.Spec.MinDuration == nil || iss.Spec.MinDuration.Duration != time.Hour ||
		iss.Spec.MaxDuration == nil || iss.Spec.MaxDuration.Duration != 8760*time.Hour {
		t.Errorf("defaults not applied by the schema: %+v", iss.Spec)
	}
	for _, tc := range []struct {
		name   string
		mutate func(*v1alpha1.IssuerSpec)
		want   string
	}{
		{"min above max", func(s *v1alpha1.IssuerSpec) {
			s.MinDuration, s.MaxDuration = &metav1.Duration{Duration: 48 * time.Hour}, &metav1.Duration{Duration: 24 * time.Hour}
		}, "minDuration must not be longer than maxDuration"},
		{"zero min", func(s *v1alpha1.IssuerSpec) { s.MinDuration = &metav1.Duration{} }, "must be a positive duration"},
		{"no anchor", func(s *v1alpha1.IssuerSpec) { s.TrustAnchorSecretName = "" }, "name the trust anchor with exactly one of trustAnchorSecretName and trustAnchorConfigMapName"},
		{"a bad anchor name", func(s *v1alpha1.IssuerSpec) { s.TrustAnchorSecretName = "Anchor_1" }, "spec.trustAnchorSecretName"},
		{"bad trust domain", func(s *v1alpha1.IssuerSpec) { s.TrustDomain = "Cluster_Local" }, "spec.trustDomain"},
		{"bad namespace", func(s *v1alpha1.IssuerSpec) { s.ControlPlaneNamespace = "a.b" }, "spec.controlPlaneNamespace"},
		{"a namespaced peer without its namespace", func(s *v1alpha1.IssuerSpec) {
			s.Rotation = &v1alpha1.RotationSpec{Peers: []v1alpha1.RotationPeer{{Name: "east", KubeconfigSecretName: "east", IssuerKind: v1alpha1.IssuerKind, IssuerName: "linkerd"}}}
		}, "issuerNamespace is required for a LinkerdCAIssuer peer"},
		{"a cluster issuer peer with a namespace", func(s *v1alpha1.IssuerSpec) {
			s.Rotation = &v1alpha1.RotationSpec{Peers: []v1alpha1.RotationPeer{{Name: "east", KubeconfigSecretName: "east", IssuerName: "linkerd", IssuerNamespace: "linkerd"}}}
		}, "issuerNamespace is for a LinkerdCAIssuer peer only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := linkerdIssuer(nsHealth, "bad", "anchor")
			tc.mutate(&bad.Spec)
			err := cl.Create(ctx, bad)
			if err == nil {
				_ = cl.Delete(ctx, bad)
				t.Fatal("accepted")
			}
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want Invalid mentioning %q", err, tc.want)
			}
		})
	}
}

// TestIssuerPermissions: the issuer ran the whole suite with only the RBAC
// generated from its markers. It may not read Secrets cluster-wide, and it
// never hit a permission it lacked.
func TestIssuerPermissions(t *testing.T) {
	if cp.Existing {
		t.Skip("the installed issuer's identity is not known to the suite on an existing cluster")
	}
	issuer, err := client.New(cp.IssuerConfig, client.Options{Scheme: localcp.Scheme()})
	if err != nil {
		t.Fatal(err)
	}
	var secrets corev1.SecretList
	if err := issuer.List(ctx, &secrets); !apierrors.IsForbidden(err) {
		t.Errorf("listing Secrets cluster-wide as %s: want Forbidden, got %v", localcp.IssuerUser, err)
	}
	if err := issuer.List(ctx, &secrets, client.InNamespace("kube-system")); !apierrors.IsForbidden(err) {
		t.Errorf("listing Secrets in kube-system: want Forbidden, got %v", err)
	}
	if err := issuer.List(ctx, &secrets, client.InNamespace(nsLinkerd)); err != nil {
		t.Errorf("listing Secrets in watched namespace %s: %v", nsLinkerd, err)
	}
	log, err := os.ReadFile(cp.LogPath("issuer"))
	if err != nil {
		t.Fatal(err)
	}
	// An RBAC refusal reads `… is forbidden: User "…" cannot …`; the fault
	// suite's admission policy refuses writes too, but that is no missing
	// permission.
	for _, line := range strings.Split(string(log), "\n") {
		if !strings.Contains(line, "forbidden: User") {
			continue
		}
		if at, ok := logTime(line); ok && duringOutage(at) {
			t.Logf("refused while kube-apiserver restarted (its authorizer not synced yet), not a missing permission: %s", line)
			continue
		}
		t.Errorf("the issuer was refused a permission: %s", line)
	}
}

// duringOutage: at falls in an API server restart of the suite, or the
// 30 s after it answered again.
func duringOutage(at time.Time) bool {
	for _, o := range cp.Outages {
		if !at.Before(o.From.Add(-time.Second)) && at.Before(o.To.Add(30*time.Second)) {
			return true
		}
	}
	return false
}

// logTime is when a line of the issuer's log was written: zap's JSON "ts"
// (RFC 3339), or klog's header (E1202 23:27:01.140503, this year, UTC).
func logTime(line string) (time.Time, bool) {
	if i := strings.Index(line, `"ts":"`); i >= 0 {
		rest := line[i+6:]
		if j := strings.IndexByte(rest, '"'); j > 0 {
			t, err := time.Parse(time.RFC3339, rest[:j])
			return t, err == nil
		}
	}
	if len(line) >= 21 && strings.ContainsRune("IWEF", rune(line[0])) {
		t, err := time.Parse("0102 15:04:05.000000", line[1:21])
		if err != nil {
			return time.Time{}, false
		}
		return t.AddDate(time.Now().UTC().Year(), 0, 0), true
	}
	return time.Time{}, false
}
