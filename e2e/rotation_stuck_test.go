//go:build e2e

package e2e

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// stuckLifetime is the identity issuer's lifetime here, so that its expiry,
// the hold's deadline, passes within the test (48h in the guide).
const stuckLifetime = 75 * time.Second

// TestRotationStuckPastItsDeadline is an anchor that never propagates: the
// root Secret overwritten in place while a meshed pod nothing restarts holds
// the old root. The issuer holds, the identity issuer in place expires
// unrenewed (nothing is signed under a root the pod lacks), and from then on
// `linkerd-ca check` fails with "past its deadline" and what to do; doing it
// (deleting the pod) completes the switch.
//
// The namespaced flow, without trust-manager: the trusted set the controller
// keeps is Linkerd's trust roots ConfigMap itself. Its pod is written as a
// second control plane's injector would admit it, since the stand-in
// injector serves only nsMesh's.
func TestRotationStuckPastItsDeadline(t *testing.T) {
	t.Parallel() // mostly waiting for the deadline, beside the mesh's rotation
	old, next := newAnchor(t), newAnchor(t)
	oldFP, nextFP := signer.Fingerprint(old.Certificate), signer.Fingerprint(next.Certificate)
	anchor := anchorSecret(nsStuck, "stuck-root", old)
	create(t, anchor)
	iss := linkerdIssuer(nsStuck, "stuck", anchor.Name)
	iss.Spec.ControlPlaneNamespace, iss.Spec.MinDuration = nsStuck, &metav1.Duration{Duration: time.Minute}
	iss.Spec.Rotation = &v1alpha1.RotationSpec{TrustedRootsConfigMapName: v1alpha1.DefaultTrustRootsConfigMap}
	create(t, iss)
	stuckStatus(t, iss, "Stable under the first root", func(st *v1alpha1.RotationStatus) bool {
		return st.Phase == v1alpha1.RotationStable && st.SigningRoot == oldFP
	})
	pod := injectedPod(t, nsStuck, "meshed", old)

	crt := guide.IdentityIssuerCertificate(nsStuck, guide.IdentityIssuer)
	crt.Spec.Duration, crt.Spec.RenewBefore = &metav1.Duration{Duration: stuckLifetime}, nil
	crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: issuerGroup, Kind: v1alpha1.IssuerKind, Name: iss.Name}
	create(t, crt)
	waitCertificateReady(t, nsStuck, crt.Name, 60*time.Second)
	issued := identityIssuerIn(t, nsStuck)
	if issued.CheckSignatureFrom(old.Certificate) != nil {
		t.Fatal("the identity issuer is not signed by the first root")
	}

	update(t, anchor, func() {
		anchor.Data = map[string][]byte{corev1.TLSCertKey: next.CertPEM, corev1.TLSPrivateKeyKey: next.KeyPEM}
	})
	st := stuckStatus(t, iss, "held, the pod named, the deadline the identity issuer's expiry", func(st *v1alpha1.RotationStatus) bool {
		return st.Phase == v1alpha1.RotationHeld && st.NextRoot == nextFP && st.PodsBehind == 1 &&
			slices.Equal(st.Unrestartable, []string{pod}) && st.Deadline != nil
	})
	if deadline := issued.NotAfter.Truncate(time.Second); !st.Deadline.Time.Equal(deadline) {
		t.Errorf("deadline %s, want the identity issuer's expiry %s", st.Deadline.UTC(), deadline.UTC())
	}
	if code, out := stuckCheck(); code == 0 || !strings.Contains(out, "held") || strings.Contains(out, "past its deadline") {
		t.Errorf("linkerd-ca check before the deadline: exit %d, want a failure naming the hold, not yet past its deadline:\n%s", code, out)
	}

	// Until the deadline and past it, the identity issuer in the Secret is
	// never one signed under the root the pod lacks; cert-manager's renewal
	// at two thirds of its life stays unsigned.
	for time.Now().Before(st.Deadline.Add(2 * time.Second)) {
		if leaf := identityIssuerIn(t, nsStuck); leaf.CheckSignatureFrom(next.Certificate) == nil {
			t.Fatalf("an identity issuer was signed under the new root at %s while %s holds only the old one", leaf.NotBefore, pod)
		}
		time.Sleep(500 * time.Millisecond)
	}
	saveAlertState(t, "past-deadline", map[string]string{"issuer_kind": v1alpha1.IssuerKind, "issuer": nsStuck + "/stuck"},
		sample("linkerd_ca_issuer_rotation_phase", "1", `phase="Held"`))
	code, out := stuckCheck()
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "past its deadline") {
			t.Logf("linkerd-ca check past the deadline: %s", strings.TrimSpace(line))
		}
	}
	for _, want := range []string{"past its deadline " + st.Deadline.UTC().Format(time.RFC3339), "(1 of 1 pods behind)",
		"no restart replaces [" + pod + "]: delete or re-create them", "linkerd-ca rotation status -L " + nsStuck} {
		if code == 0 || !strings.Contains(out, want) {
			t.Errorf("linkerd-ca check past the deadline: exit %d, want a failure saying %q:\n%s", code, want, out)
		}
	}

	// What it says to do: the pod gone, the rotation switches by itself and
	// the identity issuer is re-issued under the new root.
	if err := cl.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsStuck, Name: "meshed"}}); err != nil {
		t.Fatal(err)
	}
	stuckStatus(t, iss, "switched to the new root", func(st *v1alpha1.RotationStatus) bool {
		return st.SigningRoot == nextFP && st.Phase != v1alpha1.RotationHeld
	})
	eventually(t, 60*time.Second, "the identity issuer re-issued under the new root", func() error {
		if leaf := identityIssuerIn(t, nsStuck); leaf.CheckSignatureFrom(next.Certificate) != nil {
			return fmt.Errorf("identity issuer of %s still under the old root", leaf.NotBefore)
		}
		return nil
	})
}

// stuckStatus waits for the issuer's status.rotation to satisfy ok.
func stuckStatus(t *testing.T, iss *v1alpha1.LinkerdCAIssuer, what string, ok func(*v1alpha1.RotationStatus) bool) v1alpha1.RotationStatus {
	t.Helper()
	var st v1alpha1.RotationStatus
	eventually(t, 60*time.Second, what, func() error {
		if err := cl.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		if iss.Status.Rotation == nil {
			return fmt.Errorf("no status.rotation")
		}
		if st = *iss.Status.Rotation; !ok(&st) {
			return fmt.Errorf("phase %s, %d of %d behind, unrestartable %v: %s", st.Phase, st.PodsBehind, st.PodsTotal, st.Unrestartable, st.Message)
		}
		return nil
	})
	return st
}

// stuckCheck is `linkerd-ca check` against nsStuck's control plane.
func stuckCheck() (int, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(ctx, []string{"check", "--kubeconfig", cp.AdminKubeconfig, "-L", nsStuck}, &out, &errOut)
	return code, out.String() + errOut.String()
}

// identityIssuerIn is the certificate in ns's linkerd-identity-issuer Secret.
func identityIssuerIn(t *testing.T, ns string) *x509.Certificate {
	t.Helper()
	s := mustSecret(t, ns, guide.IdentityIssuer)
	return parsePEMCertificates(t, "identity issuer", s.Data[corev1.TLSCertKey])[0]
}

// injectedPod creates a bare pod as Linkerd's injector admits it for the
// control plane in ns when its bundle is the given root: linkerd-proxy as a
// native sidecar with the bundle inline, the hash annotation and the mesh
// labels (the stand-in injector's, see localcp). Nothing re-creates it.
func injectedPod(t *testing.T, ns, name string, root *testpki.Anchor) string {
	t.Helper()
	sum := sha256.Sum256(root.CertPEM)
	create(t, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{podtrust.ControlPlaneNSLabel: ns, localcp.WorkloadNSLabel: ns},
			Annotations: map[string]string{localcp.TrustRootHashAnnotation: hex.EncodeToString(sum[:])}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: podtrust.ProxyContainer, Image: "cr.l5d.io/linkerd/proxy:stand-in",
				RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Env:           []corev1.EnvVar{{Name: podtrust.TrustAnchorsEnv, Value: string(root.CertPEM) + "\n"}}}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}},
		},
	})
	return waitBarePod(t, ns, name)
}
