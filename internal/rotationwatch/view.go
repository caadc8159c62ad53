// Package rotationwatch follows a trust anchor rotation as `kubectl
// rollout status` follows a rollout: the issuer's status.rotation as it
// changes, drawn live on a terminal and as one line per change elsewhere,
// until the rotation is Stable, past its deadline, or out of time.
package rotationwatch

import (
	"fmt"
	"strings"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// Span is one phase of the rotation as the watch saw it: from Since (the
// status's lastTransitionTime) until the next span, or now.
type Span struct {
	Phase v1alpha1.RotationPhase
	Since time.Time
}

// View is what the watch knows: the latest status, the phases it saw, and
// the time the countdown is drawn at.
type View struct {
	// Issuer names the issuer: "LinkerdCAClusterIssuer linkerd-identity-issuer".
	Issuer string
	Status v1alpha1.RotationStatus
	Spans  []Span
	Now    time.Time
	// Note is the last trouble reading the issuer (a watch that failed and
	// is being retried); empty once a status arrives again.
	Note string
	// Unobserved: the status is not yet the controller's view of the spec.
	Unobserved string
}

// Observe takes a status read from the issuer.
func (v *View) Observe(st v1alpha1.RotationStatus) {
	v.Note = ""
	v.Status = st
	if n := len(v.Spans); n == 0 || v.Spans[n-1].Phase != st.Phase {
		since := st.LastTransitionTime.Time
		if n > 0 && since.Before(v.Spans[n-1].Since) {
			since = v.Spans[n-1].Since
		}
		v.Spans = append(v.Spans, Span{Phase: st.Phase, Since: since})
	}
}

// Stable says the rotation has ended (or there was none).
func (v *View) Stable() bool {
	return len(v.Spans) > 0 && v.Status.Phase == v1alpha1.RotationStable && v.Unobserved == ""
}

// PastDeadline says the identity issuer in place has expired while the
// rotation still needs it: the mesh has no valid issuer until it ends.
func (v *View) PastDeadline() bool {
	return len(v.Spans) > 0 && !v.Stable() && v.Status.Deadline != nil && v.Now.After(v.Status.Deadline.Time)
}

// Timeline is the phases seen so far with the time spent in each:
// "Propagating 2m10s → Switching 3s → Draining 12s".
func (v *View) Timeline() string {
	parts := make([]string, len(v.Spans))
	for i, s := range v.Spans {
		end := v.Now
		if i+1 < len(v.Spans) {
			end = v.Spans[i+1].Since
		}
		parts[i] = fmt.Sprintf("%s %s", s.Phase, round(end.Sub(s.Since)))
	}
	return strings.Join(parts, " → ")
}

// Holding is how many meshed pods hold the root the rotation waits for,
// out of how many.
func (v *View) Holding() (int, int) {
	total := int(v.Status.PodsTotal)
	return max(total-int(v.Status.PodsBehind), 0), total
}

// Headline names the issuer and what the rotation moves between.
func (v *View) Headline() string {
	st := v.Status
	switch {
	case st.NextRoot != "":
		return fmt.Sprintf("%s: rotating from root %s to %s", v.Issuer, short(st.SigningRoot), short(st.NextRoot))
	case len(st.RetiringRoots) > 0:
		return fmt.Sprintf("%s: signing under root %s, retiring %s", v.Issuer, short(st.SigningRoot), short(st.RetiringRoots[0].Fingerprint))
	}
	return fmt.Sprintf("%s: root %s", v.Issuer, short(st.SigningRoot))
}

// Workloads says what the controller restarts and what needs an operator.
func (v *View) Workloads() string {
	st := v.Status
	parts := []string{fmt.Sprintf("%d workloads restarted", len(st.Restarted))}
	if st.Restarting > 0 {
		parts = append(parts, fmt.Sprintf("%d with pods still behind", st.Restarting))
	}
	if n := len(st.Blocked); n > 0 {
		parts = append(parts, fmt.Sprintf("%d awaiting an operator", n))
	}
	if n := len(st.Unrestartable); n > 0 {
		parts = append(parts, fmt.Sprintf("%d pods no restart replaces", n))
	}
	return strings.Join(parts, ", ")
}

// Waiting is what the rotation waits for now.
func (v *View) Waiting() string {
	if v.Unobserved != "" {
		return v.Unobserved
	}
	return v.Status.Message
}

// Deadline counts down to status.rotation.deadline; empty without one.
func (v *View) Deadline() string {
	d := v.Status.Deadline
	if d == nil || v.Stable() {
		return ""
	}
	at := d.UTC().Format(time.RFC3339)
	if left := d.Sub(v.Now); left >= 0 {
		return fmt.Sprintf("deadline in %s (%s: the identity issuer in place expires)", round(left), at)
	}
	return fmt.Sprintf("PAST THE DEADLINE by %s (%s): the identity issuer in place has expired", round(v.Now.Sub(d.Time)), at)
}

func round(d time.Duration) time.Duration {
	if d < 0 {
		return 0
	}
	return d.Round(time.Second)
}

// short is a root's fingerprint cut to what a person compares.
func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12] + "…"
	}
	return fp
}
