package rotation

import (
	"fmt"
	"slices"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// Holds says whether a pod's proxy trusts root. Inline roots are parsed
// from the pod; a proxy that reads the ConfigMap holds what it held when it
// started, so it holds root only if it started after the bundle gained it
// (or has not started yet, and the bundle holds root now).
func Holds(p *podtrust.Pod, root string, gained *metav1.Time, bundle []string) bool {
	switch {
	case p.Inline != nil:
		return slices.Contains(p.Inline, root)
	case !p.FromConfigMap:
		return false
	case p.Started == nil:
		return slices.Contains(bundle, root)
	default:
		return gained != nil && p.Started.After(gained.Time)
	}
}

// Behind are the pods that do not hold root, sorted by key.
func Behind(pods []*podtrust.Pod, root string, gained *metav1.Time, bundle []string) []*podtrust.Pod {
	var out []*podtrust.Pod
	for _, p := range pods {
		if !Holds(p, root, gained, bundle) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b *podtrust.Pod) int { return podtrust.CompareKeys(*a, *b) })
	return out
}

func list(now time.Time, st *v1alpha1.RotationStatus, behind []*podtrust.Pod, nodes map[string]string) {
	st.PodsBehind = int32(len(behind))
	for _, p := range behind {
		if len(st.Behind) < MaxListed {
			st.Behind = append(st.Behind, p.Key())
		}
		switch {
		case p.Invalid != "":
			block(st, fmt.Sprintf("pod %s: its proxy trusts no root (%s); fix its injection, then re-create it", p.Key(), p.Invalid))
		case p.DeleteBy != nil && now.After(*p.DeleteBy):
			block(st, stuck(p, nodes))
		case p.Workload.Owner != "":
			block(st, fmt.Sprintf("%s: this controller does not restart a %s; restart it by its own controller (for an Argo Rollout: kubectl argo rollouts restart), or delete its pods", p.Workload, p.Workload.Owner))
		case !p.Workload.Restartable() && len(st.Unrestartable) < MaxListed:
			st.Unrestartable = append(st.Unrestartable, p.Key())
		}
	}
}

// stuck says what holds a pod still there past its grace period, and the
// step that removes it.
func stuck(p *podtrust.Pod, nodes map[string]string) string {
	since := fmt.Sprintf("pod %s: terminating past its grace period (%s)", p.Key(), p.DeleteBy.UTC().Format(time.RFC3339))
	force := fmt.Sprintf("kubectl delete pod --force -n %s %s", p.Namespace, p.Name)
	notReady, looked := nodes[p.NodeName]
	switch {
	case len(p.Finalizers) > 0:
		return fmt.Sprintf("%s, held by finalizer(s) %v: the controller that set them removes them, or remove them yourself once it is safe", since, p.Finalizers)
	case p.NodeName == "":
		return fmt.Sprintf("%s, on no node: %s", since, force)
	case !looked:
		return fmt.Sprintf("%s, on node %s: if the node is lost, %s", since, p.NodeName, force)
	case notReady != "":
		return fmt.Sprintf("%s, on node %s, which is not Ready (%s), so no kubelet stops it: once the node is known to be down, %s", since, p.NodeName, notReady, force)
	}
	return fmt.Sprintf("%s, on node %s, which is Ready: its kubelet has not stopped it (kubectl describe pod -n %s %s); if it never does, %s", since, p.NodeName, p.Namespace, p.Name, force)
}

// block names something only an operator can unblock, once.
func block(st *v1alpha1.RotationStatus, what string) {
	if len(st.Blocked) < 2*MaxListed && !slices.Contains(st.Blocked, what) {
		st.Blocked = append(st.Blocked, what)
	}
}

// planRestarts picks the workloads to restart now, for root: the control plane's
// first, then the data plane's, at most MaxConcurrentRestarts in flight,
// and one alone until a re-created pod is seen holding the new root. A
// workload already restarted for this root is never restarted again; one
// that still has pods behind RestartTimeout later is stalled, named, and
// no longer holds a slot. Workloads a restart cannot replace (paused,
// OnDelete, gone) are named with their manual step. If a re-created pod
// does not hold the root (the injector serves a stale bundle), restarts
// stop and stalled says why.
func planRestarts(cfg Config, o Observed, root string, st *v1alpha1.RotationStatus, behind []*podtrust.Pod) (restart []podtrust.Workload, restarting int32, stalled string) {
	verified := false
	for _, p := range o.Pods {
		if p.RestartedFor != root || p.Inline == nil {
			continue
		}
		if !slices.Contains(p.Inline, root) {
			return nil, 0, fmt.Sprintf("restarts stopped: pod %s was re-created for the new root but does not hold it, so Linkerd's proxy injector serves a stale bundle; restart the proxy injector, then that pod's workload (kubectl rollout restart), and restarts resume", p.Key())
		}
		verified = true
	}
	controlPlane := slices.ContainsFunc(behind, func(p *podtrust.Pod) bool { return p.Component != "" })
	inFlight := map[podtrust.Workload]bool{}
	var candidates, redo []podtrust.Workload
	records := make(map[string]v1alpha1.RestartedWorkload, len(st.Restarted))
	for _, r := range st.Restarted {
		records[r.Workload] = r
	}
	for _, p := range behind {
		w := p.Workload
		if !w.Restartable() || (controlPlane && p.Component == "") {
			continue
		}
		ws, found := o.Workloads[w]
		rec, recorded := records[w.String()]
		if !recorded && ws.RestartedFor == root {
			// Restarted before the status recorded it (a status lost, or
			// written by an older controller): the annotation says when.
			rec, recorded = v1alpha1.RestartedWorkload{At: metav1.NewTime(ws.RestartedAt)}, true
		}
		switch {
		case !found:
			block(st, fmt.Sprintf("%s (of pod %s) is not found, so no restart replaces the pod: delete the pod, or its ReplicaSet if no Deployment owns it", w, p.Key()))
		case ws.Manual != "":
			block(st, fmt.Sprintf("%s: %s", w, ws.Manual))
		case recorded && ws.RestartedFor != root && ws.Generation == rec.Generation:
			// Recorded, but its write never landed (the controller stopped
			// between the two): the same write again, in the slot it holds.
			inFlight[w] = true
			if !slices.Contains(redo, w) {
				redo = append(redo, w)
			}
		case recorded && ws.RestartedFor != root:
			block(st, fmt.Sprintf("%s: restarted for the new root at %s, but its pod template changed since and its %s annotation is gone (removed by hand or by a GitOps sync), and a workload is restarted once per root: if its pods are still behind, kubectl rollout restart it",
				w, rec.At.UTC().Format(time.RFC3339), podtrust.RestartedForAnnotation))
		case cfg.RestartTimeout > 0 && !rec.At.IsZero() && o.Now.Sub(rec.At.Time) > cfg.RestartTimeout:
			block(st, fmt.Sprintf("%s: restarted for the new root at %s and still has pods behind after %s, so its rollout is stalled (kubectl rollout status); it no longer holds a restart slot",
				w, rec.At.UTC().Format(time.RFC3339), cfg.RestartTimeout))
		case recorded:
			inFlight[w] = true
		case !slices.Contains(candidates, w):
			candidates = append(candidates, w)
		}
	}
	limit := max(cfg.MaxConcurrentRestarts, 1)
	if !verified && !controlPlane {
		limit = 1
	}
	for _, w := range candidates {
		if len(inFlight)+len(restart) >= limit {
			break
		}
		if len(st.Restarted) >= MaxRestartRecords {
			block(st, fmt.Sprintf("%d workloads were restarted for the new root, as many as the status records: restart the rest of those behind by hand (kubectl rollout restart)", MaxRestartRecords))
			break
		}
		// Recorded before it is done: the status is written before the
		// restart, so a restart is never repeated, even when its annotation
		// is stripped; the generation tells a write that never landed.
		st.Restarted = append(st.Restarted, v1alpha1.RestartedWorkload{Workload: w.String(), At: metav1.NewTime(o.Now), Generation: o.Workloads[w].Generation})
		restart = append(restart, w)
	}
	return append(redo, restart...), int32(len(inFlight) + len(restart)), ""
}

// MaxRestartRecords bounds status.rotation.restarted (its CRD's maxItems).
const MaxRestartRecords = 1000
