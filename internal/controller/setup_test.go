package controller

import (
	"context"
	"flag"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
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
	kmsKept := cluster("g", "", "mesh")
	kmsKept.Spec.TrustAnchorConfigMapName = "anchor-cm"
	kmsKept.Spec.KMS = &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/root"}}
	unchecked := named("linkerd", "unchecked", "other")
	unchecked.Spec.TrustRoots.Check = new(false)
	s, _ := newSigner(t)
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).
		WithIndex(&v1alpha1.LinkerdCAIssuer{}, anchorSecretField, s.anchorSecretOf).
		WithIndex(&v1alpha1.LinkerdCAClusterIssuer{}, anchorSecretField, s.anchorSecretOf).
		WithIndex(&v1alpha1.LinkerdCAIssuer{}, trustRootsField, s.configMapsOf).
		WithIndex(&v1alpha1.LinkerdCAClusterIssuer{}, trustRootsField, s.configMapsOf).
		WithObjects(
			named("linkerd", "a", "anchor"), named("linkerd", "b", "anchor"), named("linkerd", "c", "other"), unchecked,
			named("linkerd-ca-issuer", "d", "anchor"),
			cluster("e", "anchor", "linkerd"), cluster("f", "other", "mesh"), kmsKept,
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
		{clusterKind, trustRootsField, "mesh/linkerd-identity-trust-roots", []string{"/f", "/g"}},
		// A KMS-kept anchor's certificate ConfigMap, where its Secret would be.
		{clusterKind, trustRootsField, "linkerd-ca-issuer/anchor-cm", []string{"/g"}},
		{clusterKind, anchorSecretField, "linkerd-ca-issuer/", nil},
		{clusterKind, "", "", []string{"/e", "/f", "/g"}},
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
	if !opts.ReaderFailOnMissingInformer {
		t.Error("a read without an informer would start one: a full Secret informer could appear")
	}
	scoped := 0
	for obj, by := range opts.ByObject {
		var namespaces []string
		for ns := range by.Namespaces {
			namespaces = append(namespaces, ns)
		}
		slices.Sort(namespaces)
		switch obj.(type) {
		case *corev1.Secret, *corev1.ConfigMap:
			scoped++
			if !slices.Equal(namespaces, []string{"linkerd", "linkerd-ca-issuer"}) {
				t.Errorf("%T informers in %v, want only the watched namespaces", obj, namespaces)
			}
		case *cmapi.CertificateRequest, *certificatesv1.CertificateSigningRequest:
			// Their managed fields are kept, trimmed to who wrote the
			// validity start.
			if by.Transform == nil {
				t.Errorf("%T cached whole", obj)
			}
		default:
			t.Errorf("unexpected cache scope for %T", obj)
		}
	}
	if scoped != 2 {
		t.Errorf("%d of Secrets and ConfigMaps scoped, want both", scoped)
	}
}

// TestForeignRequestsCostNextToNothing: another issuer's request never
// reaches the queue, and the cache keeps no payload of it.
func TestForeignRequestsCostNextToNothing(t *testing.T) {
	request := func(group string) *cmapi.CertificateRequest {
		return &cmapi.CertificateRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "r", ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "x"}}},
			Spec:       cmapi.CertificateRequestSpec{Request: []byte("csr"), IssuerRef: cmmeta.IssuerReference{Group: group}},
			Status:     cmapi.CertificateRequestStatus{Certificate: []byte("crt"), CA: []byte("ca")},
		}
	}
	if !ours.Generic(event.GenericEvent{Object: request(v1alpha1.GroupVersion.Group)}) {
		t.Error("a request for this issuer is filtered out")
	}
	if ours.Create(event.CreateEvent{Object: request("cert-manager.io")}) {
		t.Error("another issuer's request reaches the queue")
	}
	for _, signerName := range map[bool]string{true: "linkerdcaclusterissuers.linkerdca.io/linkerd", false: "kubernetes.io/kube-apiserver-client"} {
		csr := &certificatesv1.CertificateSigningRequest{Spec: certificatesv1.CertificateSigningRequestSpec{SignerName: signerName}}
		if got, want := ours.Create(event.CreateEvent{Object: csr}), strings.HasPrefix(signerName, "linkerdca"); got != want {
			t.Errorf("CSR for %s: passes %v, want %v", signerName, got, want)
		}
	}
	if !ours.Create(event.CreateEvent{Object: clusterIssuer()}) {
		t.Error("issuer events are filtered out")
	}

	stripped, err := stripForeignRequests(request("cert-manager.io"))
	if err != nil {
		t.Fatal(err)
	}
	if cr := stripped.(*cmapi.CertificateRequest); cr.Spec.Request != nil || cr.Status.Certificate != nil || cr.Status.CA != nil || cr.ManagedFields != nil {
		t.Errorf("foreign request kept %+v", cr)
	}
	kept, err := stripForeignRequests(request(v1alpha1.GroupVersion.Group))
	if err != nil {
		t.Fatal(err)
	}
	if cr := kept.(*cmapi.CertificateRequest); string(cr.Spec.Request) != "csr" || string(cr.Status.Certificate) != "crt" || cr.ManagedFields != nil {
		t.Errorf("own request not kept whole (without managed fields): %+v", cr)
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

// flagDefaults are the options as the flags default them.
func flagDefaults(t *testing.T) Options {
	t.Helper()
	var o Options
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestOptionsComplete(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "linkerd-ca-issuer")
	o := flagDefaults(t)
	o.watchNamespaces = "linkerd, mesh ,linkerd,"
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	if o.ClusterResourceNamespace != "linkerd-ca-issuer" || o.LeaderElectionNamespace != "linkerd-ca-issuer" {
		t.Errorf("namespaces not defaulted from POD_NAMESPACE: %+v", o)
	}
	if want := []string{"linkerd", "mesh", "linkerd-ca-issuer"}; !slices.Equal(o.WatchNamespaces, want) {
		t.Errorf("watch namespaces %v, want %v", o.WatchNamespaces, want)
	}
	if o.EnableKubernetesCSR || o.MaxConcurrentReconciles != DefaultMaxConcurrentReconciles || o.KubeAPIQPS != DefaultKubeAPIQPS {
		t.Errorf("defaults: %+v", o)
	}

	t.Setenv("POD_NAMESPACE", "")
	o = flagDefaults(t)
	if _, err := os.Stat("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err != nil {
		if err := o.Complete(); err == nil || !strings.Contains(err.Error(), "set POD_NAMESPACE") {
			t.Errorf("no namespace anywhere: got %v", err)
		}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*Options)
		want   string
	}{
		{"zero retry duration", func(o *Options) { o.MaxRetryDuration = 0 }, "--max-retry-duration must be positive"},
		{"1s recheck interval", func(o *Options) { o.RecheckInterval = time.Second }, "--recheck-interval must be at least 1m"},
		{"no reconcilers", func(o *Options) { o.MaxConcurrentReconciles = 0 }, "--max-concurrent-reconciles must be at least 1"},
		{"renew deadline past the lease", func(o *Options) { o.RenewDeadline = o.LeaseDuration }, "--leader-election-lease-duration > --leader-election-renew-deadline"},
		{"no QPS", func(o *Options) { o.KubeAPIQPS = 0 }, "--kube-api-qps and --kube-api-burst must be positive"},
		{"CSRs for nobody", func(o *Options) { o.EnableKubernetesCSR = true }, "--enable-kubernetes-csr needs --kubernetes-csr-requesters"},
		{"requesters without CSRs", func(o *Options) { o.csrRequesters = "bootstrap" }, "--kubernetes-csr-requesters is set but Kubernetes CSRs are off"},
	} {
		o := flagDefaults(t)
		o.ClusterResourceNamespace, o.LeaderElectionNamespace = "x", "x"
		tc.mutate(&o)
		if err := o.Complete(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	o = flagDefaults(t)
	o.ClusterResourceNamespace, o.LeaderElectionNamespace = "x", "x"
	o.EnableKubernetesCSR, o.csrRequesters = true, "bootstrap, ,admin"
	if err := o.Complete(); err != nil || !slices.Equal(o.KubernetesCSRRequesters, []string{"bootstrap", "admin"}) {
		t.Errorf("CSR requesters: %v %v", err, o.KubernetesCSRRequesters)
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
