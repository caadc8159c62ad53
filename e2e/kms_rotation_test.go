//go:build e2e

package e2e

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
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
)

// TestKMSRotation: a root whose key is in local-kms rotates to a root with
// another KMS key. `rotation start --kms` makes the next root and points
// spec.kms and the anchor Secret at it; while a pod is behind, the identity
// issuer is renewed under the previous root, signed by the previous key
// (the certificate is never paired with the spec's new key); then the
// switch, signed by the new key. No Secret ever holds either key. This test
// plays trust-manager (copying the trusted set into Linkerd's trust roots)
// and Linkerd's identity (the IssuerUpdated event), in a control plane of
// its own.
func TestKMSRotation(t *testing.T) {
	if cp.Existing {
		t.Skip("needs the local control plane's local-kms")
	}
	kc := useLocalKMS(t)
	kmsKey(t, kc, kmstypes.KeySpecEccNistP256, "alias/e2e-rot-1")
	kmsKey(t, kc, kmstypes.KeySpecEccNistP256, "alias/e2e-rot-2")
	run := func(args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if code := cli.Run(ctx, append(args, "--kubeconfig", cp.AdminKubeconfig), &out, &errOut); code != 0 {
			t.Fatalf("linkerd-ca %v: exit %d\n%s%s", args, code, &out, &errOut)
		}
		return out.String()
	}
	run("trust-anchor", "create", "--kms", "aws:alias/e2e-rot-1", "-n", nsCluster, "--name", "e2e-kms-rot")
	t.Cleanup(func() {
		_ = cl.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsCluster, Name: "e2e-kms-rot"}})
	})
	first := parsePEMCertificates(t, "root", mustSecret(t, nsCluster, "e2e-kms-rot").Data[corev1.TLSCertKey])[0]
	create(t, trustRootsFor(nsDrill, pemOf(first)))

	iss := &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: "e2e-kms-rotating"},
		Spec: v1alpha1.IssuerSpec{TrustAnchorSecretName: "e2e-kms-rot", ControlPlaneNamespace: nsDrill,
			KMS:      &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/e2e-rot-1"}},
			Rotation: &v1alpha1.RotationSpec{TrustedRootsConfigMapName: "e2e-kms-trusted"}}}
	create(t, iss)
	t.Cleanup(func() {
		_ = cl.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsCluster, Name: "e2e-kms-trusted"}})
	})
	crt := guide.IdentityIssuerCertificate(nsDrill, guide.IdentityIssuer)
	crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: issuerGroup, Kind: v1alpha1.ClusterIssuerKind, Name: iss.Name}
	create(t, crt)
	waitCertificateReady(t, nsDrill, crt.Name, 60*time.Second)
	// A meshed pod holding the first root alone keeps the rotation waiting.
	behind := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: nsDrill, Name: "proxy", Labels: map[string]string{podtrust.ControlPlaneNSLabel: nsDrill}},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: podtrust.ProxyContainer, Image: "cr.l5d.io/linkerd/proxy:stand-in", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
				Env: []corev1.EnvVar{{Name: podtrust.TrustAnchorsEnv, Value: string(mustSecret(t, nsCluster, "e2e-kms-rot").Data[corev1.TLSCertKey]) + "\n"}}}},
			Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1"}}}}
	create(t, behind)
	waitBarePod(t, nsDrill, "proxy")

	out := run("rotation", "start", "--kms", "aws:alias/e2e-rot-2", "-L", nsDrill)
	if err := cl.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
		t.Fatal(err)
	}
	next := iss.Spec.TrustAnchorSecretName
	t.Cleanup(func() {
		_ = cl.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsCluster, Name: next}})
	})
	if iss.Spec.KMS.AWS.KeyID != "alias/e2e-rot-2" || next == "e2e-kms-rot" || !strings.Contains(out, "alias/e2e-rot-2") {
		t.Fatalf("after rotation start --kms: spec.kms %s, Secret %s; want the new key and a new Secret:\n%s", iss.Spec.KMS, next, out)
	}
	secondSecret := mustSecret(t, nsCluster, next)
	if _, hasKey := secondSecret.Data[corev1.TLSPrivateKeyKey]; hasKey {
		t.Fatalf("the next root's Secret holds a key")
	}
	second := parsePEMCertificates(t, "next root", secondSecret.Data[corev1.TLSCertKey])[0]

	var st *v1alpha1.RotationStatus
	eventually(t, 60*time.Second, "Propagating under the first root with its own key", func() error {
		syncTrustRoots(t, first, second)
		if err := cl.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		if st = iss.Status.Rotation; st == nil || st.Phase != v1alpha1.RotationPropagating || st.BundleGainedAt == nil {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if st.SigningRoot != signer.Fingerprint(first) || st.SigningKMSKey.String() != "aws:alias/e2e-rot-1" || st.PodsBehind != 1 {
		t.Fatalf("status %+v; want signing under the first root with alias/e2e-rot-1, the pod behind", st)
	}
	// Renewed meanwhile: signed by the first key, under the first root.
	if err := renewIdentityIssuer(t, nsDrill).CheckSignatureFrom(first); err != nil {
		t.Errorf("renewed while propagating, not under the first root: %v", err)
	}

	if err := cl.Delete(ctx, behind); err != nil {
		t.Fatal(err)
	}
	eventually(t, 2*time.Minute, "Stable under the second root, signed by the second key", func() error {
		syncTrustRoots(t, first, second)
		issuerUpdated(t, nsDrill)
		if err := cl.Get(ctx, client.ObjectKeyFromObject(iss), iss); err != nil {
			return err
		}
		st := iss.Status.Rotation
		if st == nil || st.Phase != v1alpha1.RotationStable || st.SigningRoot != signer.Fingerprint(second) || st.SigningKMSKey.String() != "aws:alias/e2e-rot-2" {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	if err := identityIssuerIn(t, nsDrill).CheckSignatureFrom(second); err != nil {
		t.Errorf("the identity issuer is not under the second root: %v", err)
	}
	assertNoSecretHoldsKeyOf(t, first.PublicKey)
	assertNoSecretHoldsKeyOf(t, second.PublicKey)
}

// syncTrustRoots plays trust-manager for nsDrill: Linkerd's trust roots
// become the trusted set, or the roots given before the set exists.
func syncTrustRoots(t *testing.T, roots ...*x509.Certificate) {
	t.Helper()
	var set corev1.ConfigMap
	bundle := ""
	if err := cl.Get(ctx, client.ObjectKey{Namespace: nsCluster, Name: "e2e-kms-trusted"}, &set); err == nil {
		bundle = set.Data[v1alpha1.DefaultTrustRootsKey]
	} else {
		for _, r := range roots {
			bundle += string(pemOf(r))
		}
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsDrill, Name: v1alpha1.DefaultTrustRootsConfigMap}}
	update(t, cm, func() { cm.Data = map[string]string{v1alpha1.DefaultTrustRootsKey: bundle} })
}

// issuerUpdated plays Linkerd's identity service: it says it loaded the
// identity issuer in place.
func issuerUpdated(t *testing.T, ns string) {
	t.Helper()
	now := metav1.Now()
	_ = cl.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, GenerateName: "linkerd-identity."},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: ns, Name: "linkerd-identity"},
		Reason:         "IssuerUpdated", Message: "Updated identity issuer", Type: corev1.EventTypeNormal,
		FirstTimestamp: now, LastTimestamp: now, Count: 1, Source: corev1.EventSource{Component: "linkerd-identity"}})
}

func pemOf(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}
