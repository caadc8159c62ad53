package v1alpha1

import metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

// RotationPhase is where a trust anchor rotation stands.
// +kubebuilder:validation:Enum=Stable;Propagating;Held;Switching;Draining
type RotationPhase string

// The phases of a rotation, in order. A rotation starts when the anchor
// Secret holds a root other than the one the issuer signs under.
const (
	// RotationStable: one root, trusted and signed under; nothing to do.
	RotationStable RotationPhase = "Stable"
	// RotationPropagating: the new root is in the trusted set and the issuer
	// still signs under the previous root, whose Secret it still has, until
	// every meshed pod holds the new one.
	RotationPropagating RotationPhase = "Propagating"
	// RotationHeld: as Propagating, but the previous root's key is gone (its
	// Secret was overwritten), so the issuer signs nothing until the new root
	// has propagated. The identity issuer in place keeps the mesh running
	// until status.rotation.deadline.
	RotationHeld RotationPhase = "Held"
	// RotationSwitching: the issuer signs under the new root and waits for
	// Linkerd's identity service to load the identity issuer re-issued under
	// it.
	RotationSwitching RotationPhase = "Switching"
	// RotationDraining: the old root stays trusted until no proxy
	// certificate under it can still be alive.
	RotationDraining RotationPhase = "Draining"
)

// ConditionRotation is the issuer condition that says where a rotation
// stands; True once it is Stable.
const ConditionRotation = "TrustAnchorRotation"

// AcceptBehindAnnotation is, on an issuer, an operator's decision that the
// rotation to the root it names (a fingerprint) may switch with pods still
// behind, which then fail to verify the new identity issuer's certificates
// until restarted. linkerd-ca rotation switch --accept-behind writes it;
// the controller never decides it, and ignores it for any other root.
const AcceptBehindAnnotation = "linkerdca.io/accept-behind"

// ConditionTrustRootsSynced says whether Linkerd's trust roots hold every
// root the mesh needs (the one signed under, those retiring): False when
// a Bundle that does not source the trusted set, a hand edit or a second
// writer dropped one.
const ConditionTrustRootsSynced = "TrustRootsSynced"

// RotationStatus is what the controller decided, and why, from the cluster
// it last observed. Every field is recomputed from the cluster, so a
// controller restarted in any phase carries on from here.
type RotationStatus struct {
	// Phase is where the rotation stands.
	Phase RotationPhase `json:"phase"`
	// SigningRoot is the SHA-256 fingerprint of the root the issuer signs
	// under.
	SigningRoot string `json:"signingRoot"`
	// SigningSecretName is the Secret holding SigningRoot's key; during
	// Propagating, the previous anchor Secret.
	SigningSecretName string `json:"signingSecretName"`
	// SigningKMSKey is the KMS key of SigningRoot, for an anchor whose key
	// is in a KMS: during Propagating the previous key, whatever spec.kms
	// names now, so that a certificate is only ever paired with its own key.
	// +optional
	SigningKMSKey *KMSKey `json:"signingKMSKey,omitempty"`
	// SigningRootKey identifies SigningRoot's subject and public key (hex
	// SHA-256). A copy of the root renewed with the same key (cert-manager's
	// rotationPolicy Never) has it too, and signs what every proxy holding
	// either copy verifies: the issuer goes on signing with it, no hold.
	// +optional
	SigningRootKey string `json:"signingRootKey,omitempty"`
	// NextRoot is the fingerprint of the root being rolled out.
	// +optional
	NextRoot string `json:"nextRoot,omitempty"`
	// PeerRoot is a linked cluster's root that this cluster's workloads are
	// restarted to hold while no rotation of its own is under way (restarts
	// on): that cluster switches to it only once every pod here holds it.
	// PodsBehind, Behind, Restarting and Restarted are then about it.
	// +optional
	PeerRoot string `json:"peerRoot,omitempty"`
	// RetiringRoots are roots still trusted until no leaf under them can be
	// alive.
	// +optional
	RetiringRoots []RetiringRoot `json:"retiringRoots,omitempty"`
	// BundleGainedAt is when Linkerd's trust roots were first seen holding
	// NextRoot: a control-plane pod that reads them by configMapKeyRef holds
	// it only if it started after this.
	// +optional
	BundleGainedAt *metav1.Time `json:"bundleGainedAt,omitempty"`
	// SwitchedAt is when the issuer began signing under SigningRoot.
	// +optional
	SwitchedAt *metav1.Time `json:"switchedAt,omitempty"`
	// PodsBehind is how many meshed and control-plane pods do not hold
	// NextRoot (or PeerRoot) yet, out of PodsTotal.
	PodsBehind int32 `json:"podsBehind"`
	PodsTotal  int32 `json:"podsTotal"`
	// Behind names the first pods behind, as namespace/name.
	// +optional
	Behind []string `json:"behind,omitempty"`
	// Unrestartable names the first pods behind that no restart can replace
	// (bare pods, Jobs): delete or re-create them.
	// +optional
	Unrestartable []string `json:"unrestartable,omitempty"`
	// Blocked names what only an operator can unblock, each with the step
	// that does: a pod stuck terminating, a proxy that trusts nothing, a
	// workload a restart cannot replace (paused, OnDelete, a partition, an
	// owner this controller does not restart), a stalled restart.
	// +optional
	Blocked []string `json:"blocked,omitempty"`
	// TrustRootsMissing are the roots Linkerd's trust roots lack though the
	// mesh needs them (drift: a Bundle with another source, a hand edit, a
	// second writer). Nothing switches or restarts while any is listed.
	// +optional
	TrustRootsMissing []string `json:"trustRootsMissing,omitempty"`
	// AcceptedBehind names the pods still behind when the operator's
	// decision (AcceptBehindAnnotation) switched the rotation: they do not
	// trust the new root until restarted.
	// +optional
	AcceptedBehind []string `json:"acceptedBehind,omitempty"`
	// Restarting is how many workloads the controller restarted for
	// NextRoot (or PeerRoot) still have pods behind (each is restarted at most once).
	// +optional
	Restarting int32 `json:"restarting,omitempty"`
	// Restarted are the workloads the controller restarted for NextRoot
	// (or PeerRoot), and when: recorded before the restart, so that each is restarted at
	// most once per root even when its pod template's annotation is
	// stripped (by hand, or by a GitOps sync).
	// +optional
	// +listType=map
	// +listMapKey=workload
	// +kubebuilder:validation:MaxItems=1000
	Restarted []RestartedWorkload `json:"restarted,omitempty"`
	// Deadline is when the identity issuer in place expires: a rotation
	// still Held then leaves the mesh without a valid issuer. For a copy
	// of the root renewed with the same key, it is when the old copy
	// expires: a proxy holding only that copy then trusts nothing new.
	// +optional
	Deadline *metav1.Time `json:"deadline,omitempty"`
	// Message says what the rotation waits for.
	// +optional
	Message string `json:"message,omitempty"`
	// Propagation says, of each root trusted here, how far it has reached
	// this cluster's pods; linked peers read it.
	// +optional
	// +listType=map
	// +listMapKey=fingerprint
	// +kubebuilder:validation:MaxItems=32
	Propagation []RootPropagation `json:"propagation,omitempty"`
	// Peers is what was last read of each linked peer.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=16
	Peers []PeerStatus `json:"peers,omitempty"`
	// LastTransitionTime is when Phase last changed.
	LastTransitionTime metav1.Time `json:"lastTransitionTime"`
}

// RestartedWorkload is a workload restarted for a rotation's next root.
type RestartedWorkload struct {
	// Workload is its kind, namespace and name: "Deployment emojivoto/web".
	Workload string `json:"workload"`
	// At is when the controller restarted it: the value of its pod
	// template's restarted-at annotation, so that the restart written again
	// is the same write.
	At metav1.Time `json:"at"`
	// Generation is the workload's metadata.generation when the restart
	// was decided. Unchanged, the restart's write never landed (the
	// controller stopped between recording and writing it), and it is made
	// again; changed without the annotation, someone removed it.
	// +optional
	Generation int64 `json:"generation,omitempty"`
}

// RetiringRoot is a root still trusted after a switch.
type RetiringRoot struct {
	// Fingerprint is the root's SHA-256 fingerprint.
	Fingerprint string `json:"fingerprint"`
	// Since is when Linkerd's identity service was confirmed to issue under
	// the root that replaced it; unset until then.
	// +optional
	Since *metav1.Time `json:"since,omitempty"`
}
