package controller

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// ReasonRotationHeld says a rotation holds the issuer: nothing is signed until
// the new root has propagated to every pod.
const ReasonRotationHeld = "RotationHeld"

// rotating says whether the rotation decides which root this issuer signs
// under. It does whenever the issuer asks for it, the rotation controller
// on or not: turned off mid-rotation, the signer keeps to the root the
// rotation recorded as signing, never the unpropagated one the spec names.
func (s *Signer) rotating(iss v1alpha1.GenericIssuer) bool {
	return iss.GetSpec().Rotation != nil
}

// signingSecret is the Secret whose key signs: the one the spec names,
// unless a rotation keeps signing under the previous anchor Secret until
// the new root has propagated.
func (s *Signer) signingSecret(iss v1alpha1.GenericIssuer) types.NamespacedName {
	ref := s.AnchorSecret(iss)
	if st := iss.GetStatus().Rotation; s.rotating(iss) && st != nil && st.SigningSecretName != "" {
		ref.Name = st.SigningSecretName
	}
	return ref
}

// signingKMS is the KMS key that signs: the one the rotation recorded for
// the Secret it signs with (during Propagating, the previous root's), else
// the spec's. A certificate is only ever paired with its own key.
func (s *Signer) signingKMS(iss v1alpha1.GenericIssuer) *v1alpha1.KMSKey {
	if st := iss.GetStatus().Rotation; s.rotating(iss) && st != nil && st.SigningSecretName != "" && st.SigningKMSKey != nil {
		return st.SigningKMSKey
	}
	return iss.GetSpec().KMS
}

// checkSigningRoot refuses an anchor other than the root the rotation
// signs under: the Secret was overwritten with a root the proxies may not
// hold yet. An issuer whose rotation has not started yet signs with the
// anchor the rotation will adopt.
func (s *Signer) checkSigningRoot(iss v1alpha1.GenericIssuer, anchor *signer.Anchor) error {
	st := iss.GetStatus().Rotation
	if !s.rotating(iss) {
		return nil
	}
	if st == nil || st.SigningRoot == "" {
		if !s.Rotation {
			// No rotation ever decided, and none runs: the anchor is all
			// there is, as without spec.rotation.
			return nil
		}
		// A new issuer, or one created again over a rotation in progress:
		// the rotation controller first reads from the cluster which root
		// the mesh runs on.
		if c := meta.FindStatusCondition(iss.GetStatus().Conditions, v1alpha1.ConditionRotation); c != nil && c.Status == metav1.ConditionFalse {
			return fmt.Errorf("%s: the rotation controller does not rotate this issuer (%s: %s), so nothing is signed", ReasonRotationHeld, c.Reason, c.Message)
		}
		return fmt.Errorf("%s: waiting for the rotation controller to decide, from the identity issuer in place and the pods, which root this issuer signs under (condition %s says why, if it does not)",
			ReasonRotationHeld, v1alpha1.ConditionRotation)
	}
	if st.SigningRoot == signer.Fingerprint(anchor.Certificate) {
		return nil
	}
	if st.SigningRootKey != "" && st.SigningRootKey == signer.RootKey(anchor.Certificate) {
		// The root renewed with the same key and subject: what it signs,
		// a proxy holding the copy in use verifies.
		return nil
	}
	off := ""
	if !s.Rotation {
		off = "; the rotation controller is off (--rotation=false, Helm rotation.enabled=false): turn it back on to finish the rotation"
	}
	return fmt.Errorf("%s: the trust anchor Secret %s now holds root %s, which not every meshed pod holds yet, and the key of root %s is gone: nothing is signed until the new root has propagated (status.rotation: %s)%s",
		ReasonRotationHeld, s.signingSecret(iss), signer.Fingerprint(anchor.Certificate), st.SigningRoot, st.Message, off)
}

// signingRoot is what the rotation last decided: the root and its Secret.
func signingRoot(iss v1alpha1.GenericIssuer) string {
	if st := iss.GetStatus().Rotation; st != nil {
		return st.SigningRoot + "/" + st.SigningSecretName
	}
	return ""
}
