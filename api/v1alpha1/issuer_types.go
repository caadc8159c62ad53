package v1alpha1

import (
	"time"

	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Defaults of the spec, mirrored in the CRD schema by the markers below.
const (
	DefaultTrustDomain           = "cluster.local"
	DefaultControlPlaneNamespace = "linkerd"
	DefaultMinDuration           = time.Hour
	DefaultMaxDuration           = 8760 * time.Hour
)

// IssuerSpec is shared by LinkerdCAIssuer and LinkerdCAClusterIssuer: where
// the trust anchor lives and which Linkerd identity issuer it may sign.
//
// +kubebuilder:validation:XValidation:rule="duration(self.minDuration) <= duration(self.maxDuration)",message="minDuration must not be longer than maxDuration"
type IssuerSpec struct {
	// TrustAnchorSecretName names a Secret of type kubernetes.io/tls holding
	// the trust anchor (root CA) in tls.crt and its private key in tls.key.
	// A LinkerdCAIssuer reads it from its own namespace; a
	// LinkerdCAClusterIssuer from the controller's cluster resource namespace.
	// The Secret's namespace must be one the controller watches.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	TrustAnchorSecretName string `json:"trustAnchorSecretName"`

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
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:categories=cert-manager;linkerd
// +kubebuilder:printcolumn:name="Ready",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].status"
// +kubebuilder:printcolumn:name="Reason",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].reason"
// +kubebuilder:printcolumn:name="Message",type="string",JSONPath=".status.conditions[?(@.type==\"Ready\")].message"
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// LinkerdCAIssuer signs Linkerd identity issuer certificates from a trust
// anchor Secret in its own namespace, for Certificates in that namespace.
type LinkerdCAIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec names the trust anchor and the Linkerd control plane it signs for.
	Spec IssuerSpec `json:"spec"`
	// Status reports whether the trust anchor is usable (condition Ready).
	Status issuerapi.IssuerStatus `json:"status,omitempty"`
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
// +kubebuilder:printcolumn:name="Age",type="date",JSONPath=".metadata.creationTimestamp"

// LinkerdCAClusterIssuer signs Linkerd identity issuer certificates for
// Certificates in any namespace, from a trust anchor Secret in the
// controller's cluster resource namespace.
type LinkerdCAClusterIssuer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec names the trust anchor and the Linkerd control plane it signs for.
	Spec IssuerSpec `json:"spec"`
	// Status reports whether the trust anchor is usable (condition Ready).
	Status issuerapi.IssuerStatus `json:"status,omitempty"`
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

var (
	_ issuerapi.Issuer = &LinkerdCAIssuer{}
	_ issuerapi.Issuer = &LinkerdCAClusterIssuer{}
)

func init() {
	SchemeBuilder.Register(&LinkerdCAIssuer{}, &LinkerdCAIssuerList{}, &LinkerdCAClusterIssuer{}, &LinkerdCAClusterIssuerList{})
}
