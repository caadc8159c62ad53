package cli

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// keyInKMS opens one key for any reference, and records which.
type keyInKMS struct {
	key    crypto.Signer
	opened *v1alpha1.KMSKey
}

func (k *keyInKMS) Open(_ context.Context, ref *v1alpha1.KMSKey) (crypto.Signer, error) {
	k.opened = ref
	return k.key, nil
}

func TestTrustAnchorCreateWithKMS(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kms := &keyInKMS{key: key}
	var out, errOut bytes.Buffer
	g := &globals{stdout: &out, stderr: &errOut, now: time.Now, keys: kms}
	if code := execute(context.Background(), g, []string{"trust-anchor", "create", "--kms", "aws:alias/root", "--dry-run", "-o", "yaml"}); code != 0 {
		t.Fatalf("exit %d: %s", code, &errOut)
	}
	if kms.opened == nil || kms.opened.AWS == nil || kms.opened.AWS.KeyID != "alias/root" {
		t.Fatalf("opened %+v; want aws key alias/root", kms.opened)
	}
	if strings.Contains(out.String(), "tls.key") || !strings.Contains(out.String(), "type: Opaque") {
		t.Errorf("the Secret is not the certificate alone in an Opaque Secret:\n%s", &out)
	}
	if !strings.Contains(errOut.String(), "spec.kms.aws.keyID: alias/root") {
		t.Errorf("no hint to name the key on the issuer:\n%s", &errOut)
	}
	// The certificate is the key's, and an anchor Linkerd accepts.
	var certPEM []byte
	for _, line := range strings.Split(out.String(), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "tls.crt: "); ok {
			certPEM = decodeBase64(t, v)
		}
	}
	if block, _ := pem.Decode(certPEM); block == nil {
		t.Fatalf("no certificate in the Secret:\n%s", &out)
	}
	if _, err := signer.AnchorWithKey(certPEM, key, "aws:alias/root", time.Now()); err != nil {
		t.Errorf("the root made with the KMS key is no anchor for it: %v", err)
	}
}

// TestTrustAnchorCreateWithKMSInAConfigMap: --configmap keeps the KMS
// root's certificate in a ConfigMap's ca.crt, and says how to name it; it
// refuses to run without a KMS key, or with --out-dir.
func TestTrustAnchorCreateWithKMSInAConfigMap(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	g := &globals{stdout: &out, stderr: &errOut, now: time.Now, keys: &keyInKMS{key: key}}
	if code := execute(context.Background(), g, []string{"trust-anchor", "create", "--kms", "aws:alias/root", "--configmap", "--name", "root-cert", "--dry-run", "-o", "json"}); code != 0 {
		t.Fatalf("exit %d: %s", code, &errOut)
	}
	var cm corev1.ConfigMap
	if err := json.Unmarshal(out.Bytes(), &cm); err != nil {
		t.Fatalf("%v:\n%s", err, &out)
	}
	if cm.Kind != "ConfigMap" || cm.Name != "root-cert" || len(cm.Data) != 1 {
		t.Fatalf("want a ConfigMap root-cert with ca.crt alone, got %s %s %v", cm.Kind, cm.Name, cm.Data)
	}
	if _, err := signer.AnchorWithKey([]byte(cm.Data["ca.crt"]), key, "aws:alias/root", time.Now()); err != nil {
		t.Errorf("the ConfigMap's certificate is no anchor for the KMS key: %v", err)
	}
	if !strings.Contains(errOut.String(), "spec.trustAnchorConfigMapName: root-cert and spec.kms.aws.keyID: alias/root") {
		t.Errorf("no hint to name the ConfigMap and the key on the issuer:\n%s", &errOut)
	}
	for args, want := range map[string]string{
		"--configmap --dry-run":                             "--configmap stores a certificate without its key, so the key must be in a KMS",
		"--configmap --kms aws:alias/root --out-dir=/tmp/x": "--configmap stores the certificate in a ConfigMap; --out-dir writes files: use one",
	} {
		code, _, errOut := run(t, append([]string{"trust-anchor", "create"}, strings.Fields(args)...)...)
		if code == 0 || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d: %s\nwant %q", args, code, errOut, want)
		}
	}
}

func TestTrustAnchorCreateRefusesAnotherProvider(t *testing.T) {
	code, _, errOut := run(t, "trust-anchor", "create", "--kms", "gcp:projects/p/keys/k", "--dry-run")
	if code == 0 || !strings.Contains(errOut, "give aws:<key ID, key ARN or alias/name>") {
		t.Errorf("exit %d: %s", code, errOut)
	}
}

func decodeBase64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
