package rotation

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

const rootF = "FF" // east's next root

// eastRotating: this cluster is Stable on rootA, linked to east, which
// signs under rootE and propagates rootF; Linkerd's trust roots here hold
// all three, its pods the first two.
func eastRotating() Observed {
	o := Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootA, SigningKeyHeld: true,
		Bundle: []string{rootA, rootE, rootF}, Trusted: []string{rootA, rootE, rootF}, TrustedFound: true, Linked: true,
		Pods:  []*podtrust.Pod{meshed("web-1", rootA, rootE), meshed("api-1", rootA, rootE), meshed("db-1", rootA, rootE)},
		Peers: []Peer{{Name: "east", Roots: []string{rootE, rootF}, Minting: []string{rootE, rootF}, Propagated: []string{rootE, rootA}}}}
	o.Workloads = map[podtrust.Workload]WorkloadState{}
	for _, p := range o.Pods {
		o.Workloads[p.Workload] = WorkloadState{}
	}
	return o
}

// TestAPeersNewRootIsRestartedForHere: a rotation started in east alone
// has this cluster, Stable, restart its own workloads for east's new root
// (once Linkerd's trust roots here hold it, one first until a re-created
// pod holds it), signing on under its own root, until every pod holds it
// and east's switch may go on.
func TestAPeersNewRootIsRestartedForHere(t *testing.T) {
	cfgR := cfg
	cfgR.Restarts = true
	o := eastRotating()
	d := Decide(cfgR, o)
	if d.Status.PeerRoot != rootF || len(d.Restart) != 0 || d.RequeueAfter != settleTime {
		t.Fatalf("the bundle just gained east's root: peer root %q, restarts %v, requeue %s; want %s, none yet, again in %s", d.Status.PeerRoot, d.Restart, d.RequeueAfter, rootF, settleTime)
	}
	if d.Event == nil || d.Event.Reason != "PeerRootPropagating" || !strings.Contains(d.Event.Detail, "linked cluster east's root") {
		t.Errorf("event %+v, want PeerRootPropagating naming east", d.Event)
	}
	o.Prev, o.Now = &d.Status, t0.Add(3*time.Second)
	d = Decide(cfgR, o)
	if !slices.Equal(d.Restart, []podtrust.Workload{o.Pods[1].Workload}) || d.Status.Phase != v1alpha1.RotationStable || d.Status.SigningRoot != rootA {
		t.Fatalf("restarts %v, phase %s, signing %s; want %s alone (none re-created holds the root yet), Stable under %s", d.Restart, d.Status.Phase, d.Status.SigningRoot, o.Pods[1].Workload, rootA)
	}
	if d.Status.PodsBehind != 3 || !strings.Contains(d.Status.Message, "3 of 3 pods here do not hold linked cluster east's root") || d.Event != nil {
		t.Errorf("behind %d, message %q, event %+v; want 3 behind named, no new event", d.Status.PodsBehind, d.Status.Message, d.Event)
	}
	// api re-created holding it: the others are restarted, two at once.
	api := meshed("api-2", rootA, rootE, rootF)
	api.RestartedFor = rootF
	o.Pods[1] = api
	o.Prev, o.Now = &d.Status, t0.Add(10*time.Second)
	d = Decide(cfgR, o)
	if len(d.Restart) != 2 || len(d.Status.Restarted) != 3 {
		t.Fatalf("restarts %v, recorded %v; want db and web now, all three recorded", d.Restart, d.Status.Restarted)
	}
	// Every pod holds it: nothing left to restart, east reads it propagated.
	o.Pods[0], o.Pods[2] = meshed("web-2", rootA, rootE, rootF), meshed("db-2", rootA, rootE, rootF)
	o.Prev, o.Now = &d.Status, t0.Add(20*time.Second)
	d = Decide(cfgR, o)
	i := slices.IndexFunc(d.Status.Propagation, func(r v1alpha1.RootPropagation) bool { return r.Fingerprint == rootF })
	if d.Status.PeerRoot != "" || d.Status.Restarted != nil || d.Status.PodsBehind != 0 || i < 0 || !d.Status.Propagation[i].Propagated {
		t.Fatalf("peer root %q, restarted %v, behind %d, propagation %+v; want done, %s propagated", d.Status.PeerRoot, d.Status.Restarted, d.Status.PodsBehind, d.Status.Propagation, rootF)
	}
}

// TestNoRestartForAPeersRootWhenItIsNotTheClustersToRestart: restarts off,
// a root the peer only drains, a peer that cannot be read, and a rotation
// of this cluster's own under way each leave the peer's root to propagate
// without a restart for it.
func TestNoRestartForAPeersRootWhenItIsNotTheClustersToRestart(t *testing.T) {
	cfgR := cfg
	cfgR.Restarts = true
	settled := func(o Observed) Observed {
		d := Decide(cfgR, o)
		o.Prev, o.Now = &d.Status, o.Now.Add(time.Minute)
		return o
	}
	for name, tc := range map[string]struct {
		cfg Config
		o   func(Observed) Observed
	}{
		"restarts off": {cfg, func(o Observed) Observed { return o }},
		"a root it drains": {cfgR, func(o Observed) Observed {
			o.Peers[0].Minting = []string{rootE}
			return o
		}},
		"unreachable": {cfgR, func(o Observed) Observed {
			o.Prev.Peers = []v1alpha1.PeerStatus{{Name: "east", Reachable: true, Roots: []string{rootE, rootF}}}
			o.Peers = []Peer{{Name: "east", Err: "connection refused"}}
			return o
		}},
	} {
		o := settled(tc.o(eastRotating()))
		d := Decide(tc.cfg, o)
		if d.Status.PeerRoot != "" || len(d.Restart) != 0 || d.Status.Phase != v1alpha1.RotationStable {
			t.Errorf("%s: peer root %q, restarts %v, phase %s; want none, Stable", name, d.Status.PeerRoot, d.Restart, d.Status.Phase)
		}
	}
	// A rotation of its own: its restarts are for its own next root.
	o := settled(eastRotating())
	o.Anchor, o.SpecSecret = rootB, "anchor-next"
	o.Bundle = append(o.Bundle, rootB)
	o.Prev.BundleGainedAt = nil
	o = settled(o)
	d := Decide(cfgR, o)
	if d.Status.PeerRoot != "" || d.Status.NextRoot != rootB || len(d.Restart) != 1 {
		t.Fatalf("own rotation: peer root %q, next %q, restarts %v; want restarts for %s alone", d.Status.PeerRoot, d.Status.NextRoot, d.Restart, rootB)
	}
	for _, w := range d.Status.Restarted {
		if w.Workload != d.Restart[0].String() {
			t.Errorf("restarted %v, want only the restart for %s recorded", d.Status.Restarted, rootB)
		}
	}
}
