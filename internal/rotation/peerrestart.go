package rotation

import (
	"fmt"
	"slices"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// restartForPeers: with no rotation of its own under way, a cluster whose
// controller restarts workloads restarts them for a linked cluster's root
// too, one that cluster signs under or is about to. That cluster switches
// only once every pod here holds it, and its leaves are verified here: left
// to the operator, a rotation started there alone would wait on a manual
// step in every other linked cluster.
func restartForPeers(cfg Config, o Observed, st *v1alpha1.RotationStatus, d *Decision) {
	prev := st.PeerRoot
	st.PeerRoot = ""
	// During a switch the identity issuer is being re-issued here: the
	// peer's root waits for the step after.
	if !cfg.Restarts || st.NextRoot != "" || d.Drift != "" || st.Phase == v1alpha1.RotationSwitching {
		return
	}
	rp, peer := peerRootBehind(o, *st, prev)
	if rp == nil {
		return
	}
	st.PeerRoot = rp.Fingerprint
	if st.PeerRoot != prev {
		st.Restarted = nil
	}
	behind := Behind(o.Pods, st.PeerRoot, rp.BundleGainedAt, o.Bundle)
	list(o.Now, st, behind, o.Nodes)
	what := fmt.Sprintf("linked cluster %s's root %s", peer, shortList([]string{st.PeerRoot}))
	if o.Now.Before(rp.BundleGainedAt.Add(settleTime)) {
		st.Message += fmt.Sprintf("; Linkerd's trust roots just gained %s: its restarts begin once a pod started now is sure to have started after that", what)
		if d.RequeueAfter == 0 || d.RequeueAfter > settleTime {
			d.RequeueAfter = settleTime
		}
		return
	}
	var stalled string
	d.Restart, st.Restarting, stalled = planRestarts(cfg, o, st.PeerRoot, st, behind)
	st.Message += fmt.Sprintf("; %d of %d pods here do not hold %s yet, which it switches to only once they do: restarting their workloads (%d rolling out)",
		st.PodsBehind, st.PodsTotal, what, st.Restarting)
	if stalled != "" {
		st.Message += "; " + stalled
	}
	if len(st.Unrestartable) > 0 {
		st.Message += fmt.Sprintf("; no restart replaces %v: delete or re-create them", st.Unrestartable)
	}
	if len(st.Blocked) > 0 {
		st.Message += fmt.Sprintf("; %d need a manual step (status.rotation.blocked)", len(st.Blocked))
	}
}

// peerRootBehind is the root of a reachable peer's minting that Linkerd's
// trust roots here hold but some pod here does not, and that peer's name:
// the one restarted for already while it still is, else the first in the
// spec's order. A root this cluster retires is no peer's to restart for.
func peerRootBehind(o Observed, st v1alpha1.RotationStatus, prev string) (*v1alpha1.RootPropagation, string) {
	var found *v1alpha1.RootPropagation
	var name string
	// A peer that cannot be read has no minting: what it was about to sign
	// under waits for it to be read again.
	for _, p := range o.Peers {
		for _, fp := range p.Minting {
			i := slices.IndexFunc(st.Propagation, func(r v1alpha1.RootPropagation) bool { return r.Fingerprint == fp })
			if i < 0 || fp == st.SigningRoot || isRetiring(st, fp) {
				continue
			}
			rp := &st.Propagation[i]
			if rp.Propagated || rp.BundleGainedAt == nil {
				continue
			}
			if fp == prev {
				return rp, p.Name
			}
			if found == nil {
				found, name = rp, p.Name
			}
		}
	}
	return found, name
}
