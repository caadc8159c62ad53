//go:build e2e

package e2e

import (
	"crypto/x509"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// TestTrustWatcherCatchesViolations: the rotation suite's watcher reports
// what it exists to catch (a pod without the identity issuer's root, a root
// dropped while leaves under it may live) and nothing on a safe sequence.
func TestTrustWatcherCatchesViolations(t *testing.T) {
	a, b := newAnchor(t), newAnchor(t)
	roots := func(pems ...[]byte) *corev1.ConfigMap {
		var s string
		for _, p := range pems {
			s += string(p)
		}
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsMesh, Name: v1alpha1.DefaultTrustRootsConfigMap}, Data: map[string]string{v1alpha1.DefaultTrustRootsKey: s}}
	}
	// A self-signed root verifies as its own issuer: it stands for an
	// identity issuer signed by it.
	issuer := func(pem []byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsMesh, Name: localcp.IdentityIssuerSecret}, Data: map[string][]byte{corev1.TLSCertKey: pem}}
	}
	pod := func(name string, pems ...[]byte) *corev1.Pod {
		var s string
		for _, p := range pems {
			s += string(p)
		}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "app", Name: name, UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(time.Now().Add(-time.Hour))},
			Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: localcp.ProxyContainer, Env: []corev1.EnvVar{{Name: localcp.TrustAnchorsEnv, Value: s + "\n"}}}}}}
	}
	newWatcher := func() *trustWatcher {
		return &trustWatcher{lifetime: time.Hour, pods: map[string]podtrust.Pod{}, roots: map[string]*x509.Certificate{}, issuedUntil: map[string]time.Time{}, seen: map[string]bool{}}
	}

	safe := newWatcher()
	for _, o := range []any{roots(a.CertPEM), pod("p1", a.CertPEM), issuer(a.CertPEM), roots(a.CertPEM, b.CertPEM), pod("p2", a.CertPEM, b.CertPEM)} {
		safe.observe(o, false)
	}
	safe.observe(pod("p1", a.CertPEM), true)
	safe.observe(issuer(b.CertPEM), false)
	if v, _ := safe.report(); len(v) != 0 {
		t.Errorf("a safe rotation reported %v", v)
	}

	unsafe := newWatcher()
	for _, o := range []any{roots(a.CertPEM, b.CertPEM), pod("p1", a.CertPEM), issuer(b.CertPEM), roots(b.CertPEM)} {
		unsafe.observe(o, false)
	}
	v, _ := unsafe.report()
	joined := strings.Join(v, "\n")
	if !strings.Contains(joined, "I1: pod app/p1") {
		t.Errorf("signing under a root a pod lacks went unreported: %v", v)
	}
	unsafe = newWatcher()
	for _, o := range []any{roots(a.CertPEM, b.CertPEM), pod("p1", a.CertPEM, b.CertPEM), issuer(a.CertPEM), issuer(b.CertPEM), roots(b.CertPEM)} {
		unsafe.observe(o, false)
	}
	if v, _ := unsafe.report(); len(v) != 1 || !strings.Contains(v[0], "I2:") {
		t.Errorf("dropping a root whose leaves may live: %v, want one I2", v)
	}

	// A finished pod runs no proxy; a running one lacking the root counts.
	finished := pod("job", a.CertPEM)
	finished.Status.Phase = corev1.PodSucceeded
	w := newWatcher()
	for _, o := range []any{roots(a.CertPEM, b.CertPEM), finished, issuer(b.CertPEM)} {
		w.observe(o, false)
	}
	if v, _ := w.report(); len(v) != 0 {
		t.Errorf("a finished pod without the root was counted: %v", v)
	}
	finished.Status.Phase = corev1.PodRunning
	w.observe(finished, false)
	if v, _ := w.report(); len(v) != 1 || !strings.Contains(v[0], "I1: pod app/job") {
		t.Errorf("the same pod running: %v, want one I1", v)
	}

	// A copy of the root renewed with the same key verifies the same
	// issuers; a root with another key under the same subject does not.
	copyOfA, err := a.Renewed(time.Now().Add(-time.Minute), time.Now().Add(48*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	w = newWatcher()
	for _, o := range []any{roots(a.CertPEM, copyOfA.CertPEM), pod("p1", a.CertPEM), issuer(copyOfA.CertPEM), roots(copyOfA.CertPEM)} {
		w.observe(o, false)
	}
	if v, _ := w.report(); len(v) != 0 {
		t.Errorf("signing under a same-key copy of the root a pod holds, and dropping the old copy: %v, want nothing", v)
	}
	sameName := newAnchor(t) // same subject CN, another key
	w = newWatcher()
	for _, o := range []any{roots(a.CertPEM, sameName.CertPEM), pod("p1", a.CertPEM), issuer(sameName.CertPEM)} {
		w.observe(o, false)
	}
	if v, _ := w.report(); len(v) != 1 || !strings.Contains(v[0], "I1:") {
		t.Errorf("another key under the same subject: %v, want one I1", v)
	}
}
