package rotation

import (
	"slices"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// start is where the rotation stands before this step, and whether the key
// of the root signed under is still at hand.
//
// With no status (a new issuer, or one deleted and created again by a Helm
// reinstall or an Argo CD replace) the state is rebuilt from the cluster,
// never taken from the anchor alone: the root the mesh runs on is the one
// the identity issuer in place chains to. If the anchor holds another, that
// is a rotation in progress, never Stable under a root no pod may hold.
// The record kept beside the trusted set, which outlives its issuer, is
// used only where it agrees with that evidence.
func start(o Observed) (v1alpha1.RotationStatus, bool) {
	if o.Prev != nil && o.Prev.SigningRoot != "" {
		st := *o.Prev.DeepCopy()
		if !o.TrustedFound {
			// The trusted set is gone (deleted, or a new name): it is
			// rebuilt from the status and Linkerd's trust roots, so that no
			// root the pods may need leaves the bundle with it.
			drainOthers(o, &st, o.Bundle)
		}
		return st, o.SigningKeyHeld
	}
	root := o.Anchor
	if o.Identity.Root != "" {
		root = o.Identity.Root
	}
	var st v1alpha1.RotationStatus
	if r := o.Record; r != nil && r.SigningRoot == root && root != "" {
		st = *r.DeepCopy()
		st.Message = ""
	} else {
		st = v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, SigningRoot: root}
	}
	st.SigningSecretName = o.Keys[root]
	if root == o.Anchor {
		st.SigningSecretName, st.SigningKMSKey = o.SpecSecret, o.SpecKMS.DeepCopy()
	}
	drainOthers(o, &st, append(slices.Clone(o.Trusted), o.Bundle...))
	return st, st.SigningSecretName != ""
}

// drainOthers: roots held beyond the ones in use (signed under, next, the
// anchor's) may still have leaves alive, so they drain, never drop.
func drainOthers(o Observed, st *v1alpha1.RotationStatus, held []string) {
	for _, fp := range held {
		if fp != st.SigningRoot && fp != st.NextRoot && fp != o.Anchor && !isRetiring(*st, fp) {
			st.RetiringRoots = append(st.RetiringRoots, v1alpha1.RetiringRoot{Fingerprint: fp, Since: ceil(o.Now)})
		}
	}
}

func isRetiring(st v1alpha1.RotationStatus, fp string) bool {
	return slices.ContainsFunc(st.RetiringRoots, func(r v1alpha1.RetiringRoot) bool { return r.Fingerprint == fp })
}

// missing are the roots Linkerd's trust roots must hold and do not: the
// one signed under and those retiring. A new root not there yet is only
// waited for; a ConfigMap not there at all (Linkerd not installed) is no
// drift.
func missing(o Observed, st v1alpha1.RotationStatus) []string {
	if !o.BundleFound || st.SigningRoot == "" {
		return nil
	}
	var out []string
	for _, fp := range append([]string{st.SigningRoot}, retiring(st)...) {
		if !slices.Contains(o.Bundle, fp) && !slices.Contains(out, fp) {
			out = append(out, fp)
		}
	}
	return out
}
