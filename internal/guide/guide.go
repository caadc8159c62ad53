// Package guide holds the objects of Linkerd's current "automatically
// rotating control plane TLS credentials" guide (2.17 and later), with this
// issuer in place of cert-manager's CA issuer: what the demo applies and the
// e2e suite replays, as a user would write them.
package guide

import (
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// The guide's names.
const (
	// RootIssuer is the SelfSigned ClusterIssuer that makes the root.
	RootIssuer = "linkerd-trust-root-issuer"
	// TrustAnchor is the root's Certificate and Secret, in TrustNamespace.
	TrustAnchor = "linkerd-trust-anchor"
	// TrustNamespace keeps the root away from the control plane's namespace,
	// which `linkerd uninstall` deletes; trust-manager reads Bundle sources
	// from it.
	TrustNamespace = "cert-manager"
	// IdentityIssuer is the Certificate and Secret Linkerd's identity
	// service reads, and the name of the LinkerdCAClusterIssuer signing it.
	IdentityIssuer = "linkerd-identity-issuer"
	// TrustRoots is the Bundle and the ConfigMap it writes (key
	// ca-bundle.crt) into control plane namespaces.
	TrustRoots = "linkerd-identity-trust-roots"
	// TrustedRoots is the ConfigMap, in TrustNamespace, in which the
	// controller keeps the roots that must stay trusted: the Bundle's only
	// source, so an overwrite of the anchor Secret never drops a root.
	TrustedRoots = v1alpha1.DefaultTrustedRootsConfigMap
	// ControlPlaneLabel marks the namespaces the Bundle writes into.
	ControlPlaneLabel = "linkerd.io/is-control-plane"
)

// SelfSignedRootIssuer is the ClusterIssuer that signs the root with its
// own key.
func SelfSignedRootIssuer() *cmapi.ClusterIssuer {
	return &cmapi.ClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: RootIssuer},
		Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{SelfSigned: &cmapi.SelfSignedIssuer{}}},
	}
}

// TrustAnchorCertificate is the root: ECDSA P-256, a CA, ten years, named
// root.linkerd.cluster.local (distinct from the identity issuer's name).
func TrustAnchorCertificate(name string) *cmapi.Certificate {
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: TrustNamespace, Name: name},
		Spec: cmapi.CertificateSpec{
			SecretName: name,
			CommonName: "root.linkerd.cluster.local",
			IsCA:       true,
			Duration:   &metav1.Duration{Duration: 87600 * time.Hour},
			PrivateKey: &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, Size: 256, RotationPolicy: cmapi.RotationPolicyAlways},
			IssuerRef:  cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "ClusterIssuer", Name: RootIssuer},
		},
	}
}

// ClusterIssuer is the LinkerdCAClusterIssuer reading the root from the
// controller's cluster resource namespace, signing for controlPlane only,
// and rotating it safely: it keeps the trusted set in TrustedRoots.
func ClusterIssuer(anchorSecret, controlPlane string) *v1alpha1.LinkerdCAClusterIssuer {
	return &v1alpha1.LinkerdCAClusterIssuer{
		ObjectMeta: metav1.ObjectMeta{Name: IdentityIssuer},
		Spec: v1alpha1.IssuerSpec{TrustAnchorSecretName: anchorSecret, ControlPlaneNamespace: controlPlane,
			Rotation: &v1alpha1.RotationSpec{TrustedRootsConfigMapName: TrustedRoots}},
	}
}

// Bundle is trust-manager's Bundle: the trusted set the controller keeps
// (ConfigMap TrustedRoots), into ConfigMap TrustRoots, key ca-bundle.crt,
// of every namespace labelled as a Linkerd control plane. Its source is the
// trusted set alone: were it the anchor Secret, renewing the root in place
// would drop the old root from the bundle at once.
func Bundle() *unstructured.Unstructured {
	return bundle(map[string]any{"configMap": map[string]any{"name": TrustedRoots, "key": v1alpha1.DefaultTrustRootsKey}})
}

// BundleOfSecrets is the Bundle of the manual procedure (docs/rotation.md,
// appendix): the ca.crt of each anchor Secret named, for an issuer without
// spec.rotation.
func BundleOfSecrets(anchorSecrets ...string) *unstructured.Unstructured {
	var sources []any
	for _, s := range anchorSecrets {
		sources = append(sources, map[string]any{"secret": map[string]any{"name": s, "key": "ca.crt"}})
	}
	return bundle(sources...)
}

func bundle(sources ...any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "trust.cert-manager.io/v1alpha1",
		"kind":       "Bundle",
		"metadata":   map[string]any{"name": TrustRoots},
		"spec": map[string]any{
			"sources": sources,
			"target": map[string]any{
				"configMap":         map[string]any{"key": v1alpha1.DefaultTrustRootsKey},
				"namespaceSelector": map[string]any{"matchLabels": map[string]any{ControlPlaneLabel: "true"}},
			},
		},
	}}
}

// IdentityIssuerCertificate is linkerd-identity-issuer in a control plane
// namespace: 48h, renewed 25h before expiry, a new key each time.
func IdentityIssuerCertificate(controlPlane, name string) *cmapi.Certificate {
	cn := "identity." + controlPlane + "." + v1alpha1.DefaultTrustDomain
	return &cmapi.Certificate{
		ObjectMeta: metav1.ObjectMeta{Namespace: controlPlane, Name: name},
		Spec: cmapi.CertificateSpec{
			SecretName:  name,
			Duration:    &metav1.Duration{Duration: 48 * time.Hour},
			RenewBefore: &metav1.Duration{Duration: 25 * time.Hour},
			CommonName:  cn,
			DNSNames:    []string{cn},
			IsCA:        true,
			PrivateKey:  &cmapi.CertificatePrivateKey{Algorithm: cmapi.ECDSAKeyAlgorithm, RotationPolicy: cmapi.RotationPolicyAlways},
			Usages:      []cmapi.KeyUsage{cmapi.UsageCertSign, cmapi.UsageCRLSign, cmapi.UsageServerAuth, cmapi.UsageClientAuth},
			IssuerRef:   cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.ClusterIssuerKind, Name: IdentityIssuer},
		},
	}
}
