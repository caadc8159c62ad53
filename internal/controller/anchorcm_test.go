package controller

import (
	"context"
	"crypto"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

// heldKey stands in for a KMS: it hands out a key that never leaves it,
// and counts how often it was opened.
type heldKey struct {
	key   crypto.Signer
	opens int
}

func (h *heldKey) Open(context.Context, *v1alpha1.KMSKey) (crypto.Signer, error) {
	h.opens++
	return h.key, nil
}

func kmsConfigMapIssuer() *v1alpha1.LinkerdCAClusterIssuer {
	iss := clusterIssuer()
	iss.Spec.TrustAnchorSecretName = ""
	iss.Spec.TrustAnchorConfigMapName = "linkerd-trust-anchor-cert"
	iss.Spec.KMS = &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/linkerd-root"}}
	return iss
}

func anchorConfigMap(a *testpki.Anchor) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-ca-issuer", Name: "linkerd-trust-anchor-cert", UID: "cm-1", ResourceVersion: "1"},
		Data:       map[string]string{"ca.crt": string(a.CertPEM)},
	}
}

// TestConfigMapAnchor: an issuer whose anchor's certificate is in a
// ConfigMap and whose key is in a KMS is Ready, signs under the anchor with
// the KMS's key, opens the key once per ConfigMap revision, and is refused
// with the reason when the ConfigMap is missing or holds another root.
func TestConfigMapAnchor(t *testing.T) {
	a, other := newAnchor(t, now.Add(365*24*time.Hour)), newAnchor(t, now.Add(365*24*time.Hour))
	iss := kmsConfigMapIssuer()
	cm := anchorConfigMap(a)
	s, _ := newSigner(t, cm, iss)
	keys := &heldKey{key: a.Key}
	s.Keys = keys
	if err := s.Check(context.Background(), iss); err != nil {
		t.Fatalf("Check: %v", err)
	}
	crt := testpki.SeedCertificate("linkerd")
	bundle, err := s.Sign(context.Background(), certificateRequest(t, crt), iss)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	if err := decodeOne(t, bundle.ChainPEM).CheckSignatureFrom(a.Certificate); err != nil {
		t.Fatalf("not signed under the ConfigMap's anchor: %v", err)
	}
	if keys.opens != 1 {
		t.Errorf("the KMS key was opened %d times for one ConfigMap revision, want 1", keys.opens)
	}

	// A new revision is read, and the key opened, again.
	configMapEvents := evicting(s.parsed.configMapChanged, handler.Funcs{})
	newer := cm.DeepCopy()
	newer.ResourceVersion = "2"
	configMapEvents.Update(context.Background(), event.UpdateEvent{ObjectOld: cm, ObjectNew: newer}, nil)
	if s.parsed.anchors.Len() != 0 {
		t.Error("a ConfigMap's new revision left the old anchor in memory")
	}

	for _, tc := range []struct {
		name string
		cm   *corev1.ConfigMap
		want string
	}{
		{"missing", nil, "trust anchor ConfigMap linkerd-ca-issuer/linkerd-trust-anchor-cert not found; create it with the root's certificate in ca.crt (linkerd-ca trust-anchor create --kms aws:alias/linkerd-root --configmap)"},
		{"another root's certificate", anchorConfigMap(other), "trust anchor ConfigMap linkerd-ca-issuer/linkerd-trust-anchor-cert: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := newSigner(t, iss)
			if tc.cm != nil {
				s, _ = newSigner(t, tc.cm, iss)
			}
			s.Keys = &heldKey{key: a.Key}
			err := s.Check(context.Background(), iss)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check: %v\nwant %q", err, tc.want)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestConfigMapAnchorKey: a ConfigMap anchor is cached under the
// ConfigMap's name, where its Secret would be, and an issuer naming a
// Secret keeps the signing Secret's.
func TestConfigMapAnchorKey(t *testing.T) {
	s, _ := newSigner(t)
	if got, want := s.anchorKey(kmsConfigMapIssuer()), (types.NamespacedName{Namespace: "linkerd-ca-issuer", Name: "linkerd-trust-anchor-cert"}); got != want {
		t.Errorf("ConfigMap anchor key %s, want %s", got, want)
	}
	if got, want := s.anchorKey(clusterIssuer()), (types.NamespacedName{Namespace: "linkerd-ca-issuer", Name: "linkerd-trust-anchor"}); got != want {
		t.Errorf("Secret anchor key %s, want %s", got, want)
	}
}

// TestNamespacedIssuerCannotUseAKMSKey: a tenant who may create issuers in
// a watched namespace names the platform's KMS key beside a copy of the
// root's public certificate, the trust gate off. It is refused at Check and
// at Sign, nothing is signed, and the key is never opened.
func TestNamespacedIssuerCannotUseAKMSKey(t *testing.T) {
	a := newAnchor(t, now.Add(365*24*time.Hour))
	iss := issuer("team-a")
	iss.Spec.TrustAnchorSecretName = "copied-root"
	iss.Spec.KMS = &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/linkerd-root"}}
	iss.Spec.TrustRoots.Check = ptr.To(false)
	copied := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "team-a", Name: "copied-root", UID: "s-1", ResourceVersion: "1"},
		Data: map[string][]byte{corev1.TLSCertKey: a.CertPEM}}
	s, _ := newSigner(t, copied, iss)
	s.WatchNamespaces = append(s.WatchNamespaces, "team-a")
	keys := &heldKey{key: a.Key}
	s.Keys = keys
	want := "LinkerdCAIssuer team-a/linkerd names a KMS key (spec.kms aws:alias/linkerd-root), and KMS keys sign only for LinkerdCAClusterIssuers"
	if err := s.Check(context.Background(), iss); err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Check: %v\nwant %s…", err, want)
	}
	bundle, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("team-a")), iss)
	if err == nil || len(bundle.ChainPEM) != 0 || !strings.Contains(err.Error(), want) {
		t.Errorf("Sign: %d bytes signed, error %v; want nothing signed and %s…", len(bundle.ChainPEM), err, want)
	}
	if keys.opens != 0 {
		t.Errorf("the platform's key was opened %d times for a tenant's issuer", keys.opens)
	}
}

// keysByID stands in for a KMS holding several keys.
type keysByID map[string]crypto.Signer

func (k keysByID) Open(_ context.Context, ref *v1alpha1.KMSKey) (crypto.Signer, error) {
	if key, ok := k[ref.AWS.KeyID]; ok {
		return key, nil
	}
	return nil, errors.New("NotFoundException: no such key")
}

// TestKMSRotationSignsThePreviousCertificateWithItsOwnKey: the spec already
// names the next Secret and the next KMS key; while the rotation
// propagates, the previous certificate is signed with the previous key.
func TestKMSRotationSignsThePreviousCertificateWithItsOwnKey(t *testing.T) {
	prev, next := newAnchor(t, now.Add(365*24*time.Hour)), newAnchor(t, now.Add(365*24*time.Hour))
	certOnly := func(name, uid string, a *testpki.Anchor) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "linkerd-ca-issuer", Name: name, UID: types.UID(uid), ResourceVersion: "1"},
			Type: corev1.SecretTypeOpaque, Data: map[string][]byte{corev1.TLSCertKey: a.CertPEM}}
	}
	iss := clusterIssuer()
	iss.Spec.TrustAnchorSecretName = "root-2"
	iss.Spec.KMS = &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/root-2"}}
	iss.Spec.Rotation = &v1alpha1.RotationSpec{}
	iss.Status.Rotation = &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: signer.Fingerprint(prev.Certificate),
		SigningSecretName: "root-1", SigningKMSKey: &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/root-1"}}, NextRoot: signer.Fingerprint(next.Certificate)}
	s, _ := newSigner(t, certOnly("root-1", "s-1", prev), certOnly("root-2", "s-2", next), iss)
	s.Rotation = true
	s.Keys = keysByID{"alias/root-1": prev.Key, "alias/root-2": next.Key}
	bundle, err := s.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), iss)
	if err != nil {
		t.Fatalf("Sign while propagating: %v", err)
	}
	if err := decodeOne(t, bundle.ChainPEM).CheckSignatureFrom(prev.Certificate); err != nil {
		t.Fatalf("not signed under the previous root with its key: %v", err)
	}
	// Without the recorded key the spec's would be paired with the
	// previous certificate: refused, never signed.
	iss.Status.Rotation.SigningKMSKey = nil
	s2, _ := newSigner(t, certOnly("root-1", "s-1", prev), certOnly("root-2", "s-2", next), iss)
	s2.Rotation, s2.Keys = true, keysByID{"alias/root-1": prev.Key, "alias/root-2": next.Key}
	if _, err := s2.Sign(context.Background(), certificateRequest(t, testpki.SeedCertificate("linkerd")), iss); err == nil || !strings.Contains(err.Error(), "not the key") {
		t.Errorf("the previous certificate with the spec's key: %v; want a refusal", err)
	}
}
