package rotation

import (
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// IdentityIssuer is what the controller saw of the identity issuer
// Secret(s) this issuer signs.
type IdentityIssuer struct {
	// Root is the fingerprint of the root the Secret's certificate chains
	// to, "" when none is known.
	Root string
	// NotBefore and NotAfter are the certificate's validity.
	NotBefore, NotAfter time.Time
	// Written is when the identity issuer Secret was last written: only a
	// report of Linkerd's identity service after it is about this issuer
	// (NotBefore is backdated, so it cannot tell).
	Written time.Time
	// Updated is when Linkerd's identity service last reported loading an
	// issuer (event IssuerUpdated); zero when never seen.
	Updated time.Time
	// Skipped is the message of an IssuerUpdateSkipped event since Written:
	// identity refused the issuer, as it does one under a root it does not
	// trust.
	Skipped string
}

// WorkloadState is what the controller read of a workload behind.
type WorkloadState struct {
	// RestartedFor is its pod template's restarted-for annotation, and
	// RestartedAt when the controller wrote it.
	RestartedFor string
	RestartedAt  time.Time
	// Manual says why a restart cannot replace its pods (paused, OnDelete,
	// a partition), with the step that does; "" when a restart does.
	Manual string
	// Generation is its metadata.generation.
	Generation int64
}

// Observed is the cluster, as the controller saw it for one issuer.
type Observed struct {
	Now time.Time
	// Prev is the status the controller last wrote; nil before the first.
	Prev *v1alpha1.RotationStatus
	// SpecSecret is the anchor Secret the issuer names, and Anchor the
	// fingerprint of the root it holds ("" when unusable).
	SpecSecret, Anchor string
	// SpecKMS is the KMS key the spec names (nil for a key in the Secret):
	// the key of Anchor.
	SpecKMS *v1alpha1.KMSKey
	// SigningKeyHeld: the Secret named Prev.SigningSecretName still holds
	// Prev.SigningRoot, key included.
	SigningKeyHeld bool
	// Keys maps a root to an anchor Secret the controller read that holds
	// it with its key: where a lost status finds the key it signed with.
	Keys map[string]string
	// Trusted are the fingerprints in the trusted set as it is;
	// TrustedFound says the trusted set exists.
	Trusted      []string
	TrustedFound bool
	// Record is the rotation as last written beside the trusted set, which
	// outlives its issuer; nil when none.
	Record *v1alpha1.RotationStatus
	// Bundle are the fingerprints in Linkerd's trust roots ConfigMap;
	// BundleFound says the ConfigMap exists.
	Bundle      []string
	BundleFound bool
	// Pods are the meshed and control-plane pods of the issuer's control
	// plane: the pod cache's own, read only (a copy of 5,000 of them on
	// every reconcile was 1.6 MB of the issuer's live heap).
	Pods     []*podtrust.Pod
	Identity IdentityIssuer
	// Workloads is what was read of each restartable workload behind;
	// absent when the workload was not found.
	Workloads map[podtrust.Workload]WorkloadState
	// AcceptBehind is the root the operator allowed to be switched to with
	// pods behind (v1alpha1.AcceptBehindAnnotation); "" when none.
	AcceptBehind string
	// Nodes says, of each node that runs a pod still there past its grace
	// period, why it is not Ready ("" when it is Ready); absent when it was
	// not looked at.
	Nodes map[string]string
	// Roots is what a verifier sees of each root observed anywhere (anchor
	// Secrets, the trusted set, Linkerd's trust roots).
	Roots map[string]Root
	// Linked says the issuer names peers (spec.rotation.peers), and Peers
	// is what was read of each, in the spec's order.
	Linked bool
	Peers  []Peer
}

// Root is a root as a verifier matches it.
type Root struct {
	// Key is signer.RootKey: equal for copies renewed with the same key.
	Key      string
	NotAfter time.Time
}

// renewedCopy says the anchor is a copy of the signing root renewed with
// the same key and subject: what one signs, a proxy holding the other
// verifies, so it is no new trust root.
func (o Observed) renewedCopy(signing string) bool {
	a, s := o.Roots[o.Anchor], o.Roots[signing]
	return o.Anchor != signing && a.Key != "" && a.Key == s.Key
}
