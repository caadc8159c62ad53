package rotation

import (
	"strings"
	"testing"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// overwrittenWithACopy is the anchor Secret renewed in place with the same
// key (cert-manager's rotationPolicy Never): BB is a new copy of AA.
func overwrittenWithACopy(copyKey string) Observed {
	oldExpiry, identityExpiry := t0.Add(30*24*time.Hour), t0.Add(20*time.Hour)
	return Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootB, SigningKeyHeld: false,
		Keys: map[string]string{rootB: "anchor"}, Bundle: []string{rootA, rootB}, BundleFound: true, TrustedFound: true, Trusted: []string{rootA},
		Pods:     []*podtrust.Pod{meshed("web-1", rootA), meshed("web-2", rootA, rootB)},
		Identity: IdentityIssuer{Root: rootA, NotAfter: identityExpiry},
		Roots:    map[string]Root{rootA: {Key: "k-aa", NotAfter: oldExpiry}, rootB: {Key: copyKey, NotAfter: oldExpiry.Add(365 * 24 * time.Hour)}}}
}

func TestSameKeyRenewalDoesNotHold(t *testing.T) {
	o := overwrittenWithACopy("k-aa")
	d := Decide(cfg, o)
	st := d.Status
	if st.Phase != v1alpha1.RotationPropagating || st.SigningRoot != rootA || st.SigningRootKey != "k-aa" || d.Reissue {
		t.Fatalf("status %+v; want Propagating (no hold: the Secret's key still signs for AA), AA's key recorded for the signer", st)
	}
	if st.Deadline == nil || !st.Deadline.Time.Equal(o.Roots[rootA].NotAfter) {
		t.Errorf("deadline %v; want the old copy's expiry %s, not the identity issuer's", st.Deadline, o.Roots[rootA].NotAfter)
	}
	if st.PodsBehind != 1 || !strings.Contains(st.Message, "renewed with the same key") || strings.Contains(st.Message, "held") {
		t.Errorf("status %+v; want one pod behind, the message saying signing goes on", st)
	}
	if d.Event == nil || d.Event.Warning {
		t.Errorf("event %+v; want a Normal phase change, not RotationHeld", d.Event)
	}

	// Once every pod holds the new copy it is signed under, and the old
	// copy drains as any retired root does.
	o.Prev, o.Pods = &st, []*podtrust.Pod{meshed("web-1", rootA, rootB), meshed("web-2", rootA, rootB)}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationSwitching || d.Status.SigningRoot != rootB {
		t.Errorf("every pod holding the new copy: %+v; want the switch to it", d.Status)
	}
}

// A new key under the same subject is a new root: it holds as before.
func TestANewKeyIsANewRoot(t *testing.T) {
	d := Decide(cfg, overwrittenWithACopy("k-bb"))
	if d.Status.Phase != v1alpha1.RotationHeld || d.Status.Deadline == nil || !d.Status.Deadline.Time.Equal(t0.Add(20*time.Hour)) {
		t.Errorf("status %+v; want Held until the identity issuer expires", d.Status)
	}
}

// The override: the operator accepts the pods behind for one root. It is
// never taken for another root, never before Linkerd's trust roots hold
// it, and never by itself.
func TestAcceptBehindSwitchesOnlyOnTheOperatorsWord(t *testing.T) {
	o := propagating()
	o.Pods = []*podtrust.Pod{meshed("web-1", rootA, rootB), meshed("legacy", rootA)}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationPropagating || len(d.Status.AcceptedBehind) != 0 {
		t.Fatalf("no decision: %+v; want Propagating, one behind", d.Status)
	}
	o.AcceptBehind = "CC:CC"
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationPropagating {
		t.Fatalf("accepted for another root: %+v; want no switch", d.Status)
	}
	o.AcceptBehind = rootB
	gainedNot := o
	gainedNot.Prev = o.Prev.DeepCopy()
	gainedNot.Prev.BundleGainedAt, gainedNot.Bundle = nil, []string{rootA}
	if d := Decide(cfg, gainedNot); d.Status.Phase != v1alpha1.RotationPropagating {
		t.Fatalf("accepted before Linkerd's trust roots hold the root: %+v; want no switch", d.Status)
	}
	d := Decide(cfg, o)
	st := d.Status
	if st.Phase != v1alpha1.RotationSwitching || st.SigningRoot != rootB || !d.Reissue || len(st.AcceptedBehind) != 1 || st.AcceptedBehind[0] != "app/legacy" {
		t.Fatalf("accepted: %+v; want the switch, the pod it breaks named", st)
	}
	if d.Event == nil || !d.Event.Warning || d.Event.Reason != "RotationSwitchAccepted" || !strings.Contains(d.Event.Detail, "app/legacy") ||
		!strings.Contains(st.Message, v1alpha1.AcceptBehindAnnotation) {
		t.Errorf("event %+v, message %q; want a Warning naming the pod and the annotation", d.Event, st.Message)
	}
}

// A root whose key is in a KMS: the status names the KMS key of the root
// signed under, so that the signer pairs the previous certificate with the
// previous key while the spec already names the next.
func TestKMSKeyFollowsTheRootSignedUnder(t *testing.T) {
	k1 := &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/root-1"}}
	k2 := &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: "alias/root-2"}}
	o := propagating()
	o.Prev.SigningKMSKey, o.SpecKMS = k1, k2
	o.Pods = []*podtrust.Pod{meshed("web-1", rootA)}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationPropagating || d.Status.SigningKMSKey.String() != k1.String() {
		t.Fatalf("propagating: %+v; want the previous root's key %s kept", d.Status, k1)
	}
	o.Pods = []*podtrust.Pod{meshed("web-1", rootA, rootB)}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationSwitching || d.Status.SigningKMSKey.String() != k2.String() || d.Status.SigningSecretName != "next" {
		t.Fatalf("switched: %+v; want the spec's key %s with the spec's Secret", d.Status, k2)
	}
}
