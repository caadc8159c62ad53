package rotation

import (
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

var (
	t0  = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	cfg = Config{MaxConcurrentRestarts: 2, LeafLifetime: 24 * time.Hour}
)

const (
	rootA = "AA"
	rootB = "BB"
)

func meshed(name string, roots ...string) *podtrust.Pod {
	return &podtrust.Pod{Namespace: "app", Name: name, ControlPlane: "linkerd", Inline: roots, Created: t0.Add(-time.Hour),
		Workload: podtrust.Workload{Kind: "Deployment", Namespace: "app", Name: strings.Split(name, "-")[0]}}
}

func controlPlane(component string, started time.Time) *podtrust.Pod {
	return &podtrust.Pod{Namespace: "linkerd", Name: component + "-1", ControlPlane: "linkerd", Component: component, FromConfigMap: true,
		Created: started, Started: &started, ComponentStarted: &started, Workload: podtrust.Workload{Kind: "Deployment", Namespace: "linkerd", Name: "linkerd-" + component}}
}

func stable(root, secret string) *v1alpha1.RotationStatus {
	return &v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, SigningRoot: root, SigningSecretName: secret}
}

func TestFirstSightAdoptsTheAnchorInPlace(t *testing.T) {
	d := Decide(cfg, Observed{Now: t0, SpecSecret: "anchor", Anchor: rootA, Bundle: []string{rootA}, Pods: []*podtrust.Pod{meshed("web-1", rootA)}})
	if d.Status.Phase != v1alpha1.RotationStable || d.Status.SigningRoot != rootA || d.Status.SigningSecretName != "anchor" {
		t.Fatalf("status = %+v, want Stable under %s from anchor", d.Status, rootA)
	}
	if !slices.Equal(d.Trusted, []string{rootA}) || d.Reissue || d.Event == nil {
		t.Fatalf("trusted %v reissue %v event %v; want [AA], no re-issue, an event", d.Trusted, d.Reissue, d.Event)
	}
}

func TestNewSecretKeepsSigningUnderThePreviousRootUntilEveryPodHoldsTheNew(t *testing.T) {
	o := Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor-next", Anchor: rootB, SigningKeyHeld: true,
		Bundle: []string{rootA}, Pods: []*podtrust.Pod{meshed("web-1", rootA), meshed("web-2", rootA, rootB)}}
	d := Decide(cfg, o)
	if d.Status.Phase != v1alpha1.RotationPropagating || d.Status.SigningRoot != rootA || d.Status.SigningSecretName != "anchor" {
		t.Fatalf("status = %+v; want Propagating, still signing under AA from anchor", d.Status)
	}
	if !slices.Equal(d.Trusted, []string{rootA, rootB}) {
		t.Fatalf("trusted = %v, want both roots before anything uses the new one", d.Trusted)
	}
	if d.Status.BundleGainedAt != nil || d.Reissue {
		t.Fatalf("the bundle does not hold BB yet: gained %v, reissue %v", d.Status.BundleGainedAt, d.Reissue)
	}
	// The bundle gains BB; one pod still holds AA alone.
	o.Prev, o.Now, o.Bundle = &d.Status, t0.Add(time.Minute+300*time.Millisecond), []string{rootA, rootB}
	d = Decide(cfg, o)
	if d.Status.BundleGainedAt == nil || !d.Status.BundleGainedAt.Equal(&metav1.Time{Time: t0.Add(time.Minute + time.Second)}) {
		t.Fatalf("bundleGainedAt = %v, want when first seen, rounded up to the second the API keeps", d.Status.BundleGainedAt)
	}
	if d.Status.PodsBehind != 1 || d.Status.PodsTotal != 2 || !slices.Equal(d.Status.Behind, []string{"app/web-1"}) || d.Reissue {
		t.Fatalf("behind %d/%d %v reissue %v; want 1/2 [app/web-1], no switch", d.Status.PodsBehind, d.Status.PodsTotal, d.Status.Behind, d.Reissue)
	}
	if !strings.Contains(d.Status.Message, "rollout restart") {
		t.Fatalf("message %q does not say what to do", d.Status.Message)
	}
	// The pod is replaced by one admitted with both roots: switch.
	o.Prev, o.Now, o.Pods = &d.Status, t0.Add(2*time.Minute), []*podtrust.Pod{meshed("web-3", rootA, rootB), meshed("web-2", rootA, rootB)}
	d = Decide(cfg, o)
	if d.Status.Phase != v1alpha1.RotationSwitching || d.Status.SigningRoot != rootB || d.Status.SigningSecretName != "anchor-next" || !d.Reissue {
		t.Fatalf("status = %+v reissue %v; want Switching to BB from anchor-next, re-issued", d.Status, d.Reissue)
	}
	if !slices.Equal(d.Trusted, []string{rootB, rootA}) || len(d.Status.RetiringRoots) != 1 || d.Status.RetiringRoots[0].Since != nil {
		t.Fatalf("trusted %v retiring %+v; want AA kept, its drain not started", d.Trusted, d.Status.RetiringRoots)
	}
}

func TestOverwrittenSecretHoldsWithTheDeadline(t *testing.T) {
	expiry := t0.Add(20 * time.Hour)
	d := Decide(cfg, Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootB, SigningKeyHeld: false,
		Bundle: []string{rootA, rootB}, Pods: []*podtrust.Pod{meshed("web-1", rootA), meshed("web-2", rootA), controlPlane("identity", t0.Add(-time.Hour))},
		Identity: IdentityIssuer{Root: rootA, NotAfter: expiry}})
	st := d.Status
	if st.Phase != v1alpha1.RotationHeld || st.SigningRoot != rootA || d.Reissue {
		t.Fatalf("status = %+v; want Held, signing root unchanged, no re-issue", st)
	}
	if st.Deadline == nil || !st.Deadline.Time.Equal(expiry) || st.PodsBehind != 3 {
		t.Fatalf("deadline %v behind %d; want the identity issuer's expiry and 3 behind (the identity pod started before the bundle gained BB)", st.Deadline, st.PodsBehind)
	}
	for _, want := range []string{"held", "Secret anchor no longer holds", "3 of 3", expiry.Format(time.RFC3339)} {
		if !strings.Contains(st.Message, want) {
			t.Errorf("message %q lacks %q", st.Message, want)
		}
	}
	if d.Event == nil || !d.Event.Warning || d.Event.Reason != "RotationHeld" {
		t.Fatalf("event = %+v, want a Warning RotationHeld", d.Event)
	}
	if !slices.Equal(d.Trusted, []string{rootA, rootB}) {
		t.Fatalf("trusted = %v: the old root must stay", d.Trusted)
	}
}

func TestConfigMapPodsHoldOnlyWhatTheyStartedWith(t *testing.T) {
	gained := metav1.NewTime(t0)
	bundle := []string{rootA, rootB}
	for _, tc := range []struct {
		name string
		pod  *podtrust.Pod
		want bool
	}{
		{"started before the gain", controlPlane("identity", t0.Add(-time.Second)), false},
		{"started after the gain", controlPlane("identity", t0.Add(time.Second)), true},
		{"not started yet, the bundle holds it", &podtrust.Pod{FromConfigMap: true}, true},
		{"inline without it", meshed("a", rootA), false},
		{"inline with it", meshed("a", rootA, rootB), true},
		{"unparsable env", &podtrust.Pod{Invalid: "bad"}, false},
	} {
		if got := Holds(tc.pod, rootB, &gained, bundle); got != tc.want {
			t.Errorf("%s: Holds = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestSwitchConfirmedThenDrained(t *testing.T) {
	switched := metav1.NewTime(t0)
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationSwitching, SigningRoot: rootB, SigningSecretName: "anchor", SwitchedAt: &switched,
		RetiringRoots: []v1alpha1.RetiringRoot{{Fingerprint: rootA}}}
	o := Observed{Now: t0.Add(time.Minute), Prev: prev, SpecSecret: "anchor", Anchor: rootB, Bundle: []string{rootA, rootB}, TrustedFound: true,
		Pods:     []*podtrust.Pod{meshed("web-1", rootA, rootB), controlPlane("identity", t0.Add(-time.Hour))},
		Identity: IdentityIssuer{Root: rootA, NotBefore: t0.Add(-time.Hour)}}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationSwitching || !d.Reissue {
		t.Fatalf("issuer still under AA: phase %s reissue %v; want Switching, re-issued", d.Status.Phase, d.Reissue)
	}
	// Re-issued at t0+30s with NotBefore backdated: an IssuerUpdated
	// between the two is of the previous issuer, and confirms nothing.
	o.Identity = IdentityIssuer{Root: rootB, NotBefore: t0.Add(-30 * time.Second), Written: t0.Add(30 * time.Second), Updated: t0.Add(10 * time.Second)}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationSwitching || d.Reissue {
		t.Fatalf("issued under BB, identity not confirmed: phase %s reissue %v; want Switching, no re-issue", d.Status.Phase, d.Reissue)
	}
	o.Identity.Updated = t0.Add(40 * time.Second)
	d := Decide(cfg, o)
	if d.Status.Phase != v1alpha1.RotationDraining || d.Status.RetiringRoots[0].Since == nil || !slices.Contains(d.Trusted, rootA) {
		t.Fatalf("confirmed: %+v trusted %v; want Draining with AA kept", d.Status, d.Trusted)
	}
	if d.RequeueAfter <= 0 || d.RequeueAfter > cfg.LeafLifetime {
		t.Fatalf("requeue after %s, want the drain's end", d.RequeueAfter)
	}
	// Not drained before the leaf lifetime while an older pod lives.
	o.Prev, o.Now = &d.Status, t0.Add(23*time.Hour)
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationDraining {
		t.Fatalf("23h after the switch: %s, want Draining", d.Status.Phase)
	}
	// Drained once every pod was created since the confirmation.
	young := meshed("web-9", rootB)
	young.Created = t0.Add(2 * time.Hour)
	o.Pods = []*podtrust.Pod{young}
	d = Decide(cfg, o)
	if d.Status.Phase != v1alpha1.RotationStable || !slices.Equal(d.Trusted, []string{rootB}) {
		t.Fatalf("every pod restarted since: %s trusted %v; want Stable with BB alone", d.Status.Phase, d.Trusted)
	}
	// Or once the leaf lifetime has passed.
	o.Pods, o.Now = []*podtrust.Pod{meshed("web-1", rootA, rootB)}, t0.Add(25*time.Hour)
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationStable {
		t.Fatalf("25h after: %s, want Stable: %+v", d.Status.Phase, d.Status)
	}
}

func TestIdentityRestartConfirmsTheSwitch(t *testing.T) {
	switched := metav1.NewTime(t0)
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationSwitching, SigningRoot: rootB, SigningSecretName: "anchor", SwitchedAt: &switched,
		RetiringRoots: []v1alpha1.RetiringRoot{{Fingerprint: rootA}}}
	o := Observed{Now: t0.Add(time.Minute), Prev: prev, SpecSecret: "anchor", Anchor: rootB,
		Pods: []*podtrust.Pod{controlPlane("identity", t0.Add(10*time.Second))}, Identity: IdentityIssuer{Root: rootB, NotBefore: t0.Add(-40 * time.Second), Written: t0.Add(20 * time.Second)}}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationSwitching {
		t.Fatalf("identity started before the new issuer: %s, want Switching", d.Status.Phase)
	}
	o.Pods = []*podtrust.Pod{controlPlane("identity", t0.Add(30*time.Second))}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationDraining {
		t.Fatalf("identity started after the new issuer: %s, want Draining", d.Status.Phase)
	}
}

func TestRestartsControlPlaneFirstOneCanaryThenBounded(t *testing.T) {
	c := cfg
	c.Restarts = true
	gained := metav1.NewTime(t0)
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: rootA, SigningSecretName: "anchor", NextRoot: rootB, BundleGainedAt: &gained}
	o := Observed{Now: t0.Add(time.Second), Prev: prev, SpecSecret: "next", Anchor: rootB, SigningKeyHeld: true, Bundle: []string{rootA, rootB},
		Pods: []*podtrust.Pod{controlPlane("identity", t0.Add(-time.Hour)), controlPlane("destination", t0.Add(-time.Hour)),
			meshed("web-1", rootA), meshed("api-1", rootA), meshed("db-1", rootA), {Namespace: "app", Name: "bare", ControlPlane: "linkerd", Inline: []string{rootA}, Workload: podtrust.Workload{Namespace: "app", Name: "bare"}}}}
	o.Workloads = map[podtrust.Workload]WorkloadState{}
	for _, p := range o.Pods {
		if p.Workload.Restartable() {
			o.Workloads[p.Workload] = WorkloadState{}
		}
	}
	if d := Decide(c, o); len(d.Restart) != 0 || d.RequeueAfter == 0 {
		t.Fatalf("a second after the gain: restart %v requeue %s; want none yet, and a requeue", d.Restart, d.RequeueAfter)
	}
	o.Now = t0.Add(time.Minute)
	d := Decide(c, o)
	if len(d.Restart) != 2 || d.Restart[0].Namespace != "linkerd" || d.Restart[1].Namespace != "linkerd" {
		t.Fatalf("restart = %v; want the two control-plane Deployments first", d.Restart)
	}
	if !slices.Equal(d.Status.Unrestartable, []string{"app/bare"}) || !strings.Contains(d.Status.Message, "app/bare") {
		t.Fatalf("unrestartable %v message %q; want the bare pod named", d.Status.Unrestartable, d.Status.Message)
	}
	// The control plane restarted and holds BB: one data-plane canary.
	o.Pods = append([]*podtrust.Pod{controlPlane("identity", t0.Add(time.Minute)), controlPlane("destination", t0.Add(time.Minute))}, o.Pods[2:]...)
	d = Decide(c, o)
	if len(d.Restart) != 1 || d.Restart[0].Name != "api" {
		t.Fatalf("restart = %v; want one canary (api, in pod order)", d.Restart)
	}
	// The canary is in flight: nothing more until a re-created pod is seen.
	o.Workloads[podtrust.Workload{Kind: "Deployment", Namespace: "app", Name: "api"}] = WorkloadState{RestartedFor: rootB, RestartedAt: t0.Add(time.Minute)}
	if d = Decide(c, o); len(d.Restart) != 0 || d.Status.Restarting != 1 {
		t.Fatalf("restart = %v restarting %d; want none while the canary is unverified", d.Restart, d.Status.Restarting)
	}
	// A re-created pod holds BB: up to two in flight.
	fresh := meshed("api-2", rootA, rootB)
	fresh.RestartedFor = rootB
	o.Pods = append(o.Pods, fresh)
	if d = Decide(c, o); len(d.Restart) != 1 || d.Restart[0].Name == "api" {
		t.Fatalf("restart = %v; want one more beside the canary, never the canary again", d.Restart)
	}
	// A re-created pod without BB stops restarts.
	stale := meshed("api-3", rootA)
	stale.RestartedFor = rootB
	o.Pods = append(o.Pods, stale)
	if d = Decide(c, o); len(d.Restart) != 0 || !strings.Contains(d.Status.Message, "restarts stopped") {
		t.Fatalf("restart = %v message %q; want restarts stopped", d.Restart, d.Status.Message)
	}
}

func TestANewerRootDuringARotationStartsOver(t *testing.T) {
	gained := metav1.NewTime(t0)
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: rootA, SigningSecretName: "anchor", NextRoot: rootB, BundleGainedAt: &gained}
	d := Decide(cfg, Observed{Now: t0.Add(time.Minute), Prev: prev, SpecSecret: "third", Anchor: "CC", SigningKeyHeld: true, Bundle: []string{rootA, rootB},
		Pods: []*podtrust.Pod{meshed("web-1", rootA, rootB)}})
	if d.Status.NextRoot != "CC" || d.Status.BundleGainedAt != nil || d.Reissue || !slices.Equal(d.Trusted, []string{rootA, "CC"}) {
		t.Fatalf("status %+v trusted %v; want CC propagating from scratch, BB (never signed under) dropped", d.Status, d.Trusted)
	}
}

func TestResumesFromItsOwnStatus(t *testing.T) {
	// A controller killed after writing a status decides the same again.
	o := Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootB, Bundle: []string{rootA, rootB},
		Pods: []*podtrust.Pod{meshed("web-1", rootA)}, Identity: IdentityIssuer{Root: rootA, NotAfter: t0.Add(time.Hour)}}
	first := Decide(cfg, o)
	o.Prev, o.Now = &first.Status, t0.Add(time.Second)
	second := Decide(cfg, o)
	if first.Status.Phase != second.Status.Phase || !slices.Equal(first.Trusted, second.Trusted) || second.Event != nil ||
		!second.Status.LastTransitionTime.Equal(&first.Status.LastTransitionTime) || !second.Status.BundleGainedAt.Equal(first.Status.BundleGainedAt) {
		t.Fatalf("first %+v\nsecond %+v: a second decision on the same cluster must agree, with no new event", first.Status, second.Status)
	}
}

func TestALostStatusDrainsWhatTheTrustedSetHolds(t *testing.T) {
	d := Decide(cfg, Observed{Now: t0, SpecSecret: "anchor", Anchor: rootB, Trusted: []string{rootB, rootA}, Bundle: []string{rootA, rootB},
		Pods: []*podtrust.Pod{meshed("web-1", rootA, rootB)}})
	if d.Status.SigningRoot != rootB || d.Status.Phase != v1alpha1.RotationDraining || !slices.Equal(d.Trusted, []string{rootB, rootA}) {
		t.Fatalf("status %+v trusted %v; want BB signed under and AA draining, not dropped", d.Status, d.Trusted)
	}
}
