package cli

import (
	"fmt"
	"slices"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
)

const checkLinked = "linked clusters are read, and their roots trusted here"

// linkedCheck reports each linked cluster's trust state: failing one that
// cannot be read (no switch or retire happens until it is), warning while
// a root it keeps has not reached every pod here, passing otherwise.
func linkedCheck(name string, spec *v1alpha1.RotationSpec, st *v1alpha1.RotationStatus, now time.Time) []identitycheck.Result {
	if spec == nil || len(spec.Peers) == 0 {
		return nil
	}
	var out []identitycheck.Result
	for _, ref := range spec.Peers {
		var peer *v1alpha1.PeerStatus
		if st != nil {
			if i := slices.IndexFunc(st.Peers, func(p v1alpha1.PeerStatus) bool { return p.Name == ref.Name }); i >= 0 {
				peer = &st.Peers[i]
			}
		}
		r := identitycheck.Result{Name: checkLinked, Status: identitycheck.Pass, Detail: fmt.Sprintf("%s: linked cluster %s: read, its roots trusted and held by every pod here", name, ref.Name)}
		switch {
		case peer == nil:
			r.Status, r.Detail = identitycheck.Warn, fmt.Sprintf("%s: linked cluster %s has not been read yet: is the controller running with --multicluster (Helm value multicluster.enabled)?", name, ref.Name)
		case !peer.Reachable:
			since := "never read"
			if peer.LastRead != nil {
				since = "last read " + now.Sub(peer.LastRead.Time).Round(time.Second).String() + " ago"
			}
			r.Status, r.Detail = identitycheck.Fail, fmt.Sprintf("%s: linked cluster %s cannot be read (%s; %s): no root is switched to or retired until it is; check its link Secret %s (`linkerd-ca multicluster link` makes it again)",
				name, ref.Name, peer.Error, since, ref.KubeconfigSecretName)
		default:
			for _, fp := range peer.Roots {
				i := slices.IndexFunc(st.Propagation, func(rp v1alpha1.RootPropagation) bool { return rp.Fingerprint == fp })
				if i < 0 || !st.Propagation[i].Propagated {
					behind, total := int32(0), int32(0)
					if i >= 0 {
						behind, total = st.Propagation[i].PodsBehind, st.Propagation[i].PodsTotal
					}
					r.Status, r.Detail = identitycheck.Warn, fmt.Sprintf("%s: linked cluster %s's root %s has not reached every pod here (%d of %d behind): its rotation waits for them; restart them", name, ref.Name, shortRoot(fp), behind, total)
					break
				}
			}
		}
		out = append(out, r)
	}
	return out
}

// shortRoot is a fingerprint's first 8 bytes, as colon-separated hex
// shows them: enough to tell roots apart in a line.
func shortRoot(fp string) string {
	if len(fp) > 23 {
		return fp[:23]
	}
	return fp
}
