// Package rotation decides, from what the controller observed of the
// cluster, where an issuer's trust anchor rotation stands and what to do
// next: which roots stay trusted, which root to sign under, whether to have
// the identity issuer re-issued, which workloads to restart. It does no I/O:
// the controller observes and acts, so every decision is a pure function of
// the cluster's state and a controller restarted in any phase resumes.
//
// The invariants it keeps are ../shared/ROTATION.md's: sign only under a
// root every meshed and control-plane pod holds (I1, I4), and drop a root
// from the trusted set only once no leaf under it can be alive (I2).
package rotation

import (
	"fmt"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// Config is the controller's rotation settings.
type Config struct {
	// Restarts has the controller restart the workloads that are behind.
	Restarts bool
	// MaxConcurrentRestarts bounds the workloads restarting at once.
	MaxConcurrentRestarts int
	// LeafLifetime is how long a proxy certificate lives (Linkerd's
	// identity.issuer.issuanceLifetime, 24h by default): a retired root
	// leaves the trusted set that long after the switch.
	LeafLifetime time.Duration
	// RestartTimeout is how long a restarted workload may go on having pods
	// behind before it is named stalled and stops holding a restart slot.
	RestartTimeout time.Duration
}

// Event is a phase change worth an Event.
type Event struct {
	Warning        bool
	Reason, Detail string
}

// Decision is what the controller does next.
type Decision struct {
	Status v1alpha1.RotationStatus
	// Trusted are the roots the trusted set must hold, signing root first.
	Trusted []string
	// Reissue has cert-manager issue the identity issuer now, as
	// `cmctl renew` does.
	Reissue bool
	// Restart are the workloads to restart now, for Status.NextRoot.
	Restart []podtrust.Workload
	Event   *Event
	// RequeueAfter is when time alone changes the decision (a drain ends).
	RequeueAfter time.Duration
	// Drift is set when Linkerd's trust roots lack a root the mesh needs:
	// nothing switches or restarts until they hold it again.
	Drift string
	// accepted says why a switch left pods behind, by the operator's word.
	accepted string
}

// settleTime separates the bundle's gaining a root from the restarts it
// calls for: start times are kept to the second, so a pod restarted within
// the second of the gain could not be told to hold the root.
const settleTime = 2 * time.Second

// MaxListed bounds the pods a status names.
const MaxListed = 5

// Decide is the next step of an issuer's rotation.
func Decide(cfg Config, o Observed) Decision {
	// A finished pod (a Job's, an evicted one) runs no proxy: it can break
	// nothing, so it blocks nothing.
	if slices.ContainsFunc(o.Pods, func(p *podtrust.Pod) bool { return !p.Live() }) {
		o.Pods = slices.DeleteFunc(slices.Clone(o.Pods), func(p *podtrust.Pod) bool { return !p.Live() })
	}
	st, keyHeld := start(o)
	if r, ok := o.Roots[st.SigningRoot]; ok {
		st.SigningRootKey = r.Key
	}
	// The same key renewed: the Secret's key still signs for the root in
	// use, so nothing holds.
	keyHeld = keyHeld || (o.renewedCopy(st.SigningRoot) && o.Keys[o.Anchor] != "")
	d := Decision{}
	st.PodsBehind, st.Behind, st.Unrestartable, st.Blocked, st.Restarting, st.Deadline = 0, nil, nil, nil, 0, nil
	st.PodsTotal = int32(len(o.Pods))
	unlink(o, &st)
	st.TrustRootsMissing = missing(o, st)
	if len(st.TrustRootsMissing) > 0 {
		d.Drift = fmt.Sprintf("Linkerd's trust roots lack %d root(s) the trusted set keeps (%s), so a pod admitted now would not trust the identity issuer: make trust-manager's Bundle for them take the trusted set as its only source; nothing switches or restarts until they hold it",
			len(st.TrustRootsMissing), shortList(st.TrustRootsMissing))
	}
	switch {
	case o.Anchor == "" || st.SigningRoot == "":
		st.Message = "the trust anchor Secret holds no usable root; nothing changes until it does"
	case o.Anchor != st.SigningRoot:
		propagate(cfg, o, keyHeld, &st, &d)
	default:
		settle(cfg, o, &st, &d)
	}
	// A root this very step retired, and whose removal Linkerd's trust
	// roots already show (the trusted set is written before the status, so
	// a status write lost after it is decided again), is no drift: only the
	// roots still kept count.
	if st.TrustRootsMissing = missing(o, st); len(st.TrustRootsMissing) == 0 {
		d.Drift = ""
	}
	if d.Drift != "" {
		st.Message = d.Drift + "; " + st.Message
	}
	d.Trusted = trusted(st)
	link(o, &st, &d)
	peerRoot := st.PeerRoot
	restartForPeers(cfg, o, &st, &d)
	if st.NextRoot == "" && st.PeerRoot == "" {
		st.Restarted = nil
	}
	switch {
	case d.accepted != "":
		st.LastTransitionTime = metav1.NewTime(o.Now)
		d.Event = &Event{Warning: true, Reason: "RotationSwitchAccepted", Detail: d.accepted}
	case o.Prev == nil || o.Prev.Phase != st.Phase:
		st.LastTransitionTime = metav1.NewTime(o.Now)
		d.Event = phaseEvent(st)
	case d.Drift != "" && len(o.Prev.TrustRootsMissing) == 0:
		d.Event = &Event{Warning: true, Reason: "TrustRootsDrift", Detail: d.Drift}
	case st.PeerRoot != "" && st.PeerRoot != peerRoot:
		d.Event = &Event{Reason: "PeerRootPropagating", Detail: st.Message}
	}
	d.Status = st
	return d
}

// ceil is t rounded up to the second. The API keeps times to the second; a
// time the gate waits from is rounded up, never down, so that a pod started,
// or a drain ended, within that second is never taken to be after it.
func ceil(t time.Time) *metav1.Time {
	r := metav1.NewTime(t.Truncate(time.Second))
	if !r.Equal(&metav1.Time{Time: t}) {
		r = metav1.NewTime(r.Add(time.Second))
	}
	return &r
}

func trusted(st v1alpha1.RotationStatus) []string {
	var out []string
	for _, fp := range append([]string{st.SigningRoot, st.NextRoot}, retiring(st)...) {
		if fp != "" && !slices.Contains(out, fp) {
			out = append(out, fp)
		}
	}
	return out
}

func retiring(st v1alpha1.RotationStatus) []string {
	out := make([]string, 0, len(st.RetiringRoots))
	for _, r := range st.RetiringRoots {
		out = append(out, r.Fingerprint)
	}
	return out
}

func shortList(fps []string) string {
	out := make([]string, len(fps))
	for i, fp := range fps {
		out[i] = fp
		if len(fp) > 16 {
			out[i] = fp[:16]
		}
	}
	return strings.Join(out, ", ")
}

func phaseEvent(st v1alpha1.RotationStatus) *Event {
	return &Event{Warning: st.Phase == v1alpha1.RotationHeld, Reason: "Rotation" + string(st.Phase), Detail: st.Message}
}
