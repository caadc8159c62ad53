package cli

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

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

func TestRotationCheckFailsOnDrift(t *testing.T) {
	iss := &v1alpha1.LinkerdCAClusterIssuer{Spec: v1alpha1.IssuerSpec{Rotation: &v1alpha1.RotationSpec{}},
		Status: v1alpha1.IssuerStatus{Rotation: &v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable}, Conditions: []metav1.Condition{{
			Type: v1alpha1.ConditionTrustRootsSynced, Status: metav1.ConditionFalse, Reason: "Drift", Message: "Linkerd's trust roots lack 1a2b"}}}}
	res := rotationCheck(iss, client.ObjectKey{Name: "linkerd"}, time.Now())
	if !identitycheck.Failed(res) || !strings.Contains(res[0].Detail, "lack 1a2b") {
		t.Errorf("a Stable rotation whose trust roots lack a root it keeps: %+v; want a failure naming the root", res)
	}
	iss.Status.Conditions[0].Status = metav1.ConditionTrue
	if res := rotationCheck(iss, client.ObjectKey{Name: "linkerd"}, time.Now()); identitycheck.Failed(res) || len(res) != 1 {
		t.Errorf("synced: %+v; want the rotation's one passing check", res)
	}
}

func TestBundleSourceCheck(t *testing.T) {
	bundle := func(sources ...any) *unstructured.Unstructured {
		b := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"sources": sources}}}
		b.SetGroupVersionKind(bundleGVK)
		b.SetName(v1alpha1.DefaultTrustRootsConfigMap)
		return b
	}
	trusted := map[string]any{"configMap": map[string]any{"name": v1alpha1.DefaultTrustedRootsConfigMap, "key": v1alpha1.DefaultTrustRootsKey}}
	anchor := map[string]any{"secret": map[string]any{"name": "linkerd-trust-anchor", "key": "ca.crt"}}
	iss := &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}, Spec: v1alpha1.IssuerSpec{Rotation: &v1alpha1.RotationSpec{}}}
	for _, tc := range []struct {
		name   string
		bundle *unstructured.Unstructured
		want   []identitycheck.Status
		says   []string
	}{
		{"the trusted set alone", bundle(trusted), []identitycheck.Status{identitycheck.Pass}, nil},
		{"the old guide's anchor Secret", bundle(anchor), []identitycheck.Status{identitycheck.Fail},
			[]string{"Secret linkerd-trust-anchor key ca.crt", "ConfigMap " + v1alpha1.DefaultTrustedRootsConfigMap, "kubectl patch bundle"}},
		{"the trusted set and a second source", bundle(trusted, anchor), []identitycheck.Status{identitycheck.Fail}, []string{"Secret linkerd-trust-anchor"}},
		{"no Bundle: something else writes the roots", nil, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := fake.NewClientBuilder()
			if tc.bundle != nil {
				b = b.WithObjects(tc.bundle)
			}
			res := bundleSourceCheck(context.Background(), b.Build(), iss, v1alpha1.DefaultTrustRootsConfigMap)
			var got []identitycheck.Status
			for _, r := range res {
				got = append(got, r.Status)
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("results %+v, want %v", res, tc.want)
			}
			for _, s := range tc.says {
				if !strings.Contains(res[0].Detail, s) {
					t.Errorf("detail %q lacks %q", res[0].Detail, s)
				}
			}
		})
	}
	if res := bundleSourceCheck(context.Background(), fake.NewClientBuilder().Build(), &v1alpha1.LinkerdCAClusterIssuer{}, "x"); len(res) != 0 {
		t.Errorf("an issuer without spec.rotation: %+v, want no check", res)
	}
}
