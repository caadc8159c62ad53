package rotation

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

const rootE = "EE" // the linked cluster east's own root

// TestASwitchWaitsForEveryLinkedCluster: every pod here holds the new root,
// but a linked cluster that has not propagated it, or cannot be read, or
// publishes nothing, keeps the switch waiting, and says so; once each
// reports it propagated, the switch goes on. Signing never stops.
func TestASwitchWaitsForEveryLinkedCluster(t *testing.T) {
	o := Observed{Now: t0, Prev: &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: rootA, SigningSecretName: "anchor", NextRoot: rootB,
		BundleGainedAt: ceil(t0.Add(-time.Hour))}, SpecSecret: "anchor-next", Anchor: rootB, SigningKeyHeld: true,
		Bundle: []string{rootA, rootB, rootE}, Pods: []*podtrust.Pod{meshed("web-1", rootA, rootB, rootE)}, Linked: true}
	for _, tc := range []struct {
		peer Peer
		want string
	}{
		{Peer{Name: "east", Roots: []string{rootE}, Propagated: []string{rootE, rootA}}, "peer east has not propagated it"},
		{Peer{Name: "east", Err: "connection refused"}, "peer east cannot be read (connection refused)"},
		{Peer{Name: "east", Roots: []string{rootE}}, "peer east publishes no propagation"},
	} {
		o.Peers = []Peer{tc.peer}
		d := Decide(cfg, o)
		if d.Status.Phase != v1alpha1.RotationPropagating || d.Status.SigningRoot != rootA || d.Reissue {
			t.Errorf("%s: phase %s, signing %s, reissue %v; want still Propagating under %s", tc.want, d.Status.Phase, d.Status.SigningRoot, d.Reissue, rootA)
		}
		if !strings.Contains(d.Status.Message, "waits for the linked clusters: "+tc.want) {
			t.Errorf("message %q, want it to say %q", d.Status.Message, tc.want)
		}
	}
	o.Peers = []Peer{{Name: "east", Roots: []string{rootE}, Propagated: []string{rootE, rootA, rootB}}}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationSwitching || d.Status.SigningRoot != rootB || !d.Reissue {
		t.Errorf("every linked cluster propagated it: phase %s, signing %s; want Switching to %s", d.Status.Phase, d.Status.SigningRoot, rootB)
	}
	// The operator's accept-behind decides for this cluster's pods only.
	o.Peers[0].Propagated = []string{rootE}
	o.Pods = append(o.Pods, meshed("api-1", rootA))
	o.AcceptBehind = rootB
	if d := Decide(cfg, o); d.Status.SigningRoot != rootA {
		t.Errorf("accepted behind here, a peer not propagated: switched to %s", d.Status.SigningRoot)
	}
}

// TestLinkedRootsAreTrustedAndKeptWhileAPeerIsUnreachable: the roots a
// peer keeps for itself are trusted here too; when the peer cannot be
// read, those it kept last stay trusted, and signing goes on.
func TestLinkedRootsAreTrustedAndKeptWhileAPeerIsUnreachable(t *testing.T) {
	o := Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootA, SigningKeyHeld: true,
		Bundle: []string{rootA}, Pods: []*podtrust.Pod{meshed("web-1", rootA)}, Linked: true,
		Peers: []Peer{{Name: "east", Roots: []string{rootE, rootA}, Propagated: []string{rootE, rootA}}}}
	d := Decide(cfg, o)
	if !slices.Equal(d.Trusted, []string{rootA, rootE}) || d.Status.Phase != v1alpha1.RotationStable {
		t.Fatalf("trusted %v, phase %s; want %s and east's %s, Stable", d.Trusted, d.Status.Phase, rootA, rootE)
	}
	if len(d.Status.Peers) != 1 || !d.Status.Peers[0].Reachable || d.Status.Peers[0].LastRead == nil {
		t.Fatalf("peers %+v, want east read now", d.Status.Peers)
	}
	// Propagation here: the signing root reached every pod; east's root,
	// not yet in Linkerd's trust roots, none.
	prop := d.Status.Propagation
	if len(prop) != 2 || !prop[0].Propagated || prop[1].Fingerprint != rootE || prop[1].Propagated || prop[1].PodsBehind != 1 {
		t.Fatalf("propagation %+v; want %s propagated, %s 1 of 1 behind", prop, rootA, rootE)
	}
	o.Prev, o.Now = &d.Status, t0.Add(time.Minute)
	o.Peers = []Peer{{Name: "east", Err: "dial tcp: i/o timeout"}}
	d = Decide(cfg, o)
	if !slices.Equal(d.Trusted, []string{rootA, rootE}) {
		t.Fatalf("east unreachable: trusted %v, want what it kept last", d.Trusted)
	}
	if p := d.Status.Peers[0]; p.Reachable || p.Error != "dial tcp: i/o timeout" || !p.LastRead.Time.Equal(t0) {
		t.Fatalf("peer status %+v; want unreachable, the error, last read at %s", p, t0)
	}
	if d.Status.Phase != v1alpha1.RotationStable || d.Status.SigningRoot != rootA {
		t.Fatalf("phase %s under %s: signing goes on", d.Status.Phase, d.Status.SigningRoot)
	}
}

// TestAPeerRootReachesThePodsStartedAfterTheBundleGainedIt: a proxy that
// reads Linkerd's trust roots holds a linked root only if it started after
// they were first seen to hold it, a time kept across reconciles.
func TestAPeerRootReachesThePodsStartedAfterTheBundleGainedIt(t *testing.T) {
	old := controlPlane("destination", t0.Add(-time.Hour))
	o := Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootA, SigningKeyHeld: true,
		Bundle: []string{rootA, rootE}, Pods: []*podtrust.Pod{old}, Linked: true,
		Peers: []Peer{{Name: "east", Roots: []string{rootE}, Propagated: []string{rootE}}}}
	d := Decide(cfg, o)
	if rp := d.Status.Propagation[1]; rp.Propagated || rp.BundleGainedAt == nil || !rp.BundleGainedAt.Time.Equal(t0) {
		t.Fatalf("%+v; want not propagated, gained now", rp)
	}
	restarted := controlPlane("destination", t0.Add(30*time.Second))
	o.Prev, o.Now, o.Pods = &d.Status, t0.Add(time.Minute), []*podtrust.Pod{restarted}
	d = Decide(cfg, o)
	if rp := d.Status.Propagation[1]; !rp.Propagated || !rp.BundleGainedAt.Time.Equal(t0) {
		t.Fatalf("%+v; want propagated, gained at %s still", rp, t0)
	}
}

// TestARetiredRootStaysUntilEveryLinkedClusterDrainedIt: drained here, a
// root a peer still keeps (or that a peer that cannot be read may keep)
// stays trusted; once no peer keeps it, it goes.
func TestARetiredRootStaysUntilEveryLinkedClusterDrainedIt(t *testing.T) {
	since := ceil(t0.Add(-48 * time.Hour))
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationDraining, SigningRoot: rootB, SigningSecretName: "anchor", RetiringRoots: []v1alpha1.RetiringRoot{{Fingerprint: rootA, Since: since}}}
	o := Observed{Now: t0, Prev: prev, SpecSecret: "anchor", Anchor: rootB, SigningKeyHeld: true, Bundle: []string{rootA, rootB},
		Pods: []*podtrust.Pod{meshed("web-1", rootA, rootB)}, Linked: true, Peers: []Peer{{Name: "east", Roots: []string{rootB, rootA}, Propagated: []string{rootB}}}}
	d := Decide(cfg, o)
	if !slices.Contains(d.Trusted, rootA) || d.Status.Phase != v1alpha1.RotationDraining || !strings.Contains(d.Status.Message, "peer east still keeps it") {
		t.Fatalf("trusted %v, phase %s, message %q; want %s kept for east", d.Trusted, d.Status.Phase, d.Status.Message, rootA)
	}
	o.Peers = []Peer{{Name: "east", Err: "Unauthorized"}}
	o.Prev.Peers = nil
	if d := Decide(cfg, o); !slices.Contains(d.Trusted, rootA) || !strings.Contains(d.Status.Message, "peer east cannot be read (Unauthorized)") {
		t.Fatalf("east unreachable: trusted %v, message %q; want %s kept", d.Trusted, d.Status.Message, rootA)
	}
	o.Peers = []Peer{{Name: "east", Roots: []string{rootB}, Propagated: []string{rootB}}}
	if d := Decide(cfg, o); slices.Contains(d.Trusted, rootA) || d.Status.Phase != v1alpha1.RotationStable {
		t.Fatalf("east drained it: trusted %v, phase %s; want it gone, Stable", d.Trusted, d.Status.Phase)
	}
}

// TestAnUnlinkedPeersRootsDrainHere: a link removed leaves the roots the
// peer kept trusted until the drain here proves no leaf under them alive.
func TestAnUnlinkedPeersRootsDrainHere(t *testing.T) {
	prev := stable(rootA, "anchor")
	prev.Peers = []v1alpha1.PeerStatus{{Name: "east", Reachable: true, Roots: []string{rootE, rootA}}}
	o := Observed{Now: t0, Prev: prev, SpecSecret: "anchor", Anchor: rootA, SigningKeyHeld: true, Bundle: []string{rootA, rootE},
		Pods: []*podtrust.Pod{meshed("web-1", rootA, rootE)}}
	d := Decide(cfg, o)
	if !slices.Equal(d.Trusted, []string{rootA, rootE}) || d.Status.Phase != v1alpha1.RotationDraining || len(d.Status.Peers) != 0 {
		t.Fatalf("trusted %v, phase %s, peers %v; want %s draining here, no peer", d.Trusted, d.Status.Phase, d.Status.Peers, rootE)
	}
	o.Prev, o.Now = &d.Status, t0.Add(25*time.Hour)
	if d := Decide(cfg, o); !slices.Equal(d.Trusted, []string{rootA}) || d.Status.Phase != v1alpha1.RotationStable {
		t.Fatalf("after the leaf lifetime: trusted %v, phase %s; want %s alone, Stable", d.Trusted, d.Status.Phase, rootA)
	}
}

// TestUnlinkedIssuersPublishNoPropagation: without peers the status is as
// before, nothing published for peers to read.
func TestUnlinkedIssuersPublishNoPropagation(t *testing.T) {
	d := Decide(cfg, Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootA, SigningKeyHeld: true, Bundle: []string{rootA},
		Pods: []*podtrust.Pod{meshed("web-1", rootA)}})
	if d.Status.Propagation != nil || d.Status.Peers != nil {
		t.Fatalf("propagation %v, peers %v; want none", d.Status.Propagation, d.Status.Peers)
	}
}

// TestAReadThatChangesNothingWritesNothing: the peer's lastRead moves only
// when what was read changes, or every 5 minutes: a read every 30 s is no
// status write every 30 s.
func TestAReadThatChangesNothingWritesNothing(t *testing.T) {
	o := Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootA, SigningKeyHeld: true, Bundle: []string{rootA, rootE},
		Pods: []*podtrust.Pod{meshed("web-1", rootA, rootE)}, Linked: true, Peers: []Peer{{Name: "east", Roots: []string{rootE}, Propagated: []string{rootE}}}}
	d := Decide(cfg, o)
	o.Prev = &d.Status
	for _, tc := range []struct {
		after time.Duration
		peer  Peer
		moved bool
	}{
		{30 * time.Second, o.Peers[0], false},
		{time.Minute, Peer{Name: "east", Roots: []string{rootE, rootB}, Propagated: []string{rootE}}, true},
		{6 * time.Minute, o.Peers[0], true},
	} {
		o.Now, o.Peers = t0.Add(tc.after), []Peer{tc.peer}
		got := Decide(cfg, o).Status.Peers[0].LastRead.Time
		if moved := got.Equal(o.Now); moved != tc.moved {
			t.Errorf("%s later, roots %v: lastRead %s, moved %v, want %v", tc.after, tc.peer.Roots, got, moved, tc.moved)
		}
	}
}
