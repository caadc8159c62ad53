package rotation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// propagate: the anchor Secret holds a root other than the signing root.
// It is trusted at once, and signed under once every pod holds it.
func propagate(cfg Config, o Observed, keyHeld bool, st *v1alpha1.RotationStatus, d *Decision) {
	if st.NextRoot != o.Anchor {
		st.NextRoot, st.BundleGainedAt, st.AcceptedBehind, st.Restarted = o.Anchor, nil, nil, nil
	}
	if st.BundleGainedAt == nil && slices.Contains(o.Bundle, st.NextRoot) {
		st.BundleGainedAt = ceil(o.Now)
	}
	behind := Behind(o.Pods, st.NextRoot, st.BundleGainedAt, o.Bundle)
	list(o.Now, st, behind, o.Nodes)
	// The operator's decision: only for this root, only once Linkerd's
	// trust roots hold it (else every pod admitted from now on breaks too).
	accepted := len(behind) > 0 && o.AcceptBehind != "" && o.AcceptBehind == st.NextRoot
	// Linked clusters verify leaves under it too: none may switch before
	// every one has propagated it, whatever the operator accepted here.
	peersWait := peersLack(o, st.NextRoot)
	if st.BundleGainedAt != nil && (len(behind) == 0 || accepted) && d.Drift == "" && peersWait == "" {
		if accepted {
			st.AcceptedBehind = nil
			for _, p := range behind {
				if len(st.AcceptedBehind) < 4*MaxListed {
					st.AcceptedBehind = append(st.AcceptedBehind, p.Key())
				}
			}
			d.accepted = fmt.Sprintf("switched to root %s with %d pod(s) behind, as the operator decided (annotation %s): %s; they do not trust the new identity issuer until restarted",
				shortList([]string{st.NextRoot}), len(behind), v1alpha1.AcceptBehindAnnotation, strings.Join(st.AcceptedBehind, ", "))
		}
		// Every pod holds the new root: sign under it from now on.
		st.RetiringRoots = slices.DeleteFunc(st.RetiringRoots, func(r v1alpha1.RetiringRoot) bool {
			return r.Fingerprint == st.NextRoot || r.Fingerprint == st.SigningRoot
		})
		st.RetiringRoots = append(st.RetiringRoots, v1alpha1.RetiringRoot{Fingerprint: st.SigningRoot})
		now := metav1.NewTime(o.Now)
		st.SigningRoot, st.SigningSecretName, st.SigningKMSKey = st.NextRoot, o.SpecSecret, o.SpecKMS.DeepCopy()
		st.NextRoot, st.BundleGainedAt, st.SwitchedAt = "", nil, &now
		st.Phase, st.PodsBehind, st.Behind = v1alpha1.RotationSwitching, 0, nil
		st.Message = "every pod holds the new root: the identity issuer is re-issued under it"
		if accepted {
			st.Message = d.accepted
		}
		d.Reissue = true
		return
	}
	st.Phase = v1alpha1.RotationPropagating
	if !keyHeld {
		st.Phase = v1alpha1.RotationHeld
	}
	copied := o.renewedCopy(st.SigningRoot)
	switch {
	case copied && !o.Roots[st.SigningRoot].NotAfter.IsZero():
		// Signing goes on; what ends is the old copy, the only one the
		// proxies behind hold.
		t := metav1.NewTime(o.Roots[st.SigningRoot].NotAfter)
		st.Deadline = &t
	case !o.Identity.NotAfter.IsZero():
		t := metav1.NewTime(o.Identity.NotAfter)
		st.Deadline = &t
	}
	switch {
	case st.BundleGainedAt == nil:
		st.Message = "waiting for Linkerd's trust roots to include the new root (trust-manager's Bundle must take the trusted set as its source)"
	case d.Drift != "":
		st.Message = fmt.Sprintf("%d of %d pods do not hold the new root yet", st.PodsBehind, st.PodsTotal)
	case cfg.Restarts && o.Now.Before(st.BundleGainedAt.Add(settleTime)):
		st.Message = "the bundle just gained the new root; restarts begin once a pod started now is sure to have started after that"
		d.RequeueAfter = settleTime
	case cfg.Restarts:
		var stalled string
		d.Restart, st.Restarting, stalled = planRestarts(cfg, o, st.NextRoot, st, behind)
		st.Message = fmt.Sprintf("%d of %d pods do not hold the new root yet; restarting their workloads (%d rolling out)", st.PodsBehind, st.PodsTotal, st.Restarting)
		if stalled != "" {
			st.Message = stalled
		}
	default:
		st.Message = fmt.Sprintf("%d of %d pods do not hold the new root yet; restart them (kubectl rollout restart), or turn on the controller's restarts", st.PodsBehind, st.PodsTotal)
	}
	if st.Phase == v1alpha1.RotationHeld {
		st.Message = fmt.Sprintf("held: Secret %s no longer holds the previous root's key (overwritten with the new root, or deleted), so nothing is signed until the new root has propagated; %s", st.SigningSecretName, st.Message)
		if st.Deadline != nil {
			st.Message += fmt.Sprintf("; the identity issuer in place expires at %s", st.Deadline.UTC().Format(time.RFC3339))
		}
	}
	if copied && st.Phase == v1alpha1.RotationPropagating {
		st.Message = "the root was renewed with the same key, so signing goes on under it; " + st.Message
		if st.Deadline != nil {
			st.Message += fmt.Sprintf("; the old copy, the only one they hold, expires at %s", st.Deadline.UTC().Format(time.RFC3339))
		}
	}
	if peersWait != "" && st.BundleGainedAt != nil && len(behind) == 0 && d.Drift == "" {
		st.Message = "every pod here holds the new root; the switch waits for the linked clusters: " + peersWait
	}
	if len(st.Unrestartable) > 0 {
		st.Message += fmt.Sprintf("; no restart replaces %v: delete or re-create them", st.Unrestartable)
	}
	if len(st.Blocked) > 0 {
		st.Message += fmt.Sprintf("; %d need a manual step (status.rotation.blocked)", len(st.Blocked))
	}
}
