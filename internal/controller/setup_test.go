package controller

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/yaml"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

func TestIssuersForSecret(t *testing.T) {
	named := func(ns, name, secret string) *v1alpha1.LinkerdCAIssuer {
		i := issuer(ns)
		i.Name, i.Spec.TrustAnchorSecretName = name, secret
		return i
	}
	cluster := func(name, secret string) *v1alpha1.LinkerdCAClusterIssuer {
		i := clusterIssuer()
		i.Name, i.Spec.TrustAnchorSecretName = name, secret
		return i
	}
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithIndex(&v1alpha1.LinkerdCAIssuer{}, anchorSecretNameField, anchorSecretNameOf).
		WithIndex(&v1alpha1.LinkerdCAClusterIssuer{}, anchorSecretNameField, anchorSecretNameOf).
		WithObjects(
			named("linkerd", "a", "anchor"), named("linkerd", "b", "anchor"), named("linkerd", "c", "other"),
			named("linkerd-ca-issuer", "d", "anchor"),
			cluster("e", "anchor"), cluster("f", "other"),
		).Build()
	s, _ := newSigner(t)
	secret := func(ns, name string) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	}
	keys := func(reqs []reconcile.Request) []string {
		var out []string
		for _, r := range reqs {
			out = append(out, r.String())
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		kind   string
		secret *corev1.Secret
		want   []string
	}{
		{"LinkerdCAIssuer", secret("linkerd", "anchor"), []string{"linkerd/a", "linkerd/b"}},
		{"LinkerdCAIssuer", secret("linkerd-ca-issuer", "anchor"), []string{"linkerd-ca-issuer/d"}},
		{"LinkerdCAIssuer", secret("linkerd", "unrelated"), nil},
		{"LinkerdCAClusterIssuer", secret("linkerd-ca-issuer", "anchor"), []string{types.NamespacedName{Name: "e"}.String()}},
		{"LinkerdCAClusterIssuer", secret("linkerd", "anchor"), nil},
	} {
		got := keys(s.IssuersForSecret(context.Background(), c, tc.kind, tc.secret))
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s for Secret %s/%s: got %v, want %v", tc.kind, tc.secret.Namespace, tc.secret.Name, got, tc.want)
		}
	}
}

func TestCacheOptionsScopeSecretsToWatchedNamespaces(t *testing.T) {
	opts := CacheOptions([]string{"linkerd", "linkerd-ca-issuer"})
	if opts.DefaultNamespaces != nil {
		t.Errorf("default namespaces set: %v", opts.DefaultNamespaces)
	}
	var secretNamespaces []string
	for obj, by := range opts.ByObject {
		if _, ok := obj.(*corev1.Secret); !ok {
			t.Errorf("unexpected cache scope for %T", obj)
			continue
		}
		for ns := range by.Namespaces {
			secretNamespaces = append(secretNamespaces, ns)
		}
	}
	slices.Sort(secretNamespaces)
	if !slices.Equal(secretNamespaces, []string{"linkerd", "linkerd-ca-issuer"}) {
		t.Fatalf("Secret informers in %v, want only the watched namespaces", secretNamespaces)
	}
}

// TestGeneratedRBACGrantsSecretsOnlyPerNamespace reads the RBAC generated
// from the markers: Secrets may only be granted by namespaced Roles.
func TestGeneratedRBACGrantsSecretsOnlyPerNamespace(t *testing.T) {
	raw, err := os.ReadFile("../../config/rbac/role.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var clusterRoles, secretRoles int
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
			if !slices.Contains(r.Resources, "secrets") && !slices.Contains(r.Resources, "*") {
				continue
			}
			if obj.Kind != "Role" || obj.Metadata.Namespace == "" {
				t.Errorf("%s %s grants Secrets cluster-wide: %+v", obj.Kind, obj.Metadata.Name, r)
			}
			if slices.ContainsFunc(r.Verbs, func(v string) bool { return v != "get" && v != "list" && v != "watch" }) {
				t.Errorf("Secret rule allows more than reading: %v", r.Verbs)
			}
			secretRoles++
		}
		if obj.Kind == "ClusterRole" {
			clusterRoles++
		}
	}
	if clusterRoles != 1 || secretRoles != 2 {
		t.Fatalf("found %d ClusterRoles and %d Secret rules; want 1 and 2 (linkerd and linkerd-ca-issuer)", clusterRoles, secretRoles)
	}
}

func TestOptionsComplete(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "linkerd-ca-issuer")
	o := Options{watchNamespaces: "linkerd, mesh ,linkerd,", LeaderElect: true, MaxRetryDuration: DefaultMaxRetryDuration}
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
	o = Options{watchNamespaces: "linkerd", LeaderElect: true, MaxRetryDuration: DefaultMaxRetryDuration}
	if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err != nil {
		if err := o.Complete(); err == nil || !strings.Contains(err.Error(), "set POD_NAMESPACE") {
			t.Errorf("no namespace anywhere: got %v", err)
		}
	}
	o = Options{ClusterResourceNamespace: "x", LeaderElectionNamespace: "x", MaxRetryDuration: 0}
	if err := o.Complete(); err == nil || !strings.Contains(err.Error(), "--max-retry-duration must be positive") {
		t.Errorf("zero retry duration: got %v", err)
	}
}
