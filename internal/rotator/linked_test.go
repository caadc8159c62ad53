package rotator

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
)

// TestAnUnreadPeerIsACondition: an issuer naming a peer it cannot read
// (here, a controller without --multicluster) says so in a condition of
// its own, with the peer and why, while it signs on (Stable); the link
// removed, the condition goes with it.
func TestAnUnreadPeerIsACondition(t *testing.T) {
	a := anchor(t)
	iss := issuer("anchor")
	iss.Spec.Rotation.Peers = []v1alpha1.RotationPeer{{Name: "east", KubeconfigSecretName: "east", IssuerName: "linkerd"}}
	h := newHarness(t, rotation.Config{}, iss, secret("anchor", a))
	if res := h.reconcile(); res.RequeueAfter == 0 {
		t.Error("a linked issuer is not read again: nothing here watches the peer")
	}
	got := h.issuer()
	c := meta.FindStatusCondition(got.Status.Conditions, v1alpha1.ConditionLinkedClustersReachable)
	if c == nil || c.Status != metav1.ConditionFalse || c.Reason != "Unreachable" || !strings.Contains(c.Message, "east (this controller does not read linked clusters") {
		t.Fatalf("condition %s = %+v; want False, naming east and why", v1alpha1.ConditionLinkedClustersReachable, c)
	}
	if got.Status.Rotation.Phase != v1alpha1.RotationStable {
		t.Errorf("phase %s, want Stable: an unread peer never stops the signing", got.Status.Rotation.Phase)
	}
	h.update(iss, func() { iss.Spec.Rotation.Peers = nil })
	h.reconcile()
	if c := meta.FindStatusCondition(h.issuer().Status.Conditions, v1alpha1.ConditionLinkedClustersReachable); c != nil {
		t.Errorf("the link removed, condition %s is still there: %+v", v1alpha1.ConditionLinkedClustersReachable, c)
	}
}

// TestEveryPeerReadIsTrue: the condition is True and names them.
func TestEveryPeerReadIsTrue(t *testing.T) {
	c := peersCondition(v1alpha1.RotationStatus{Peers: []v1alpha1.PeerStatus{{Name: "east", Reachable: true}, {Name: "north", Reachable: true}}})
	if c == nil || c.Status != metav1.ConditionTrue || c.Message != "every linked cluster was read: east, north" {
		t.Errorf("condition %+v, want True naming east and north", c)
	}
	if c := peersCondition(v1alpha1.RotationStatus{}); c != nil {
		t.Errorf("no peer: condition %+v, want none", c)
	}
}
