package v1alpha1

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of the spec, mirrored in the CRD schema by the markers below.
const (
	DefaultTrustDomain           = "cluster.local"
	DefaultControlPlaneNamespace = "linkerd"
	DefaultMinDuration           = time.Hour
	DefaultMaxDuration           = 8760 * time.Hour
	DefaultTrustRootsConfigMap   = "linkerd-identity-trust-roots"
	DefaultTrustRootsKey         = "ca-bundle.crt"
	// DefaultTrustedRootsConfigMap is where spec.rotation keeps the
	// trusted set, beside the anchor Secret.
	DefaultTrustedRootsConfigMap = "linkerd-trusted-roots"
)

// IssuerSpec is shared by LinkerdCAIssuer and LinkerdCAClusterIssuer: where
// the trust anchor lives and which Linkerd identity issuer it may sign.
//
// +kubebuilder:validation:XValidation:rule="duration(self.minDuration) <= duration(self.maxDuration)",message="minDuration must not be longer than maxDuration"
// +kubebuilder:validation:XValidation:rule="has(self.trustAnchorSecretName) != has(self.trustAnchorConfigMapName)",message="name the trust anchor with exactly one of trustAnchorSecretName and trustAnchorConfigMapName"
// +kubebuilder:validation:XValidation:rule="!has(self.trustAnchorConfigMapName) || has(self.kms)",message="trustAnchorConfigMapName needs spec.kms: a ConfigMap holds the anchor's certificate only, so its key must be in a KMS; for a key in the cluster use trustAnchorSecretName"
// +kubebuilder:validation:XValidation:rule="!has(self.trustAnchorConfigMapName) || !has(self.rotation)",message="spec.rotation needs the trust anchor in a Secret (trustAnchorSecretName, which with spec.kms holds the certificate only)"
type IssuerSpec struct {
	// TrustAnchorSecretName names a Secret of type kubernetes.io/tls holding
	// the trust anchor (root CA) in tls.crt and its private key in tls.key
	// (with spec.kms, the certificate alone).
	// A LinkerdCAIssuer reads it from its own namespace; a
	// LinkerdCAClusterIssuer from the controller's cluster resource namespace.
	// The Secret's namespace must be one the controller watches. Exactly one
	// of trustAnchorSecretName and trustAnchorConfigMapName is set.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	TrustAnchorSecretName string `json:"trustAnchorSecretName,omitempty"`
	// TrustAnchorConfigMapName, with spec.kms, names a ConfigMap holding the
	// trust anchor's certificate in ca.crt (or tls.crt), where a
	// LinkerdCAIssuer or LinkerdCAClusterIssuer would read its Secret: with
	// the key in a KMS nothing about the anchor is secret.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	TrustAnchorConfigMapName string `json:"trustAnchorConfigMapName,omitempty"`

	// KMS, when set, keeps the trust anchor's private key in a KMS: the
	// trust anchor Secret (any type) then holds the certificate alone, in
	// tls.crt or ca.crt, and must hold no tls.key. Each identity issuer is
	// signed with one call to the KMS. See docs/kms.md.
	// +optional
	KMS *KMSKey `json:"kms,omitempty"`

	// TrustDomain is Linkerd's trust domain (linkerd install
	// --identity-trust-domain). The issued certificate's common name is
	// identity.<controlPlaneNamespace>.<trustDomain>.
	// +kubebuilder:default=cluster.local
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=200
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	TrustDomain string `json:"trustDomain,omitempty"`

	// ControlPlaneNamespace is the namespace Linkerd's control plane runs in.
	// +kubebuilder:default=linkerd
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	// +optional
	ControlPlaneNamespace string `json:"controlPlaneNamespace,omitempty"`

	// MinDuration is the shortest lifetime a request may ask for (the
	// Certificate's spec.duration), as a Go duration such as 1h.
	// +kubebuilder:default="1h"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be a positive duration such as 1h"
	// +optional
	MinDuration *metav1.Duration `json:"minDuration,omitempty"`

	// MaxDuration is the longest lifetime a request may ask for, as a Go
	// duration such as 8760h. The issued certificate never outlives the trust
	// anchor, whatever is asked.
	// +kubebuilder:default="8760h"
	// +kubebuilder:validation:XValidation:rule="duration(self) > duration('0s')",message="must be a positive duration such as 8760h"
	// +optional
	MaxDuration *metav1.Duration `json:"maxDuration,omitempty"`

	// TrustRoots is the ConfigMap holding the roots Linkerd's identity
	// service trusts. While it exists, the issuer signs only if its trust
	// anchor is among them, and ca.crt carries the whole bundle.
	// +kubebuilder:default={}
	// +optional
	TrustRoots TrustRootsReference `json:"trustRoots,omitempty"`

	// Rotation, when set, has the controller rotate the trust anchor safely:
	// it keeps the roots Linkerd must go on trusting in a ConfigMap it owns
	// (the trust bundle's source), signs under a new root only once every
	// meshed pod holds it, and retires the old root only once no leaf under
	// it can be alive. See docs/rotation.md.
	// +optional
	Rotation *RotationSpec `json:"rotation,omitempty"`
}

// RotationSpec names the trusted set the controller keeps for an issuer.
type RotationSpec struct {
	// TrustedRootsConfigMapName is the ConfigMap, beside the trust anchor
	// Secret, in which the controller keeps the roots that must stay trusted
	// (key ca-bundle.crt, certificates only). trust-manager's Bundle for
	// linkerd-identity-trust-roots takes it as its source.
	// +kubebuilder:default=linkerd-trusted-roots
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	// +optional
	TrustedRootsConfigMapName string `json:"trustedRootsConfigMapName,omitempty"`

	// Peers are other clusters' issuers linked to this one (Linkerd
	// multicluster): their roots are trusted here, and no root is switched
	// to until every peer has propagated it, nor retired until every peer
	// has drained it. See docs/multicluster.md.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Peers []RotationPeer `json:"peers,omitempty"`
}

// TrustRootsReference names the ConfigMap Linkerd reads its trust roots from:
// in the issuer's namespace for a LinkerdCAIssuer, in controlPlaneNamespace
// for a LinkerdCAClusterIssuer.
type TrustRootsReference struct {
	// Check turns the trust roots check on or off. Off, the issuer signs
	// with any usable anchor and ca.crt is the anchor alone.
	// +kubebuilder:default=true
	// +optional
	Check *bool `json:"check,omitempty"`

	// ConfigMapName is the ConfigMap's name.
	// +kubebuilder:default=linkerd-identity-trust-roots
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +optional
	ConfigMapName string `json:"configMapName,omitempty"`

	// Key is the ConfigMap key holding the PEM bundle.
	// +kubebuilder:default=ca-bundle.crt
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[-._a-zA-Z0-9]+$`
	// +optional
	Key string `json:"key,omitempty"`
}

// IssuerStatus is issuer-lib's Ready condition and what the controller last
// saw of the trust anchor.
type IssuerStatus struct {
	// Conditions: Ready says whether the issuer can sign, and why not.
	// +listType=map
	// +listMapKey=type
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`

	// TrustAnchor describes the anchor the issuer last checked successfully.
	// +optional
	TrustAnchor *TrustAnchorStatus `json:"trustAnchor,omitempty"`

	// Rotation is where a trust anchor rotation stands, with spec.rotation.
	// +optional
	Rotation *RotationStatus `json:"rotation,omitempty"`
}

// TrustAnchorStatus identifies a trust anchor and says when it expires.
type TrustAnchorStatus struct {
	// Subject is the anchor certificate's subject.
	Subject string `json:"subject"`
	// NotAfter is when the anchor expires; nothing it signs outlives it.
	NotAfter metav1.Time `json:"notAfter"`
	// SHA256Fingerprint is the SHA-256 of the anchor certificate (DER), in
	// hex, as `openssl x509 -fingerprint -sha256` prints it.
	SHA256Fingerprint string `json:"sha256Fingerprint"`
	// ExpiringSoon is true when the anchor expires within the controller's
	// --anchor-expiry-warning (60 days by default, linkerd check's limit).
	ExpiringSoon bool `json:"expiringSoon"`
	// TrustedByLinkerd says whether the anchor is in Linkerd's trust roots
	// ConfigMap: True, False, or Unknown when there is no such ConfigMap
	// (Linkerd not installed yet) or the check is off.
	// +kubebuilder:validation:Enum=True;False;Unknown
	TrustedByLinkerd metav1.ConditionStatus `json:"trustedByLinkerd"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cert-manager;linkerd
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Reason",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
// +kubebuilder:printcolumn:name="Message",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].message"
// +kubebuilder:printcolumn:name="Anchor Expires",type="string",JSONPath=".status.trustAnchor.notAfter",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.kms)",message="spec.kms is allowed only on a LinkerdCAClusterIssuer: a KMS key is the controller's to use, and a namespaced issuer could name the platform's key beside a copy of its public certificate; use a LinkerdCAClusterIssuer, or keep this namespace's root in a Secret (spec.trustAnchorSecretName)"

// LinkerdCAIssuer signs Linkerd identity issuer certificates from a trust
// anchor Secret in its own namespace, for Certificates in that namespace.
type LinkerdCAIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec names the trust anchor and the Linkerd control plane it signs for.
	Spec IssuerSpec `json:"spec"`
	// Status reports whether the trust anchor is usable (condition Ready).
	Status IssuerStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// LinkerdCAIssuerList is a list of LinkerdCAIssuer.
type LinkerdCAIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LinkerdCAIssuer `json:"items"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,categories=cert-manager;linkerd
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Reason",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
// +kubebuilder:printcolumn:name="Message",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].message"
// +kubebuilder:printcolumn:name="Anchor Expires",type="string",JSONPath=".status.trustAnchor.notAfter",priority=1
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// LinkerdCAClusterIssuer signs Linkerd identity issuer certificates for
// Certificates in its controlPlaneNamespace only, from a trust anchor Secret
// in the controller's cluster resource namespace: the root key stays out of
// the namespace Linkerd's uninstall deletes, and no other namespace can get a
// CA under the mesh root from it.
type LinkerdCAClusterIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec names the trust anchor and the Linkerd control plane it signs for.
	Spec IssuerSpec `json:"spec"`
	// Status reports whether the trust anchor is usable (condition Ready).
	Status IssuerStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// LinkerdCAClusterIssuerList is a list of LinkerdCAClusterIssuer.
type LinkerdCAClusterIssuerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []LinkerdCAClusterIssuer `json:"items"`
}

// GetConditions is part of issuer-lib's Issuer interface.
func (i *LinkerdCAIssuer) GetConditions() []metav1.Condition { return i.Status.Conditions }

// GetIssuerTypeIdentifier is the prefix of signerName for Kubernetes CSRs.
func (i *LinkerdCAIssuer) GetIssuerTypeIdentifier() string { return "linkerdcaissuers.linkerdca.io" }

// GetConditions is part of issuer-lib's Issuer interface.
func (i *LinkerdCAClusterIssuer) GetConditions() []metav1.Condition { return i.Status.Conditions }

// GetIssuerTypeIdentifier is the prefix of signerName for Kubernetes CSRs:
// linkerdcaclusterissuers.linkerdca.io/<name>.
func (i *LinkerdCAClusterIssuer) GetIssuerTypeIdentifier() string {
	return "linkerdcaclusterissuers.linkerdca.io"
}
