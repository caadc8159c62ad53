//go:build e2e

package multicluster

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// TestLinkWatcherCatchesViolations: the watcher over both clusters reports
// what it exists to catch (an identity issuer in one cluster under a root a
// pod of the other lacks; a root dropped from one cluster while the other
// may still have leaves under it) and nothing on a safe sequence.
func TestLinkWatcherCatchesViolations(t *testing.T) {
	anchor := func() *testpki.Anchor {
		a, err := testpki.NewAnchor(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	w1, w2, e1 := anchor(), anchor(), anchor()
	join := func(pems ...[]byte) string {
		var s string
		for _, p := range pems {
			s += string(p)
		}
		return s
	}
	roots := func(pems ...[]byte) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: guide.TrustRoots}, Data: map[string]string{v1alpha1.DefaultTrustRootsKey: join(pems...)}}
	}
	// A self-signed root verifies as its own issuer: it stands for an
	// identity issuer signed by it.
	issuer := func(pem []byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: guide.IdentityIssuer}, Data: map[string][]byte{corev1.TLSCertKey: pem}}
	}
	pod := func(name string, pems ...[]byte) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: apps, Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour))},
			Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: localcp.ProxyContainer, Env: []corev1.EnvVar{{Name: localcp.TrustAnchorsEnv, Value: join(pems...) + "\n"}}}}}}
	}
	newWatcher := func() *linkWatcher {
		w := &linkWatcher{lifetime: time.Hour, roots: map[string]*x509.Certificate{}, bundles: map[string][]bundleAt{}, issuer: map[string]string{},
			issuerCert: map[string][]byte{}, synced: true,
			pods: map[string]map[string]podtrust.Pod{"west": {}, "east": {}}, issuedUntil: map[string]map[string]time.Time{"west": {}, "east": {}}}
		return w
	}
	type event struct {
		cluster string
		obj     any
	}
	both := []event{{"west", roots(w1.CertPEM, e1.CertPEM)}, {"east", roots(w1.CertPEM, e1.CertPEM)}, {"west", issuer(w1.CertPEM)}, {"east", issuer(e1.CertPEM)},
		{"west", pod("w", w1.CertPEM, e1.CertPEM)}, {"east", pod("e", w1.CertPEM, e1.CertPEM)}}

	safe := newWatcher()
	for _, e := range append(both, event{"west", roots(w1.CertPEM, w2.CertPEM, e1.CertPEM)}, event{"east", roots(w1.CertPEM, w2.CertPEM, e1.CertPEM)},
		event{"west", pod("w", w1.CertPEM, w2.CertPEM, e1.CertPEM)}, event{"east", pod("e", w1.CertPEM, w2.CertPEM, e1.CertPEM)}, event{"west", issuer(w2.CertPEM)}) {
		safe.observe(e.cluster, e.obj, false)
	}
	if len(safe.violations) != 0 {
		t.Errorf("a safe linked rotation reported %v", safe.violations)
	}

	// West switches while east's pod holds only the old roots.
	early := newWatcher()
	for _, e := range append(both, event{"west", roots(w1.CertPEM, w2.CertPEM, e1.CertPEM)}, event{"west", pod("w", w1.CertPEM, w2.CertPEM, e1.CertPEM)}, event{"west", issuer(w2.CertPEM)}) {
		early.observe(e.cluster, e.obj, false)
	}
	if v := strings.Join(early.violations, "\n"); !strings.Contains(v, "I1: west's identity issuer chains to") || !strings.Contains(v, "pod apps/e of east does not hold") {
		t.Errorf("a switch before east's pods held the root: %q", v)
	}

	// East drops west's old root right after west stopped signing under
	// it, west's pod older than that.
	dropped := newWatcher()
	for _, e := range append(both, event{"west", roots(w1.CertPEM, w2.CertPEM, e1.CertPEM)}, event{"east", roots(w1.CertPEM, w2.CertPEM, e1.CertPEM)},
		event{"west", pod("w", w1.CertPEM, w2.CertPEM, e1.CertPEM)}, event{"east", pod("e", w1.CertPEM, w2.CertPEM, e1.CertPEM)}, event{"west", issuer(w2.CertPEM)},
		event{"east", roots(w2.CertPEM, e1.CertPEM)}) {
		dropped.observe(e.cluster, e.obj, false)
	}
	if v := strings.Join(dropped.violations, "\n"); !strings.Contains(v, "I2: root") || !strings.Contains(v, "left east's trust roots") {
		t.Errorf("a root dropped from east while west's leaves under it may live: %q", v)
	}
}
