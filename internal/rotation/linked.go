package rotation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// Peer is a linked cluster's issuer, as the controller read it.
type Peer struct {
	// Name is the peer's, as spec.rotation.peers names it.
	Name string
	// Err is why it could not be read now; "" when it was.
	Err string
	// Roots are the roots it keeps for itself: it signs under, propagates
	// or drains them.
	Roots []string
	// Minting are those of Roots it signs under or is about to (its signing
	// and next roots): leaves minted there under them are verified here.
	Minting []string
	// Propagated are the roots it reports every meshed pod of its holds;
	// nil when it publishes none (it does not link back).
	Propagated []string
}

// link trusts here the roots every linked peer keeps (those it kept when
// last read, while it cannot be read), records what was read of each, and
// publishes how far each trusted root has reached the pods here, which the
// peers read before they switch.
func link(o Observed, st *v1alpha1.RotationStatus, d *Decision) {
	st.Peers, st.Propagation = nil, nil
	if !o.Linked {
		return
	}
	now := metav1.NewTime(o.Now)
	for _, p := range o.Peers {
		ps := v1alpha1.PeerStatus{Name: p.Name, Reachable: p.Err == "", Error: p.Err, Roots: p.Roots, Propagated: p.Propagated, LastRead: &now}
		prev := prevPeer(o.Prev, p.Name)
		switch {
		case p.Err != "":
			ps.Roots, ps.Propagated, ps.LastRead = nil, nil, nil
			if prev != nil {
				ps.Roots, ps.Propagated, ps.LastRead = prev.Roots, prev.Propagated, prev.LastRead
			}
		case prev != nil && prev.LastRead != nil && o.Now.Sub(prev.LastRead.Time) < lastReadEvery && samePeer(*prev, ps):
			// A read that changes nothing is no reason for a status write.
			ps.LastRead = prev.LastRead
		}
		st.Peers = append(st.Peers, ps)
		for _, fp := range ps.Roots {
			if fp != "" && !slices.Contains(d.Trusted, fp) {
				d.Trusted = append(d.Trusted, fp)
			}
		}
	}
	for _, fp := range d.Trusted {
		st.Propagation = append(st.Propagation, propagationOf(o, *st, fp))
	}
}

// unlink: a peer no longer linked leaves its roots trusted here until the
// drain proves no leaf under them can be alive, as a retired root of this
// cluster's own.
func unlink(o Observed, st *v1alpha1.RotationStatus) {
	if o.Prev == nil {
		return
	}
	for _, prev := range o.Prev.Peers {
		if slices.ContainsFunc(o.Peers, func(p Peer) bool { return p.Name == prev.Name }) {
			continue
		}
		for _, fp := range prev.Roots {
			if fp != "" && fp != st.SigningRoot && fp != st.NextRoot && !isRetiring(*st, fp) {
				st.RetiringRoots = append(st.RetiringRoots, v1alpha1.RetiringRoot{Fingerprint: fp, Since: ceil(o.Now)})
			}
		}
	}
}

// propagationOf is how far root has reached the pods here. The signing
// root reached them all (no switch happens before); any other root is
// held by a proxy that reads Linkerd's trust roots only if it started
// after they gained it, first seen now when no earlier status says when.
func propagationOf(o Observed, st v1alpha1.RotationStatus, fp string) v1alpha1.RootPropagation {
	rp := v1alpha1.RootPropagation{Fingerprint: fp, PodsTotal: int32(len(o.Pods))}
	if !slices.Contains(o.Bundle, fp) {
		rp.PodsBehind = rp.PodsTotal
		return rp
	}
	switch fp {
	case st.NextRoot:
		rp.BundleGainedAt = st.BundleGainedAt
	case st.SigningRoot:
		rp.BundleGainedAt = &metav1.Time{}
	default:
		rp.BundleGainedAt = ceil(o.Now)
		if o.Prev != nil {
			if i := slices.IndexFunc(o.Prev.Propagation, func(r v1alpha1.RootPropagation) bool { return r.Fingerprint == fp }); i >= 0 && o.Prev.Propagation[i].BundleGainedAt != nil {
				rp.BundleGainedAt = o.Prev.Propagation[i].BundleGainedAt.DeepCopy()
			}
		}
	}
	rp.PodsBehind = int32(len(Behind(o.Pods, fp, rp.BundleGainedAt, o.Bundle)))
	rp.Propagated = rp.BundleGainedAt != nil && rp.PodsBehind == 0
	if fp == st.SigningRoot {
		rp.BundleGainedAt = nil
	}
	return rp
}

// peersLack says which linked peers keep a switch to root waiting: those
// that cannot be read, and those whose pods do not all hold it yet.
func peersLack(o Observed, root string) string {
	var out []string
	for _, p := range o.Peers {
		switch {
		case p.Err != "":
			out = append(out, fmt.Sprintf("peer %s cannot be read (%s)", p.Name, p.Err))
		case p.Propagated == nil:
			out = append(out, fmt.Sprintf("peer %s publishes no propagation (its issuer must name this cluster among its spec.rotation.peers)", p.Name))
		case !slices.Contains(p.Propagated, root):
			out = append(out, fmt.Sprintf("peer %s has not propagated it", p.Name))
		}
	}
	return strings.Join(out, "; ")
}

// peersKeep says which linked peers keep root trusted here: those that
// still keep it for themselves, and those that cannot be read.
func peersKeep(o Observed, root string) string {
	var out []string
	for _, p := range o.Peers {
		switch {
		case p.Err != "":
			out = append(out, fmt.Sprintf("peer %s cannot be read (%s)", p.Name, p.Err))
		case slices.Contains(p.Roots, root):
			out = append(out, fmt.Sprintf("peer %s still keeps it", p.Name))
		}
	}
	return strings.Join(out, "; ")
}

// lastReadEvery bounds how stale a peer's lastRead may be while nothing
// read of it changes.
const lastReadEvery = 5 * time.Minute

func samePeer(a, b v1alpha1.PeerStatus) bool {
	return a.Reachable == b.Reachable && a.Error == b.Error && slices.Equal(a.Roots, b.Roots) && slices.Equal(a.Propagated, b.Propagated)
}

func prevPeer(prev *v1alpha1.RotationStatus, name string) *v1alpha1.PeerStatus {
	if prev == nil {
		return nil
	}
	for i := range prev.Peers {
		if prev.Peers[i].Name == name {
			return &prev.Peers[i]
		}
	}
	return nil
}
