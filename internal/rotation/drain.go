package rotation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// settle: the anchor Secret holds the signing root. Confirm a switch, then
// drain the retired roots.
func settle(cfg Config, o Observed, st *v1alpha1.RotationStatus, d *Decision) {
	st.NextRoot, st.BundleGainedAt, st.SigningSecretName, st.SigningKMSKey = "", nil, o.SpecSecret, o.SpecKMS.DeepCopy()
	if st.Phase == v1alpha1.RotationSwitching {
		if !confirmed(o, st) {
			// Linkerd's identity reports by an event, which nothing watches.
			d.RequeueAfter = 2 * time.Second
			d.Reissue = o.Identity.Root != st.SigningRoot
			st.Message = "waiting for Linkerd's identity service to load the identity issuer re-issued under the new root (event IssuerUpdated, or its restart)"
			if o.Identity.Root == st.SigningRoot && o.Identity.Skipped != "" {
				st.Message = fmt.Sprintf("Linkerd's identity service skipped the identity issuer re-issued under the new root (IssuerUpdateSkipped: %s): it does not trust that root, so restart it (kubectl rollout restart -n <control plane> deploy/linkerd-identity) once its pods hold the root", o.Identity.Skipped)
			}
			return
		}
		for i := range st.RetiringRoots {
			if st.RetiringRoots[i].Since == nil {
				st.RetiringRoots[i].Since = ceil(o.Now)
			}
		}
	}
	var next time.Duration
	var kept []string
	st.RetiringRoots = slices.DeleteFunc(st.RetiringRoots, func(r v1alpha1.RetiringRoot) bool {
		done, wait := drained(cfg, o, r)
		if !done && wait > 0 && (next == 0 || wait < next) {
			next = wait
		}
		// A linked cluster may still have leaves under it alive.
		if why := peersKeep(o, r.Fingerprint); done && why != "" {
			kept = append(kept, fmt.Sprintf("root %s: %s", shortList([]string{r.Fingerprint}), why))
			return false
		}
		return done
	})
	d.RequeueAfter = next
	if len(st.RetiringRoots) == 0 {
		st.Phase, st.Message = v1alpha1.RotationStable, "one root, trusted and signed under"
		return
	}
	st.Phase = v1alpha1.RotationDraining
	st.Message = fmt.Sprintf("the retired root stays trusted until no proxy certificate under it can be alive: %s after the switch, or once every meshed pod has restarted", cfg.LeafLifetime)
	if len(kept) > 0 {
		st.Message = "drained here, the retired root stays trusted until every linked cluster has drained it: " + strings.Join(kept, "; ")
	}
}

// confirmed: the identity issuer Secret chains to the new root, and
// Linkerd's identity service loaded it after it was written: an
// IssuerUpdated event, or every identity container started, since the
// write. The certificate's NotBefore is backdated, so it cannot tell.
func confirmed(o Observed, st *v1alpha1.RotationStatus) bool {
	if o.Identity.Root != st.SigningRoot || o.Identity.Written.IsZero() {
		return false
	}
	written := o.Identity.Written
	if !o.Identity.Updated.IsZero() && !o.Identity.Updated.Before(written) {
		return true
	}
	identity := 0
	for _, p := range o.Pods {
		if p.Component != "identity" {
			continue
		}
		identity++
		if p.ComponentStarted == nil || p.ComponentStarted.Before(written) {
			return false
		}
	}
	return identity > 0
}

// drained: no leaf under a retired root can be alive, or how long until.
func drained(cfg Config, o Observed, r v1alpha1.RetiringRoot) (bool, time.Duration) {
	if r.Since == nil {
		return false, 0
	}
	if end := r.Since.Add(cfg.LeafLifetime); !o.Now.Before(end) {
		return true, 0
	}
	for _, p := range o.Pods {
		if p.Created.Before(r.Since.Time) {
			return false, r.Since.Add(cfg.LeafLifetime).Sub(o.Now)
		}
	}
	return true, 0
}
