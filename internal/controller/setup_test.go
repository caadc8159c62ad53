package controller

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

func TestIssuersReferencing(t *testing.T) {
	named := func(ns, name, secret string) *v1alpha1.LinkerdCAIssuer {
		i := issuer(ns)
		i.Name, i.Spec.TrustAnchorSecretName = name, secret
		return i
	}
	cluster := func(name, secret, controlPlane string) *v1alpha1.LinkerdCAClusterIssuer {
		i := clusterIssuer()
		i.Name, i.Spec.TrustAnchorSecretName, i.Spec.ControlPlaneNamespace = name, secret, controlPlane
		return i
	}
	unchecked := named("linkerd", "unchecked", "other")
	unchecked.Spec.TrustRoots.Check = new(false)
	s, _ := newSigner(t)
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithIndex(&v1alpha1.LinkerdCAIssuer{}, anchorSecretField, s.anchorSecretOf).
		WithIndex(&v1alpha1.LinkerdCAClusterIssuer{}, anchorSecretField, s.anchorSecretOf).
		WithIndex(&v1alpha1.LinkerdCAIssuer{}, trustRootsField, trustRootsOf).
		WithIndex(&v1alpha1.LinkerdCAClusterIssuer{}, trustRootsField, trustRootsOf).
		WithObjects(
			named("linkerd", "a", "anchor"), named("linkerd", "b", "anchor"), named("linkerd", "c", "other"), unchecked,
			named("linkerd-ca-issuer", "d", "anchor"),
			cluster("e", "anchor", "linkerd"), cluster("f", "other", "mesh"),
		).Build()
	keys := func(reqs []reconcile.Request) []string {
		var out []string
		for _, r := range reqs {
			out = append(out, r.String())
		}
		slices.Sort(out)
		return out
	}
	var namespacedKind, clusterKind v1alpha1.GenericIssuer = &v1alpha1.LinkerdCAIssuer{}, &v1alpha1.LinkerdCAClusterIssuer{}
	for _, tc := range []struct {
		kind         v1alpha1.GenericIssuer
		field, value string
		want         []string
	}{
		{namespacedKind, anchorSecretField, "linkerd/anchor", []string{"linkerd/a", "linkerd/b"}},
		{namespacedKind, anchorSecretField, "linkerd-ca-issuer/anchor", []string{"linkerd-ca-issuer/d"}},
		{namespacedKind, anchorSecretField, "linkerd/unrelated", nil},
		{clusterKind, anchorSecretField, "linkerd-ca-issuer/anchor", []string{"/e"}},
		{clusterKind, anchorSecretField, "linkerd/anchor", nil},
		{namespacedKind, trustRootsField, "linkerd/linkerd-identity-trust-roots", []string{"linkerd/a", "linkerd/b", "linkerd/c"}},
		{clusterKind, trustRootsField, "linkerd/linkerd-identity-trust-roots", []string{"/e"}},
		{clusterKind, trustRootsField, "mesh/linkerd-identity-trust-roots", []string{"/f"}},
		{clusterKind, "", "", []string{"/e", "/f"}},
	} {
		reqs, err := IssuersReferencing(context.Background(), c, tc.kind, tc.field, tc.value)
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(reqs); !slices.Equal(got, tc.want) {
			t.Errorf("%s with %s=%q: got %v, want %v", tc.kind.IssuerKind(), tc.field, tc.value, got, tc.want)
		}
	}
}

func TestCacheOptionsScopeSecretsToWatchedNamespaces(t *testing.T) {
	opts := CacheOptions([]string{"linkerd", "linkerd-ca-issuer"})
	if opts.DefaultNamespaces != nil {
		t.Errorf("default namespaces set: %v", opts.DefaultNamespaces)
	}
	var secretNamespaces []string
	if len(opts.ByObject) != 2 {
		t.Errorf("cache scopes for %d kinds, want Secrets and ConfigMaps", len(opts.ByObject))
	}
	for obj, by := range opts.ByObject {
		switch obj.(type) {
		case *corev1.Secret, *corev1.ConfigMap:
		default:
			t.Errorf("unexpected cache scope for %T", obj)
			continue
		}
		secretNamespaces = secretNamespaces[:0]
		for ns := range by.Namespaces {
			secretNamespaces = append(secretNamespaces, ns)
		}
		slices.Sort(secretNamespaces)
		if !slices.Equal(secretNamespaces, []string{"linkerd", "linkerd-ca-issuer"}) {
			t.Errorf("%T informers in %v, want only the watched namespaces", obj, secretNamespaces)
		}
	}
}

// TestGeneratedRBACGrantsSecretsOnlyPerNamespace reads the RBAC generated
// from the markers: Secrets may only be granted by namespaced Roles.
func TestGeneratedRBACGrantsSecretsOnlyPerNamespace(t *testing.T) {
	raw, err := os.ReadFile("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var clusterRoles, readRoles int
	for _, doc := range strings.Split(string(raw), "\n---\n") {
		if strings.TrimSpace(strings.Trim(doc, "-\n")) == "" {
			continue
		}
		var obj struct {
			Kind     string              `json:"kind"`
			Metadata metav1.ObjectMeta   `json:"metadata"`
			Rules    []rbacv1.PolicyRule `json:"rules"`
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		for _, r := range obj.Rules {
			if !slices.Contains(r.Resources, "secrets") && !slices.Contains(r.Resources, "configmaps") && !slices.Contains(r.Resources, "*") {
				continue
			}
			if obj.Kind != "Role" || obj.Metadata.Namespace == "" {
				t.Errorf("%s %s grants Secrets or ConfigMaps cluster-wide: %+v", obj.Kind, obj.Metadata.Name, r)
			}
			if slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" }) {
				t.Errorf("Secret/ConfigMap rule allows more than reading: %v", r.Verbs)
			}
			readRoles++
		}
		if obj.Kind == "ClusterRole" {
			clusterRoles++
		}
	}
	if clusterRoles != 1 || readRoles != 2 {
		t.Fatalf("found %d ClusterRoles and %d Secret/ConfigMap rules; want 1 and 2 (linkerd and linkerd-ca-issuer)", clusterRoles, readRoles)
	}
}

func TestOptionsComplete(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "linkerd-ca-issuer")
	o := Options{watchNamespaces: "linkerd, mesh ,linkerd,", LeaderElect: true, MaxRetryDuration: DefaultMaxRetryDuration, RecheckInterval: time.Hour}
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	if o.ClusterResourceNamespace != "linkerd-ca-issuer" || o.LeaderElectionNamespace != "linkerd-ca-issuer" {
		t.Errorf("namespaces not defaulted from POD_NAMESPACE: %+v", o)
	}
	if want := []string{"linkerd", "mesh", "linkerd-ca-issuer"}; !slices.Equal(o.WatchNamespaces, want) {
		t.Errorf("watch namespaces %v, want %v", o.WatchNamespaces, want)
	}

	t.Setenv("POD_NAMESPACE", "")
	o = Options{watchNamespaces: "linkerd", LeaderElect: true, MaxRetryDuration: DefaultMaxRetryDuration, RecheckInterval: time.Hour}
	if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err != nil {
		if err := o.Complete(); err == nil || !strings.Contains(err.Error(), "set POD_NAMESPACE") {
			t.Errorf("no namespace anywhere: got %v", err)
		}
	}
	o = Options{ClusterResourceNamespace: "x", LeaderElectionNamespace: "x", MaxRetryDuration: 0, RecheckInterval: time.Hour}
	if err := o.Complete(); err == nil || !strings.Contains(err.Error(), "--max-retry-duration must be positive") {
		t.Errorf("zero retry duration: got %v", err)
	}
	o = Options{ClusterResourceNamespace: "x", LeaderElectionNamespace: "x", MaxRetryDuration: time.Minute, RecheckInterval: time.Second}
	if err := o.Complete(); err == nil || !strings.Contains(err.Error(), "--recheck-interval must be at least 1m") {
		t.Errorf("1s recheck interval: got %v", err)
	}
}

func TestSendRechecks(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(clusterIssuer()).Build()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan event.GenericEvent)
	done := make(chan error)
	go func() { done <- sendRechecks(ctx, c, &v1alpha1.LinkerdCAClusterIssuer{}, 10*time.Millisecond, out) }()
	for range 2 { // every interval, not once
		e := <-out
		if _, ok := e.Object.(*v1alpha1.LinkerdCAClusterIssuer); !ok || e.Object.GetName() != "linkerd" {
			t.Fatalf("recheck of %T %s", e.Object, e.Object.GetName())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
