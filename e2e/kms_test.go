//go:build e2e

package e2e

import (
	"bytes"
	"crypto"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
)

// TestKMSAnchor: the root key in KMS (local-kms standing in for AWS KMS),
// never in the cluster. The CLI makes the root with the KMS key; a
// LinkerdCAClusterIssuer naming the key signs Linkerd's identity issuer on
// the current guide's flow, as Linkerd's checks want it; no Secret holds
// the root's key; KMS down, the issuer goes not Ready with the reason and
// the renewal waits, then completes when KMS is back; keys that cannot be
// the anchor's are refused with what to fix.
func TestKMSAnchor(t *testing.T) {
	if cp.Existing {
		t.Skip("needs the local control plane's local-kms")
	}
	kc := useLocalKMS(t)
	kmsKey(t, kc, kmstypes.KeySpecEccNistP256, "alias/e2e-root")
	var out, errOut bytes.Buffer
	if code := cli.Run(ctx, []string{"trust-anchor", "create", "--kms", "aws:alias/e2e-root", "-n", nsCluster, "--name", "e2e-kms-root",
		"--kubeconfig", cp.AdminKubeconfig}, &out, &errOut); code != 0 {
		t.Fatalf("linkerd-ca trust-anchor create --kms: exit %d\n%s%s", code, &out, &errOut)
	}
	t.Cleanup(func() {
		_ = cl.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsCluster, Name: "e2e-kms-root"}})
	})
	anchor := mustSecret(t, nsCluster, "e2e-kms-root")
	if _, hasKey := anchor.Data[corev1.TLSPrivateKeyKey]; hasKey || anchor.Type != corev1.SecretTypeOpaque {
		t.Fatalf("the CLI stored a %s Secret with keys %v; want the certificate alone", anchor.Type, mapKeys(anchor.Data))
	}
	root := parsePEMCertificates(t, "root", anchor.Data[corev1.TLSCertKey])[0]
	create(t, trustRootsFor(nsKMS, anchor.Data[corev1.TLSCertKey]))

	iss := kmsIssuer("e2e-kms", "e2e-kms-root", "alias/e2e-root")
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	crt := guide.IdentityIssuerCertificate(nsKMS, guide.IdentityIssuer)
	crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: issuerGroup, Kind: v1alpha1.ClusterIssuerKind, Name: iss.Name}
	create(t, crt)
	waitCertificateReady(t, nsKMS, crt.Name, 60*time.Second)
	issuer, _ := assertLinkerdIdentityChecks(t, mustSecret(t, nsKMS, guide.IdentityIssuer))
	if err := issuer.CheckSignatureFrom(root); err != nil {
		t.Fatalf("the identity issuer is not signed by the KMS root: %v", err)
	}
	assertNoSecretHoldsKeyOf(t, root.PublicKey)
	out.Reset()
	errOut.Reset()
	cli.Run(ctx, []string{"check", "-L", nsKMS, "--kubeconfig", cp.AdminKubeconfig}, &out, &errOut)
	if want := "signs with aws:alias/e2e-root, whose public key is the anchor's"; !strings.Contains(out.String(), want) {
		t.Errorf("linkerd-ca check does not say %q:\n%s%s", want, &out, &errOut)
	}

	t.Run("KMS unreachable: not Ready with the reason, the renewal waits, then completes", func(t *testing.T) {
		if err := cp.StopKMS(); err != nil {
			t.Fatal(err)
		}
		restarted := false
		defer func() {
			if !restarted {
				_ = cp.StartKMS(ctx)
			}
		}()
		renew(t, nsKMS, crt.Name)
		c := waitIssuer(t, iss, metav1.ConditionFalse, "AWS KMS could not be reached for")
		t.Logf("KMS down: %s", c.Message)
		// Down for a while: the renewal's request waits, neither signed nor
		// failed for good, and the issuer stays not Ready.
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
			for _, cr := range requestsFor(t, nsKMS, crt.Name) {
				if cr.Annotations[cmapi.CertificateRequestRevisionAnnotationKey] == "1" {
					continue
				}
				if cond := requestCondition(&cr, cmapi.CertificateRequestConditionReady); cond != nil && cond.Reason == cmapi.CertificateRequestReasonFailed {
					t.Fatalf("CertificateRequest %s failed for good while KMS was down: %s", cr.Name, cond.Message)
				}
				if len(cr.Status.Certificate) > 0 {
					t.Fatalf("CertificateRequest %s signed while KMS was down", cr.Name)
				}
			}
			if c, err := issuerReady(iss); err != nil || c.Status == metav1.ConditionTrue {
				t.Fatalf("issuer Ready while KMS is down: %v %v", c, err)
			}
		}
		if err := cp.StartKMS(ctx); err != nil {
			t.Fatal(err)
		}
		restarted = true
		start := time.Now()
		eventually(t, 3*time.Minute, "the renewal signed once KMS is back", func() error {
			var got cmapi.Certificate
			if err := cl.Get(ctx, client.ObjectKeyFromObject(crt), &got); err != nil {
				return err
			}
			if got.Status.Revision == nil || *got.Status.Revision < 2 {
				return fmt.Errorf("revision %v", got.Status.Revision)
			}
			return nil
		})
		t.Logf("renewed %s after KMS came back", time.Since(start).Round(time.Second))
		waitIssuer(t, iss, metav1.ConditionTrue, "")
		renewed, _ := assertLinkerdIdentityChecks(t, mustSecret(t, nsKMS, guide.IdentityIssuer))
		if renewed.SerialNumber.Cmp(issuer.SerialNumber) == 0 || renewed.CheckSignatureFrom(root) != nil {
			t.Error("the renewal is not a new identity issuer under the KMS root")
		}
	})

	t.Run("the certificate in a ConfigMap", func(t *testing.T) { testKMSConfigMapAnchor(t, kc) })

	t.Run("a namespaced issuer naming the cluster's key is refused, nothing signed", func(t *testing.T) {
		// A tenant who may edit a watched namespace copies the public root
		// into a Secret of its own and names the platform's key.
		copied := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: nsAdmissionTenant, Name: "copied-root"},
			Data: map[string][]byte{corev1.TLSCertKey: anchor.Data[corev1.TLSCertKey]}}
		create(t, copied)
		tenant := &v1alpha1.LinkerdCAIssuer{ObjectMeta: metav1.ObjectMeta{Namespace: nsAdmissionTenant, Name: "borrowed-key"},
			Spec: v1alpha1.IssuerSpec{TrustAnchorSecretName: copied.Name, ControlPlaneNamespace: nsAdmissionTenant,
				KMS: &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/e2e-root"}}, TrustRoots: v1alpha1.TrustRootsReference{Check: ptr.To(false)}}}
		err := cl.Create(ctx, tenant)
		if err == nil {
			t.Cleanup(func() { _ = cl.Delete(ctx, tenant) })
		}
		if err == nil || !strings.Contains(err.Error(), "spec.kms is allowed only on a LinkerdCAClusterIssuer") {
			t.Fatalf("creating a LinkerdCAIssuer with spec.kms: %v; want it refused at apply, naming the rule", err)
		}
		if err := cl.Get(ctx, client.ObjectKeyFromObject(tenant), &v1alpha1.LinkerdCAIssuer{}); err == nil {
			t.Error("the refused issuer exists")
		}
	})

	t.Run("keys that cannot be the anchor's are refused with what to fix", func(t *testing.T) {
		kmsKey(t, kc, kmstypes.KeySpecEccNistP384, "alias/e2e-p384")
		kmsKey(t, kc, kmstypes.KeySpecEccNistP256, "alias/e2e-other")
		disabled := kmsKey(t, kc, kmstypes.KeySpecEccNistP256, "alias/e2e-disabled")
		if _, err := kc.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(disabled)}); err != nil {
			t.Fatal(err)
		}
		for key, want := range map[string]string{
			"alias/e2e-p384":     "has key spec ECC_NIST_P384; Linkerd's trust anchors are ECDSA P-256 or RSA",
			"alias/e2e-disabled": "is Disabled; it must be Enabled to sign",
			"alias/e2e-other":    "the KMS key aws:alias/e2e-other is not the key of the anchor's certificate",
		} {
			refused := kmsIssuer("e2e-kms-"+strings.TrimPrefix(key, "alias/e2e-"), "e2e-kms-root", key)
			create(t, refused)
			c := waitIssuer(t, refused, metav1.ConditionFalse, want)
			t.Logf("%s: %s", key, c.Message)
		}
	})
}

// testKMSConfigMapAnchor: the root's certificate in a ConfigMap, where the
// Secret would be, made by the CLI; the issuer naming it signs under it, and
// what cannot work is refused at admission by the CRD's rules.
func testKMSConfigMapAnchor(t *testing.T, kc *kms.Client) {
	kmsKey(t, kc, kmstypes.KeySpecEccNistP256, "alias/e2e-cm-root")
	var out, errOut bytes.Buffer
	if code := cli.Run(ctx, []string{"trust-anchor", "create", "--kms", "aws:alias/e2e-cm-root", "--configmap", "-n", nsCluster, "--name", "e2e-kms-root-cert",
		"--kubeconfig", cp.AdminKubeconfig}, &out, &errOut); code != 0 {
		t.Fatalf("linkerd-ca trust-anchor create --kms --configmap: exit %d\n%s%s", code, &out, &errOut)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: nsCluster, Name: "e2e-kms-root-cert"}}
	t.Cleanup(func() { _ = cl.Delete(ctx, cm) })
	if err := cl.Get(ctx, client.ObjectKeyFromObject(cm), cm); err != nil {
		t.Fatal(err)
	}
	root := parsePEMCertificates(t, "root", []byte(cm.Data["ca.crt"]))[0]
	iss := kmsIssuer("e2e-kms-cm", "", "alias/e2e-cm-root")
	iss.Spec.TrustAnchorConfigMapName = cm.Name
	// Linkerd's trust roots here are the other root's: this issuer's gate is
	// off, the anchor's source is what is proven.
	iss.Spec.TrustRoots.Check = new(false)
	create(t, iss)
	waitIssuer(t, iss, metav1.ConditionTrue, "")
	crt := guide.IdentityIssuerCertificate(nsKMS, guide.IdentityIssuer)
	crt.Name, crt.Spec.SecretName = "e2e-kms-cm-issuer", "e2e-kms-cm-issuer"
	crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: issuerGroup, Kind: v1alpha1.ClusterIssuerKind, Name: iss.Name}
	create(t, crt)
	waitCertificateReady(t, nsKMS, crt.Name, 60*time.Second)
	issued := parsePEMCertificates(t, "tls.crt", mustSecret(t, nsKMS, crt.Spec.SecretName).Data[corev1.TLSCertKey])[0]
	if err := issued.CheckSignatureFrom(root); err != nil {
		t.Fatalf("the identity issuer is not signed by the ConfigMap's root: %v", err)
	}

	for want, mutate := range map[string]func(*v1alpha1.IssuerSpec){
		"trustAnchorConfigMapName needs spec.kms":                                                      func(s *v1alpha1.IssuerSpec) { s.KMS = nil },
		"name the trust anchor with exactly one of trustAnchorSecretName and trustAnchorConfigMapName": func(s *v1alpha1.IssuerSpec) { s.TrustAnchorSecretName = "e2e-kms-root" },
		"spec.rotation needs the trust anchor in a Secret":                                             func(s *v1alpha1.IssuerSpec) { s.Rotation = &v1alpha1.RotationSpec{} },
	} {
		bad := kmsIssuer("e2e-kms-cm-bad", "", "alias/e2e-cm-root")
		bad.Spec.TrustAnchorConfigMapName = cm.Name
		mutate(&bad.Spec)
		if err := cl.Create(ctx, bad); err == nil || !strings.Contains(err.Error(), want) {
			_ = cl.Delete(ctx, bad)
			t.Errorf("creating an issuer that cannot work: %v; want %q", err, want)
		}
	}
}

func kmsIssuer(name, secret, key string) *v1alpha1.LinkerdCAClusterIssuer {
	return &v1alpha1.LinkerdCAClusterIssuer{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.IssuerSpec{TrustAnchorSecretName: secret, ControlPlaneNamespace: nsKMS,
			KMS: &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: key}}}}
}

// kmsKey makes an asymmetric signing key in local-kms under alias, and
// returns its ID.
func kmsKey(t *testing.T, kc *kms.Client, spec kmstypes.KeySpec, alias string) string {
	t.Helper()
	out, err := kc.CreateKey(ctx, &kms.CreateKeyInput{KeySpec: spec, KeyUsage: kmstypes.KeyUsageTypeSignVerify})
	if err != nil {
		t.Fatalf("creating a %s key in local-kms: %v", spec, err)
	}
	if _, err := kc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		t.Fatalf("alias %s: %v", alias, err)
	}
	return *out.KeyMetadata.KeyId
}

func trustRootsFor(ns string, bundle []byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: v1alpha1.DefaultTrustRootsConfigMap},
		Data: map[string]string{v1alpha1.DefaultTrustRootsKey: string(bundle)}}
}

// assertNoSecretHoldsKeyOf reads every Secret in the cluster, and every
// PEM private key in each, and fails if one is the key of public.
func assertNoSecretHoldsKeyOf(t *testing.T, public any) {
	t.Helper()
	var secrets corev1.SecretList
	if err := cl.List(ctx, &secrets); err != nil {
		t.Fatal(err)
	}
	keysSeen := 0
	for _, s := range secrets.Items {
		for field, data := range s.Data {
			for rest := data; ; {
				var block *pem.Block
				if block, rest = pem.Decode(rest); block == nil {
					break
				}
				if !strings.Contains(block.Type, "PRIVATE KEY") {
					continue
				}
				key, err := pki.DecodePrivateKeyBytes(pem.EncodeToMemory(block))
				if err != nil {
					continue
				}
				keysSeen++
				if k, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool }); ok && k.Equal(public) {
					t.Errorf("Secret %s/%s key %s holds the root's private key", s.Namespace, s.Name, field)
				}
			}
		}
	}
	t.Logf("no Secret holds the root's key: %d private keys in %d Secrets compared", keysSeen, len(secrets.Items))
}

func mapKeys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// useLocalKMS points the CLI, in this process, at local-kms through the
// SDK's own settings, as the issuer is, and is a client of it.
func useLocalKMS(t *testing.T) *kms.Client {
	t.Helper()
	for _, kv := range cp.KMSEnv() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return cp.KMSClient()
}
