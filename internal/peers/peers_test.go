package peers

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

var t0 = time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)

func scheme(t *testing.T) *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func anchor(t *testing.T) *testpki.Anchor {
	a, err := testpki.NewAnchor(t0.Add(-time.Hour), t0.Add(365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// east is a linked cluster: its cluster issuer signs under signing,
// propagates next (whose certificate its trust roots do not hold yet),
// drains old (if any) and reports signing propagated.
func east(t *testing.T, signing, next, old *testpki.Anchor, reads *int) client.Reader {
	iss := &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "linkerd"}}
	iss.Spec.Rotation = &v1alpha1.RotationSpec{}
	iss.Status.Rotation = &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: signer.Fingerprint(signing.Certificate),
		NextRoot: signer.Fingerprint(next.Certificate), Propagation: []v1alpha1.RootPropagation{{Fingerprint: signer.Fingerprint(signing.Certificate), Propagated: true},
			{Fingerprint: signer.Fingerprint(next.Certificate), PodsBehind: 3, PodsTotal: 3}}}
	roots := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd", Name: v1alpha1.DefaultTrustRootsConfigMap},
		Data: map[string]string{"ca-bundle.crt": string(signing.CertPEM)}}
	if old != nil {
		iss.Status.Rotation.RetiringRoots = []v1alpha1.RetiringRoot{{Fingerprint: signer.Fingerprint(old.Certificate)}}
		roots.Data["ca-bundle.crt"] += string(old.CertPEM)
	}
	return fake.NewClientBuilder().WithScheme(scheme(t)).WithObjects(iss, roots).WithStatusSubresource(iss).
		WithInterceptorFuncs(interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, key client.ObjectKey, obj client.Object, opts ...client.GetOption) error {
			*reads++
			return c.Get(ctx, key, obj, opts...)
		}}).Build()
}

func link(version string, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "cert-manager", Name: "east", ResourceVersion: version}, Data: data}
}

var eastRef = v1alpha1.RotationPeer{Name: "east", KubeconfigSecretName: "east", IssuerName: "linkerd"}

// TestAPeerIsReadThroughItsLinkSecret: the peer's own roots whose
// certificates its trust roots hold, with those certificates, and the
// roots it reports propagated; read again only after MinInterval.
func TestAPeerIsReadThroughItsLinkSecret(t *testing.T) {
	signing, next, old := anchor(t), anchor(t), anchor(t)
	reads, connects := 0, 0
	peer := east(t, signing, next, old, &reads)
	local := fake.NewClientBuilder().WithObjects(link("1", map[string][]byte{KubeconfigKey: []byte("kubeconfig of east")})).Build()
	clk := clocktesting.NewFakePassiveClock(t0)
	r := &Reader{Local: local, Namespace: "cert-manager", Scheme: scheme(t), Clock: clk, Timeout: time.Second, MinInterval: 10 * time.Second,
		Connect: func(kubeconfig []byte, _ *runtime.Scheme) (client.Reader, error) {
			connects++
			if string(kubeconfig) != "kubeconfig of east" {
				t.Errorf("connected with %q", kubeconfig)
			}
			return peer, nil
		}}
	got := r.ReadAll(context.Background(), []v1alpha1.RotationPeer{eastRef})
	fp, oldFP := signer.Fingerprint(signing.Certificate), signer.Fingerprint(old.Certificate)
	if p := got[0].Peer; p.Err != "" || !slices.Equal(p.Roots, []string{fp, oldFP}) || !slices.Equal(p.Propagated, []string{fp}) {
		t.Fatalf("read %+v; want its signing root, propagated, and the one it drains (the next one's certificate is not in its trust roots yet)", p)
	}
	if p := got[0].Peer; !slices.Equal(p.Minting, []string{fp}) {
		t.Fatalf("minting %v, want its signing root alone: it drains the other", p.Minting)
	}
	if len(got[0].Certs) != 2 || signer.Fingerprint(got[0].Certs[0]) != fp || signer.Fingerprint(got[0].Certs[1]) != oldFP {
		t.Fatalf("certificates %v, want the signing root's and the retiring one's", got[0].Certs)
	}
	before := reads
	clk.SetTime(t0.Add(5 * time.Second))
	r.ReadAll(context.Background(), []v1alpha1.RotationPeer{eastRef})
	if reads != before {
		t.Errorf("read again within MinInterval: %d requests", reads-before)
	}
	clk.SetTime(t0.Add(11 * time.Second))
	r.ReadAll(context.Background(), []v1alpha1.RotationPeer{eastRef})
	if reads != before+2 || connects != 1 {
		t.Errorf("after MinInterval: %d requests (want 2: issuer, trust roots), %d connections (want 1: the Secret is unchanged)", reads-before, connects)
	}
}

// TestAPeerThatCannotBeReadSaysWhy: each failure names what to fix, and
// never fails the other peers' reads.
func TestAPeerThatCannotBeReadSaysWhy(t *testing.T) {
	signing, next := anchor(t), anchor(t)
	reads := 0
	notRotating := &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "plain"}}
	for name, tc := range map[string]struct {
		secret *corev1.Secret
		ref    v1alpha1.RotationPeer
		want   string
	}{
		"no link Secret":       {nil, eastRef, "reading the link Secret cert-manager/east"},
		"no kubeconfig in it":  {link("1", map[string][]byte{"token": []byte("x")}), eastRef, `has no key "kubeconfig": make it with ` + "`linkerd-ca multicluster link`"},
		"no such issuer there": {link("1", map[string][]byte{KubeconfigKey: []byte("k")}), v1alpha1.RotationPeer{Name: "east", KubeconfigSecretName: "east", IssuerName: "missing"}, "reading LinkerdCAClusterIssuer missing"},
		"an issuer that does not rotate": {link("1", map[string][]byte{KubeconfigKey: []byte("k")}), v1alpha1.RotationPeer{Name: "east", KubeconfigSecretName: "east", IssuerName: "plain"},
			"LinkerdCAClusterIssuer plain does not rotate"},
	} {
		t.Run(name, func(t *testing.T) {
			b := fake.NewClientBuilder()
			if tc.secret != nil {
				b = b.WithObjects(tc.secret)
			}
			peer := east(t, signing, next, nil, &reads)
			if err := peer.(client.Client).Create(context.Background(), notRotating.DeepCopy()); err != nil {
				t.Fatal(err)
			}
			r := &Reader{Local: b.Build(), Namespace: "cert-manager", Scheme: scheme(t), Clock: clocktesting.NewFakePassiveClock(t0), Timeout: time.Second,
				Connect: func([]byte, *runtime.Scheme) (client.Reader, error) { return peer, nil }}
			got := r.ReadAll(context.Background(), []v1alpha1.RotationPeer{tc.ref, {Name: "west", KubeconfigSecretName: "west", IssuerName: "linkerd"}})
			if len(got) != 2 || !strings.Contains(got[0].Peer.Err, tc.want) || got[0].Peer.Roots != nil {
				t.Fatalf("read %+v; want an error saying %q, no roots", got[0].Peer, tc.want)
			}
			if !strings.Contains(got[1].Peer.Err, "west") {
				t.Errorf("the second peer: %+v", got[1].Peer)
			}
		})
	}
}

// TestALinkTakesInlineCredentialsOnly: a link Secret's kubeconfig that
// would run a command or read a file in the issuer's container (its own
// ServiceAccount token, sent to a server of the writer's choosing) is
// refused, with what a link takes.
func TestALinkTakesInlineCredentialsOnly(t *testing.T) {
	const head = "apiVersion: v1\nkind: Config\ncurrent-context: x\ncontexts:\n- name: x\n  context: {cluster: x, user: x}\nclusters:\n- name: x\n  cluster: {server: 'https://peer.example:6443'%s}\nusers:\n- name: x\n  user: %s\n"
	for name, tc := range map[string]struct{ cluster, user, want string }{
		"exec":       {"", "{exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, id]}}", "run a command"},
		"token file": {"", "{tokenFile: /var/run/secrets/kubernetes.io/serviceaccount/token}", "the kubeconfig names"},
		"CA file":    {", certificate-authority: /etc/ssl/ca.pem", "{token: abc}", "the kubeconfig names"},
		"client key": {"", "{client-certificate: /c.pem, client-key: /k.pem}", "the kubeconfig names"},
	} {
		_, err := Connect([]byte(fmt.Sprintf(head, tc.cluster, tc.user)), scheme(t))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want a refusal saying %q", name, err, tc.want)
		}
	}
	if _, err := Connect([]byte(fmt.Sprintf(head, "", "{token: abc}")), scheme(t)); err != nil {
		t.Errorf("an inline token: %v", err)
	}
}
