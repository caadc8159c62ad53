package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	issuersigner "github.com/cert-manager/issuer-lib/controllers/signer"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/events"
	clocktesting "k8s.io/utils/clock/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

var now = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

func testScheme(t *testing.T) *runtime.Scheme {
	t.Helper()
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func newAnchor(t *testing.T, notAfter time.Time) *testpki.Anchor {
	t.Helper()
	a, err := testpki.NewAnchor(now.Add(-time.Hour), notAfter)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func anchorSecret(ns string, a *testpki.Anchor) *corev1.Secret {
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-trust-anchor"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: a.CertPEM, corev1.TLSPrivateKeyKey: a.KeyPEM},
	}
}

func issuer(ns string) *v1alpha1.LinkerdCAIssuer {
	return &v1alpha1.LinkerdCAIssuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd"},
		Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: "linkerd-trust-anchor"},
	}
}

func clusterIssuer() *v1alpha1.LinkerdCAClusterIssuer {
	return &v1alpha1.LinkerdCAClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: "linkerd"},
		Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: "linkerd-trust-anchor"},
	}
}

func newSigner(t *testing.T, objs ...client.Object) (*Signer, *events.FakeRecorder) {
	t.Helper()
	rec := events.NewFakeRecorder(10)
	c := fake.NewClientBuilder().WithScheme(testScheme(t)).WithObjects(objs...).
		WithStatusSubresource(&v1alpha1.LinkerdCAIssuer{}, &v1alpha1.LinkerdCAClusterIssuer{}, &cmapi.CertificateRequest{}, &certificatesv1.CertificateSigningRequest{}).Build()
	return &Signer{
		Client:                   c,
		Secrets:                  c,
		AnchorExpiryWarning:      DefaultAnchorExpiryWarning,
		ClusterResourceNamespace: "linkerd-ca-issuer",
		WatchNamespaces:          []string{"linkerd", "linkerd-ca-issuer"},
		EventRecorder:            rec,
		Clock:                    clocktesting.NewFakePassiveClock(now),
	}, rec
}

func TestCheck(t *testing.T) {
	good := newAnchor(t, now.Add(365*24*time.Hour))
	other := newAnchor(t, now.Add(365*24*time.Hour))
	opaque := anchorSecret("linkerd", good)
	opaque.Type = corev1.SecretTypeOpaque
	mismatched := anchorSecret("linkerd", good)
	mismatched.Data[corev1.TLSPrivateKeyKey] = other.KeyPEM
	noKey := anchorSecret("linkerd", good)
	delete(noKey.Data, corev1.TLSPrivateKeyKey)

	tests := []struct {
		name    string
		issuer  issuerapi.Issuer
		objects []client.Object
		want    string // "" means Ready
	}{
		{name: "issuer with a good anchor", issuer: issuer("linkerd"), objects: []client.Object{anchorSecret("linkerd", good)}},
		{name: "cluster issuer reads the cluster resource namespace", issuer: clusterIssuer(), objects: []client.Object{anchorSecret("linkerd-ca-issuer", good)}},
		{name: "missing Secret", issuer: issuer("linkerd"),
			want: "trust anchor Secret linkerd/linkerd-trust-anchor not found; create it with type kubernetes.io/tls and the root CA in tls.crt and tls.key"},
		{name: "cluster issuer ignores the control plane namespace", issuer: clusterIssuer(), objects: []client.Object{anchorSecret("linkerd", good)},
			want: "trust anchor Secret linkerd-ca-issuer/linkerd-trust-anchor not found"},
		{name: "wrong Secret type", issuer: issuer("linkerd"), objects: []client.Object{opaque},
			want: `trust anchor Secret linkerd/linkerd-trust-anchor has type "Opaque"; it must be of type kubernetes.io/tls (tls.crt and tls.key)`},
		{name: "missing key", issuer: issuer("linkerd"), objects: []client.Object{noKey},
			want: "trust anchor Secret linkerd/linkerd-trust-anchor: tls.key is missing or empty"},
		{name: "key mismatch", issuer: issuer("linkerd"), objects: []client.Object{mismatched},
			want: "trust anchor Secret linkerd/linkerd-trust-anchor: tls.key does not match the certificate in tls.crt"},
		{name: "namespace not watched", issuer: issuer("team-a"), objects: []client.Object{anchorSecret("team-a", good)},
			want: `trust anchor Secret team-a/linkerd-trust-anchor: namespace "team-a" is not watched by the controller (watched: [linkerd linkerd-ca-issuer]); add it to --watch-namespaces (Helm value watchNamespaces)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSigner(t, tc.objects...)
			err := s.Check(context.Background(), tc.issuer)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("want Ready, got %v", err)
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
				t.Fatalf("got %v\nwant prefix %s", err, tc.want)
			}
			// Anchor problems are fixed by fixing the Secret, so the issuer
			// must stay retryable rather than fail for good.
			if errors.As(err, &issuersigner.PermanentError{}) {
				t.Errorf("anchor error is permanent: the issuer would never recover")
			}
		})
	}
}

// TestCheckNeverEchoesKeyMaterial breaks the key in ways that make the
// decoders complain, and looks for any of its bytes in the message that ends
// up in the issuer's status and events.
func TestCheckNeverEchoesKeyMaterial(t *testing.T) {
	a := newAnchor(t, now.Add(24*time.Hour))
	body := strings.Join(strings.Split(string(a.KeyPEM), "\n")[1:3], "")
	for name, key := range map[string][]byte{
		"truncated": a.KeyPEM[:len(a.KeyPEM)/2],
		"raw DER":   []byte(body),
		"as EC":     bytes.Replace(a.KeyPEM, []byte("PRIVATE KEY"), []byte("EC PRIVATE KEY"), 2),
		"as cert":   bytes.Replace(a.KeyPEM, []byte("PRIVATE KEY"), []byte("CERTIFICATE"), 2),
	} {
		t.Run(name, func(t *testing.T) {
			sec := anchorSecret("linkerd", a)
			sec.Data[corev1.TLSPrivateKeyKey] = key
			if name == "as cert" {
				sec.Data[corev1.TLSCertKey] = key
			}
			s, _ := newSigner(t, sec)
			err := s.Check(context.Background(), issuer("linkerd"))
			if err == nil {
				t.Fatal("broken key accepted")
			}
			for i := 0; i+16 <= len(body); i += 8 {
				if strings.Contains(err.Error(), body[i:i+16]) {
					t.Fatalf("message carries key material: %v", err)
				}
			}
		})
	}
}

// requestUIDs numbers the requests certificateRequest makes.
var requestUIDs atomic.Int64

// certificateRequest is a request for crt whose validity started (its first
// signing attempt) a second ago.
func certificateRequest(t *testing.T, crt *cmapi.Certificate) issuersigner.CertificateRequestObject {
	t.Helper()
	return issuersigner.CertificateRequestObjectFromCertificateRequest(newRequest(t, crt, now.Add(-time.Second), now.Add(-time.Second)))
}

// newRequest is a request for crt created at created and, unless started is
// zero, with its validity started at started.
func newRequest(t *testing.T, crt *cmapi.Certificate, created, started time.Time) *cmapi.CertificateRequest {
	t.Helper()
	csr, _, err := testpki.CSRFor(crt)
	if err != nil {
		t.Fatal(err)
	}
	cr := &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: crt.Namespace, Name: crt.Name + "-1",
			UID: types.UID(fmt.Sprintf("uid-%d", requestUIDs.Add(1))), CreationTimestamp: metav1.NewTime(created),
		},
		Spec: cmapi.CertificateRequestSpec{
			Request: csr, IsCA: crt.Spec.IsCA, Usages: crt.Spec.Usages, Duration: crt.Spec.Duration,
		},
	}
	if !started.IsZero() {
		at := metav1.NewTime(started)
		cr.Status.Conditions = append(cr.Status.Conditions, cmapi.CertificateRequestCondition{
			Type: ConditionValidityStarted, Status: cmmeta.ConditionTrue, Reason: ReasonFirstSigningAttempt, LastTransitionTime: &at,
		})
	}
	return cr
}

func TestSign(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	s, rec := newSigner(t, anchorSecret("linkerd", a))
	bundle, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bundle.CAPEM, a.CertPEM) {
		t.Errorf("ca.crt is not the trust anchor:\n%s", bundle.CAPEM)
	}
	cert := decodeOne(t, bundle.ChainPEM)
	if err := cert.CheckSignatureFrom(a.Certificate); err != nil {
		t.Errorf("tls.crt not signed by the anchor: %v", err)
	}
	assertEvents(t, rec)
}

func TestSignWarnsWhenCappedAtAnchorExpiry(t *testing.T) {
	a := newAnchor(t, now.Add(2*time.Hour))
	s, rec := newSigner(t, anchorSecret("linkerd", a))
	bundle, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), issuer("linkerd"))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeOne(t, bundle.ChainPEM).NotAfter; !got.Equal(a.Certificate.NotAfter) {
		t.Errorf("NotAfter %s, want the anchor's %s", got, a.Certificate.NotAfter)
	}
	assertEvents(t, rec, "Warning NotAfterCapped the requested duration 24h0m0s would outlive the trust anchor; the issued certificate expires with the anchor at 2026-11-29T14:00:00Z")
}

func TestSignErrors(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	t.Run("anchor gone since Check sends the issuer back to be checked", func(t *testing.T) {
		s, _ := newSigner(t)
		_, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), issuer("linkerd"))
		if !errors.As(err, &issuersigner.IssuerError{}) {
			t.Fatalf("got %T %v, want an IssuerError", err, err)
		}
	})
	t.Run("policy refusal fails the request for good", func(t *testing.T) {
		s, _ := newSigner(t, anchorSecret("linkerd", a))
		crt := testpki.SeedCertificate("linkerd")
		crt.Spec.IsCA = false
		_, err := s.Sign(context.Background(), certificateRequest(t, crt), issuer("linkerd"))
		var refusal *signer.Refusal
		if !errors.As(err, &issuersigner.PermanentError{}) || !errors.As(err, &refusal) || refusal.Rule != signer.RuleIsCA {
			t.Fatalf("got %v, want a permanent isCA refusal", err)
		}
	})
	t.Run("the issuer's own names and bounds apply", func(t *testing.T) {
		s, _ := newSigner(t, anchorSecret("linkerd", a))
		iss := issuer("linkerd")
		iss.Spec.TrustDomain = "example.org"
		iss.Spec.MaxDuration = &metav1.Duration{Duration: 48 * time.Hour}
		_, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), iss)
		if err == nil || !strings.Contains(err.Error(), `must be "identity.linkerd.example.org"`) {
			t.Fatalf("got %v, want a subject refusal naming the issuer's trust domain", err)
		}
	})
}

func TestPolicyForDefaults(t *testing.T) {
	got := PolicyFor(issuer("linkerd"), nil)
	want := signer.Policy{TrustDomain: "cluster.local", ControlPlaneNamespace: "linkerd", MinDuration: time.Hour, MaxDuration: 8760 * time.Hour}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A cluster issuer signs only for its control plane's namespace.
	cluster := clusterIssuer()
	cluster.Spec.ControlPlaneNamespace = "mesh"
	if got := PolicyFor(cluster, []string{"bootstrap"}); got.Namespace != "mesh" || got.ControlPlaneNamespace != "mesh" || !slices.Equal(got.Requesters, []string{"bootstrap"}) {
		t.Fatalf("cluster issuer policy %+v, want Namespace mesh and the requesters", got)
	}
}
