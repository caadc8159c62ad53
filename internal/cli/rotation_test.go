package cli

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
)

func TestRotationCheck(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	deadline := metav1.NewTime(now.Add(time.Hour))
	passed := metav1.NewTime(now.Add(-time.Minute))
	for _, tc := range []struct {
		name   string
		status *v1alpha1.RotationStatus
		want   identitycheck.Status
		says   []string
	}{
		{"stable", &v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable}, identitycheck.Pass, nil},
		{"no status yet", nil, identitycheck.Warn, []string{"--rotation"}},
		{"propagating", &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, PodsBehind: 3, PodsTotal: 10, Deadline: &deadline, Message: "waiting"},
			identitycheck.Warn, []string{"under way", "3 of 10"}},
		{"held", &v1alpha1.RotationStatus{Phase: v1alpha1.RotationHeld, Deadline: &deadline, Message: "held: the anchor Secret was overwritten"},
			identitycheck.Fail, []string{"held", "rotation status", "rotation.restarts.enabled"}},
		{"stuck past its deadline", &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, PodsBehind: 1, PodsTotal: 10, Deadline: &passed, Message: "1 of 10"},
			identitycheck.Fail, []string{"past its deadline", passed.UTC().Format(time.RFC3339), "restart the pods behind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			iss := &v1alpha1.LinkerdCAClusterIssuer{Spec: v1alpha1.IssuerSpec{Rotation: &v1alpha1.RotationSpec{}}, Status: v1alpha1.IssuerStatus{Rotation: tc.status}}
			res := rotationCheck(iss, client.ObjectKey{Name: "linkerd-identity-issuer"}, now)
			if len(res) != 1 || res[0].Status != tc.want {
				t.Fatalf("results %+v, want one %v", res, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(res[0].Detail, s) {
					t.Errorf("detail %q lacks %q", res[0].Detail, s)
				}
			}
		})
	}
	if res := rotationCheck(&v1alpha1.LinkerdCAClusterIssuer{}, client.ObjectKey{Name: "x"}, now); len(res) != 0 {
		t.Errorf("an issuer without spec.rotation gets %v, want no rotation check", res)
	}
}
