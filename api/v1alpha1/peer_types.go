package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// ConditionLinkedClustersReachable says, on an issuer that names peers,
// whether every linked cluster could be read: False names those that could
// not, which block every switch and retire (never the signing).
const ConditionLinkedClustersReachable = "LinkedClustersReachable"

// RotationPeer is another cluster's issuer, linked to this one for
// Linkerd multicluster: each keeps the other's roots trusted, and neither
// switches to a root until the other has propagated it, nor retires one
// until the other has drained it.
// +kubebuilder:validation:XValidation:rule="!has(self.issuerKind) || self.issuerKind != 'LinkerdCAIssuer' || (has(self.issuerNamespace) && size(self.issuerNamespace) > 0)",message="issuerNamespace is required for a LinkerdCAIssuer peer: name the namespace of the linked cluster's issuer"
// +kubebuilder:validation:XValidation:rule="!has(self.issuerNamespace) || size(self.issuerNamespace) == 0 || self.issuerKind == 'LinkerdCAIssuer'",message="issuerNamespace is for a LinkerdCAIssuer peer only: a LinkerdCAClusterIssuer has no namespace; remove it, or set issuerKind: LinkerdCAIssuer"
type RotationPeer struct {
	// Name names the peer (its cluster) in status, events and
	// `linkerd-ca check`.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`
	Name string `json:"name"`
	// KubeconfigSecretName is the Secret, in the cluster resource namespace
	// (cert-manager's), whose key `kubeconfig` reaches the peer's API server
	// with credentials that can only read (`linkerd-ca multicluster link`
	// prints it).
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	KubeconfigSecretName string `json:"kubeconfigSecretName"`
	// IssuerKind is the peer issuer's kind.
	// +kubebuilder:validation:Enum=LinkerdCAIssuer;LinkerdCAClusterIssuer
	// +kubebuilder:default=LinkerdCAClusterIssuer
	// +optional
	IssuerKind string `json:"issuerKind,omitempty"`
	// IssuerName is the peer issuer's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	IssuerName string `json:"issuerName"`
	// IssuerNamespace is a LinkerdCAIssuer peer's namespace.
	// +kubebuilder:validation:MaxLength=63
	// +optional
	IssuerNamespace string `json:"issuerNamespace,omitempty"`
}

// PeerStatus is what the controller last read of a linked issuer.
type PeerStatus struct {
	// Name is the peer's, as spec.rotation.peers names it.
	Name string `json:"name"`
	// Reachable says the last read of the peer succeeded.
	Reachable bool `json:"reachable"`
	// Error is why the last read failed: nothing switches or retires a
	// root until the peer is read again; signing goes on.
	// +optional
	Error string `json:"error,omitempty"`
	// Roots are the roots the peer keeps for itself (it signs under,
	// propagates or drains them), which this cluster trusts too. Kept from
	// the last read while the peer cannot be read.
	// +optional
	Roots []string `json:"roots,omitempty"`
	// Propagated are the roots every meshed pod of the peer holds, as it
	// reports them.
	// +optional
	Propagated []string `json:"propagated,omitempty"`
	// LastRead is when the peer was last read; while nothing read of it
	// changes, it moves every 5 minutes, not at every read.
	// +optional
	LastRead *metav1.Time `json:"lastRead,omitempty"`
}

// RootPropagation is how far one trusted root has reached this cluster's
// pods: what linked peers read before they switch to it.
type RootPropagation struct {
	// Fingerprint is the root's SHA-256 fingerprint.
	Fingerprint string `json:"fingerprint"`
	// BundleGainedAt is when Linkerd's trust roots were first seen to hold
	// it: a proxy reading them holds it only if started after.
	// +optional
	BundleGainedAt *metav1.Time `json:"bundleGainedAt,omitempty"`
	// PodsBehind of PodsTotal meshed pods do not hold it.
	PodsBehind int32 `json:"podsBehind"`
	PodsTotal  int32 `json:"podsTotal"`
	// Propagated: Linkerd's trust roots hold it and no pod lacks it.
	Propagated bool `json:"propagated"`
}
