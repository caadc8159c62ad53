package podtrust

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

func injected(t *testing.T, env corev1.EnvVar) *corev1.Pod {
	t.Helper()
	started := metav1.NewTime(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: "app", Name: "web-7d4b9c-x2x", Labels: map[string]string{ControlPlaneNSLabel: "linkerd", podTemplateHashLabel: "7d4b9c", "app": "web"},
			Annotations:     map[string]string{RestartedForAnnotation: "AA", "other": "x"},
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-7d4b9c", Controller: ptr.To(true)}},
		},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: ProxyContainer, RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Env: []corev1.EnvVar{{Name: "OTHER", Value: "secret-ish"}, env}}},
			Containers: []corev1.Container{{Name: "web", Env: []corev1.EnvVar{{Name: "PASSWORD", Value: "x"}}}},
		},
		Status: corev1.PodStatus{InitContainerStatuses: []corev1.ContainerStatus{{Name: ProxyContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}}},
	}
}

func TestOfReadsAnInjectedPod(t *testing.T) {
	a, err := testpki.NewAnchor(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	p, ok := Of(injected(t, corev1.EnvVar{Name: TrustAnchorsEnv, Value: string(a.CertPEM) + "\n"}))
	if !ok {
		t.Fatal("an injected pod is meshed")
	}
	want := Pod{Namespace: "app", Name: "web-7d4b9c-x2x", ControlPlane: "linkerd", Inline: []string{signer.Fingerprint(a.Certificate)},
		Workload: Workload{Kind: "Deployment", Namespace: "app", Name: "web"}, RestartedFor: "AA"}
	if p.Started == nil || !p.Started.Equal(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("started = %v, want linkerd-proxy's start", p.Started)
	}
	p.Started, p.Created = nil, time.Time{}
	if !reflect.DeepEqual(p, want) {
		t.Fatalf("Of = %+v\nwant %+v", p, want)
	}
	if _, ok := Of(&corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web"}}}}); ok {
		t.Fatal("a pod without linkerd-proxy is not meshed")
	}
}

func TestOfControlPlaneAndBrokenEnv(t *testing.T) {
	p, _ := Of(injected(t, corev1.EnvVar{Name: TrustAnchorsEnv, ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{Key: "ca-bundle.crt"}}}))
	if !p.FromConfigMap || p.Inline != nil || p.Invalid != "" {
		t.Fatalf("configMapKeyRef: %+v", p)
	}
	p, _ = Of(injected(t, corev1.EnvVar{Name: TrustAnchorsEnv, Value: "not pem"}))
	if p.Inline != nil || !strings.Contains(p.Invalid, "not PEM") {
		t.Fatalf("garbage env: inline %v invalid %q; want nothing held and why", p.Inline, p.Invalid)
	}
}

func TestWorkloadOf(t *testing.T) {
	pod := injected(t, corev1.EnvVar{})
	for _, tc := range []struct {
		owner *metav1.OwnerReference
		want  Workload
	}{
		{nil, Workload{Namespace: "app", Name: pod.Name}},
		{&metav1.OwnerReference{Kind: "StatefulSet", Name: "db", Controller: ptr.To(true)}, Workload{Kind: "StatefulSet", Namespace: "app", Name: "db"}},
		{&metav1.OwnerReference{Kind: "Job", Name: "once", Controller: ptr.To(true)}, Workload{Namespace: "app", Name: pod.Name}},
		// An orphan ReplicaSet (no Deployment's hash) and an unknown
		// controller are owners a restart cannot reach: named, not bare.
		{&metav1.OwnerReference{Kind: "ReplicaSet", Name: "bare-rs", Controller: ptr.To(true)}, Workload{Namespace: "app", Name: "bare-rs", Owner: "ReplicaSet"}},
		{&metav1.OwnerReference{Kind: "Rollout", Name: "canary", Controller: ptr.To(true)}, Workload{Namespace: "app", Name: "canary", Owner: "Rollout"}},
	} {
		pod.OwnerReferences = nil
		if tc.owner != nil {
			pod.OwnerReferences = []metav1.OwnerReference{*tc.owner}
		}
		if got := workloadOf(pod); got != tc.want {
			t.Errorf("owner %v: %v, want %v", tc.owner, got, tc.want)
		}
	}
}

// TestCompactKeepsTheTrustOf: the cache's form of a pod reads as the pod
// does, and holds nothing of the pod it came from (which would keep the
// whole decoded pod alive).
func TestCompactKeepsTheTrustOf(t *testing.T) {
	a, _ := testpki.NewAnchor(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	pod := injected(t, corev1.EnvVar{Name: TrustAnchorsEnv, Value: string(a.CertPEM)})
	started := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
	pod.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: ProxyContainer, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}}}
	pod.Labels[ControlPlaneNSLabel] = "linkerd"
	out, err := Compact(pod)
	if err != nil {
		t.Fatal(err)
	}
	cached := out.(*Cached)
	full, _ := Of(pod)
	if !cached.Proxied || !reflect.DeepEqual(cached.Pod, full) {
		t.Fatalf("Compact(pod).Pod = %+v\nwant Of(pod) = %+v", cached.Pod, full)
	}
	if full.Started == nil || cached.Pod.Started == full.Started {
		t.Fatal("the cached start time points into the pod it was read from")
	}
	if got := ControlPlaneOf(cached); got != "linkerd" {
		t.Errorf("ControlPlaneOf(cached) = %q", got)
	}
	if cached.Labels != nil || cached.Annotations != nil || cached.OwnerReferences != nil {
		t.Errorf("the cache keeps more metadata than the informer needs: %+v", cached.ObjectMeta)
	}
	copied := cached.DeepCopyObject().(*Cached)
	if !reflect.DeepEqual(copied, cached) || copied.Pod.Started == cached.Pod.Started {
		t.Errorf("DeepCopyObject: %+v, want an equal copy that shares no times", copied)
	}

	bare := pod.DeepCopy()
	bare.Spec.InitContainers = nil
	out, _ = Compact(bare)
	if c := out.(*Cached); c.Proxied || c.Pod.ControlPlane != "linkerd" {
		t.Errorf("a pod without linkerd-proxy: %+v", c)
	}
	if out, _ := Compact("tombstone"); out != "tombstone" {
		t.Errorf("Compact changed a non-pod: %v", out)
	}
}

// FuzzParseRoots: whatever a pod's env holds, parsing never panics, and
// what parses re-encodes to the same roots.
func FuzzParseRoots(f *testing.F) {
	a, _ := testpki.NewAnchor(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	f.Add(string(a.CertPEM) + "\n")
	f.Add(string(a.CertPEM) + string(a.CertPEM))
	f.Add("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, env string) {
		fps, err := ParseRoots(env)
		if err != nil {
			return
		}
		certs, err := signer.ParseTrustBundle([]byte(env))
		if err != nil || len(certs) != len(fps) {
			t.Fatalf("ParseRoots accepted what ParseTrustBundle refuses: %v", err)
		}
		again, err := ParseRoots(string(signer.EncodeBundle(certs)))
		if err != nil || !reflect.DeepEqual(again, fps) {
			t.Fatalf("re-encoded: %v %v, want %v", again, err, fps)
		}
	})
}

func TestBundlesAreKeptOnceAndParsedOnce(t *testing.T) {
	a, err := testpki.NewAnchor(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	b2, err := testpki.NewAnchor(time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	env := string(a.CertPEM) + string(b2.CertPEM)
	one, _ := Of(injected(t, corev1.EnvVar{Name: TrustAnchorsEnv, Value: strings.Clone(env)}))
	two, _ := Of(injected(t, corev1.EnvVar{Name: TrustAnchorsEnv, Value: strings.Clone(env)}))
	if len(one.Inline) != 2 || unsafe.SliceData(one.Inline) != unsafe.SliceData(two.Inline) {
		t.Error("two pods with the same bundle keep two parses of it")
	}
	roots, err := ParseRoots(env)
	if err != nil || len(roots) != 2 {
		t.Fatalf("ParseRoots: %v, %v", roots, err)
	}
	roots[0] = "changed by a caller"
	if again, _ := ParseRoots(env); again[0] == "changed by a caller" {
		t.Error("a caller's change to the roots reached the remembered parse")
	}
	if _, err := ParseRoots("not PEM"); err == nil {
		t.Error("a bundle that is not PEM parsed")
	}
	if _, err := ParseRoots("not PEM"); err == nil {
		t.Error("a remembered bad bundle parsed the second time")
	}
}

func TestCompareKeysOrdersAsKeys(t *testing.T) {
	names := []string{"", "a", "app", "app-1", "app.x", "app/", "b", "z~", "app0"}
	for _, ans := range names {
		for _, an := range names[:4] {
			for _, bns := range names {
				for _, bn := range names[:4] {
					a, b := Pod{Namespace: ans, Name: an}, Pod{Namespace: bns, Name: bn}
					if got, want := sign(CompareKeys(a, b)), sign(strings.Compare(a.Key(), b.Key())); got != want {
						t.Fatalf("CompareKeys(%q, %q) = %d, the keys compare %d", a.Key(), b.Key(), got, want)
					}
				}
			}
		}
	}
}

func sign(n int) int { return min(max(n, -1), 1) }
