package rotator

import (
	"context"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
)

// A linked cluster is read at most every peerInterval (a reconcile here
// on every pod change reads the last result), and every 3 × peerInterval
// when nothing else moves the rotation: in Stable, 2 requests (its issuer,
// its trust roots) every 30 s per peer. A read gives up after peerTimeout:
// the peer is then unreachable, which blocks a switch and a retire, never
// the signing.
const (
	peerInterval = 10 * time.Second
	peerTimeout  = 10 * time.Second
)

// peerResync is when to read the linked clusters again: soon after one
// could not be read, so its return is seen within seconds.
func peerResync(o *observed) time.Duration {
	for _, p := range o.Peers {
		if p.Err != "" {
			return 5 * time.Second
		}
	}
	return 3 * peerInterval
}

// observePeers reads the peers the issuer names; their roots' certificates
// join the ones the trusted set is written from.
func (r *Reconciler) observePeers(ctx context.Context, iss v1alpha1.GenericIssuer, o *observed) {
	refs := iss.GetSpec().Rotation.Peers
	o.Linked = len(refs) > 0
	if !o.Linked {
		return
	}
	if r.Peers == nil {
		for _, p := range refs {
			o.Peers = append(o.Peers, rotation.Peer{Name: p.Name,
				Err: "this controller does not read linked clusters: start it with --multicluster (Helm value multicluster.enabled=true)"})
		}
		return
	}
	for _, read := range r.Peers.ReadAll(ctx, refs) {
		for _, c := range read.Certs {
			o.add(c)
		}
		o.Peers = append(o.Peers, read.Peer)
	}
}
