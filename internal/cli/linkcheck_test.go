package cli

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
)

// TestLinkedCheckReportsEachPeersTrustState: a peer not read yet warns, one
// that cannot be read fails with its error and link Secret, one whose root
// has not reached the pods here warns with the count, one whose roots are
// held passes; an issuer without peers reports nothing.
func TestLinkedCheckReportsEachPeersTrustState(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	read := metav1.NewTime(now.Add(-90 * time.Second))
	spec := &v1alpha1.RotationSpec{Peers: []v1alpha1.RotationPeer{
		{Name: "east", KubeconfigSecretName: "linkerd-ca-peer-east"}, {Name: "north", KubeconfigSecretName: "n"},
		{Name: "south", KubeconfigSecretName: "s"}, {Name: "new", KubeconfigSecretName: "x"}}}
	st := &v1alpha1.RotationStatus{
		Peers: []v1alpha1.PeerStatus{{Name: "east", Error: "connection refused", LastRead: &read},
			{Name: "north", Reachable: true, Roots: []string{"AA:BB"}}, {Name: "south", Reachable: true, Roots: []string{"CC:DD"}}},
		Propagation: []v1alpha1.RootPropagation{{Fingerprint: "AA:BB", PodsBehind: 2, PodsTotal: 5}, {Fingerprint: "CC:DD", Propagated: true, PodsTotal: 5}},
	}
	got := linkedCheck("LinkerdCAClusterIssuer linkerd", spec, st, now)
	want := []struct {
		status identitycheck.Status
		says   string
	}{
		{identitycheck.Fail, "linked cluster east cannot be read (connection refused; last read 1m30s ago)"},
		{identitycheck.Warn, "linked cluster north's root AA:BB has not reached every pod here (2 of 5 behind)"},
		{identitycheck.Pass, "linked cluster south: read"},
		{identitycheck.Warn, "linked cluster new has not been read yet"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Status != w.status || !strings.Contains(got[i].Detail, w.says) {
			t.Errorf("result %d: %s %q, want %s saying %q", i, got[i].Status, got[i].Detail, w.status, w.says)
		}
	}
	if !strings.Contains(got[0].Detail, "linkerd-ca-peer-east") {
		t.Errorf("the failure does not name the link Secret: %s", got[0].Detail)
	}
	if r := linkedCheck("x", &v1alpha1.RotationSpec{}, st, now); r != nil {
		t.Errorf("no peers: %+v", r)
	}
}

// TestARotationJustStartedIsUnderWay: a Stable status whose Secret the
// spec no longer names is a rotation started that the controller has not
// seen yet: starting another (or --all-linked) then is refused.
func TestARotationJustStartedIsUnderWay(t *testing.T) {
	iss := &v1alpha1.LinkerdCAClusterIssuer{Spec: v1alpha1.IssuerSpec{TrustAnchorSecretName: "anchor"}}
	if why := underWay(iss); why != "" {
		t.Errorf("no status yet: %q", why)
	}
	iss.Status.Rotation = &v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, SigningSecretName: "anchor"}
	if why := underWay(iss); why != "" {
		t.Errorf("Stable from the spec's Secret: %q", why)
	}
	iss.Spec.TrustAnchorSecretName = "anchor-2"
	if why := underWay(iss); !strings.Contains(why, "names Secret anchor-2, and the controller still signs from anchor") {
		t.Errorf("just started: %q", why)
	}
	iss.Status.Rotation.Phase, iss.Status.Rotation.Message = v1alpha1.RotationPropagating, "3 of 9 pods do not hold the new root yet"
	if why := underWay(iss); !strings.HasPrefix(why, "Propagating: 3 of 9") {
		t.Errorf("propagating: %q", why)
	}
}
