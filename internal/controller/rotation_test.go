package controller

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// TestCheckSigningRoot: a rotating issuer signs with the anchor only when
// it is the root the rotation signs under, or a copy of it renewed with the
// same key; never on no decision, and never by falling back to the spec's
// anchor when the controller is off.
func TestCheckSigningRoot(t *testing.T) {
	old := newAnchor(t, now.Add(30*24*time.Hour))
	renewed, err := old.Renewed(now.Add(-time.Minute), now.Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	other := newAnchor(t, now.Add(365*24*time.Hour))
	under := func(root *testpki.Anchor) *v1alpha1.RotationStatus {
		return &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: signer.Fingerprint(root.Certificate),
			SigningSecretName: "linkerd-trust-anchor", SigningRootKey: signer.RootKey(root.Certificate), Message: "1 of 2 pods behind"}
	}
	refused := metav1.Condition{Type: v1alpha1.ConditionRotation, Status: metav1.ConditionFalse, Reason: "TrustedSetConflict", Message: "ConfigMap x is the trusted set of y"}
	for _, tc := range []struct {
		name     string
		rotation bool
		status   *v1alpha1.RotationStatus
		conds    []metav1.Condition
		anchor   *testpki.Anchor
		want     string // "" signs
	}{
		{"the root signed under", true, under(old), nil, old, ""},
		{"a copy renewed with the same key", true, under(old), nil, renewed, ""},
		{"another root", true, under(old), nil, other, "which not every meshed pod holds yet"},
		{"no decision yet", true, nil, nil, old, "waiting for the rotation controller to decide"},
		{"refused by the rotation controller", true, nil, []metav1.Condition{refused}, old, "TrustedSetConflict: ConfigMap x is the trusted set of y"},
		{"controller off, a rotation recorded", false, under(old), nil, other, "turn it back on"},
		{"controller off, nothing ever recorded", false, nil, nil, other, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &Signer{Rotation: tc.rotation, ClusterResourceNamespace: "linkerd-ca-issuer"}
			iss := clusterIssuer()
			iss.Spec.Rotation = &v1alpha1.RotationSpec{}
			iss.Status.Rotation, iss.Status.Conditions = tc.status, tc.conds
			a, err := signer.ParseAnchor(tc.anchor.CertPEM, tc.anchor.KeyPEM, now)
			if err != nil {
				t.Fatal(err)
			}
			err = s.checkSigningRoot(iss, a)
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("error %v; want it to say %q", err, tc.want)
			}
		})
	}
}
