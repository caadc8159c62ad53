package rotation

import (
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// propagating is a rotation from AA (Secret anchor) to BB (Secret next)
// whose bundle gained BB at t0.
func propagating() Observed {
	gained := metav1.NewTime(t0)
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: rootA, SigningSecretName: "anchor", NextRoot: rootB, BundleGainedAt: &gained}
	return Observed{Now: t0.Add(time.Minute), Prev: prev, SpecSecret: "next", Anchor: rootB, SigningKeyHeld: true, TrustedFound: true,
		Trusted: []string{rootA, rootB}, Bundle: []string{rootA, rootB}, BundleFound: true}
}

func TestFinishedPodsBlockNothing(t *testing.T) {
	o := propagating()
	job, evicted := meshed("report-1", rootA), meshed("web-old", rootA)
	job.Finished, evicted.Finished = corev1.PodSucceeded, corev1.PodFailed
	o.Pods = []*podtrust.Pod{meshed("web-1", rootA, rootB), job, evicted}
	d := Decide(cfg, o)
	if d.Status.Phase != v1alpha1.RotationSwitching || d.Status.PodsTotal != 1 || !d.Reissue {
		t.Fatalf("status %+v; want the switch, with the finished Job's pod and the evicted pod not counted", d.Status)
	}
}

func TestStuckAndBrokenPodsAreNamedWithTheirStep(t *testing.T) {
	o := propagating()
	lost, slow, held, graceful := meshed("web-1", rootA), meshed("web-2", rootA), meshed("web-3", rootA), meshed("web-4", rootA)
	broken := meshed("api-1")
	past, within := t0.Add(-time.Minute), t0.Add(time.Hour)
	lost.DeleteBy, slow.DeleteBy, held.DeleteBy, graceful.DeleteBy = &past, &past, &past, &within
	lost.NodeName, slow.NodeName, held.NodeName, graceful.NodeName = "node-lost", "node-ok", "node-ok", "node-lost"
	held.Finalizers = []string{"example.com/drain"}
	o.Nodes = map[string]string{"node-lost": "Ready=Unknown since 2026-12-01T11:00:00Z, NodeStatusUnknown", "node-ok": ""}
	broken.Inline, broken.Invalid = nil, "no PEM certificate"
	rollout := meshed("pay-1", rootA)
	rollout.Workload = podtrust.Workload{Namespace: "app", Name: "pay", Owner: "Rollout"}
	o.Pods = []*podtrust.Pod{lost, slow, held, graceful, broken, rollout}
	d := Decide(cfg, o)
	if d.Status.Phase != v1alpha1.RotationPropagating || d.Status.PodsBehind != 6 {
		t.Fatalf("status %+v; want Propagating with all six behind: a terminating pod counts until it is gone", d.Status)
	}
	for _, want := range []string{
		"app/web-1: terminating past its grace period (2026-12-01T11:59:00Z), on node node-lost, which is not Ready (Ready=Unknown since 2026-12-01T11:00:00Z, NodeStatusUnknown), so no kubelet stops it: once the node is known to be down, kubectl delete pod --force -n app web-1",
		"app/web-2: terminating past its grace period (2026-12-01T11:59:00Z), on node node-ok, which is Ready: its kubelet has not stopped it",
		"app/web-3: terminating past its grace period (2026-12-01T11:59:00Z), held by finalizer(s) [example.com/drain]",
		"app/api-1: its proxy trusts no root (no PEM certificate)", "Rollout app/pay",
	} {
		if !slices.ContainsFunc(d.Status.Blocked, func(b string) bool { return strings.Contains(b, want) }) {
			t.Errorf("blocked %q lacks %q", d.Status.Blocked, want)
		}
	}
	if slices.ContainsFunc(d.Status.Blocked, func(b string) bool { return strings.Contains(b, "web-4") }) {
		t.Errorf("blocked %q names a pod within its grace period", d.Status.Blocked)
	}
	if !strings.Contains(d.Status.Message, "5 need a manual step") {
		t.Errorf("message %q does not point at the blocked list", d.Status.Message)
	}
}

func TestALostStatusMidRotationResumesFromTheCluster(t *testing.T) {
	// The issuer was deleted and created again while Propagating: no status,
	// the anchor names the new root, the identity issuer in place chains to
	// the old one, and the trusted set (which outlived the issuer) holds both.
	o := Observed{Now: t0, SpecSecret: "next", Anchor: rootB, Trusted: []string{rootA, rootB}, TrustedFound: true,
		Bundle: []string{rootA, rootB}, BundleFound: true, Keys: map[string]string{rootA: "anchor", rootB: "next"},
		Pods:     []*podtrust.Pod{meshed("web-1", rootA)},
		Identity: IdentityIssuer{Root: rootA, NotAfter: t0.Add(20 * time.Hour)}}
	d := Decide(cfg, o)
	if d.Status.Phase != v1alpha1.RotationPropagating || d.Status.SigningRoot != rootA || d.Status.SigningSecretName != "anchor" || d.Status.NextRoot != rootB {
		t.Fatalf("status %+v; want Propagating from AA (its key still in Secret anchor) to BB, never Stable under BB", d.Status)
	}
	if !slices.Equal(d.Trusted, []string{rootA, rootB}) || d.Reissue {
		t.Fatalf("trusted %v reissue %v; want both roots kept, nothing re-issued", d.Trusted, d.Reissue)
	}
	// The old key is nowhere to be read: held, not adopted.
	o.Keys = map[string]string{rootB: "next"}
	if d := Decide(cfg, o); d.Status.Phase != v1alpha1.RotationHeld || d.Status.SigningRoot != rootA || d.Status.SigningSecretName != "" {
		t.Fatalf("status %+v; want Held under AA", d.Status)
	}
	// The record beside the trusted set agrees with the identity issuer: the
	// time the bundle gained BB is kept, and pods started since hold it.
	gained := metav1.NewTime(t0.Add(-time.Hour))
	o.Record = &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: rootA, SigningSecretName: "anchor", NextRoot: rootB, BundleGainedAt: &gained}
	if d := Decide(cfg, o); d.Status.BundleGainedAt == nil || !d.Status.BundleGainedAt.Equal(&gained) {
		t.Fatalf("bundleGainedAt %v, want the record's %v", d.Status.BundleGainedAt, gained)
	}
	// A record that the identity issuer contradicts is not used.
	o.Record.SigningRoot = rootB
	if d := Decide(cfg, o); d.Status.SigningRoot != rootA {
		t.Fatalf("signing root %s; want AA, the identity issuer's, over the record", d.Status.SigningRoot)
	}
}

func TestAMissingTrustedSetIsRebuiltFromLinkerdsTrustRoots(t *testing.T) {
	o := Observed{Now: t0, Prev: stable(rootB, "anchor"), SpecSecret: "anchor", Anchor: rootB, Bundle: []string{rootA, rootB}, BundleFound: true,
		Pods: []*podtrust.Pod{meshed("web-1", rootA, rootB)}}
	d := Decide(cfg, o)
	if !slices.Equal(d.Trusted, []string{rootB, rootA}) || d.Status.Phase != v1alpha1.RotationDraining {
		t.Fatalf("trusted %v phase %s; want AA kept from Linkerd's trust roots and drained, never the anchor alone", d.Trusted, d.Status.Phase)
	}
}

func TestDriftStopsTheSwitchAndTheRestarts(t *testing.T) {
	c := cfg
	c.Restarts = true
	o := propagating()
	// A Bundle that sources the anchor Secret: Linkerd's trust roots hold
	// the new root alone, though AA is still signed under.
	o.Bundle = []string{rootB}
	o.Pods = []*podtrust.Pod{meshed("web-1", rootB), meshed("api-1", rootA)}
	o.Workloads = map[podtrust.Workload]WorkloadState{{Kind: "Deployment", Namespace: "app", Name: "api"}: {}}
	d := Decide(c, o)
	if d.Drift == "" || !slices.Equal(d.Status.TrustRootsMissing, []string{rootA}) || len(d.Restart) != 0 {
		t.Fatalf("drift %q missing %v restart %v; want AA named missing and no restart", d.Drift, d.Status.TrustRootsMissing, d.Restart)
	}
	if d.Event == nil || d.Event.Reason != "TrustRootsDrift" || !d.Event.Warning || !strings.Contains(d.Status.Message, "take the trusted set as its only source") {
		t.Fatalf("event %+v message %q; want a Warning TrustRootsDrift saying what to fix", d.Event, d.Status.Message)
	}
	// Every pod holds BB, but AA is not in the bundle: still no switch.
	o.Pods = []*podtrust.Pod{meshed("web-1", rootB)}
	if d := Decide(c, o); d.Status.Phase == v1alpha1.RotationSwitching || d.Reissue {
		t.Fatalf("phase %s reissue %v; want no switch while the trust roots lack a root in use", d.Status.Phase, d.Reissue)
	}
	// Stable, and the bundle lacks the signing root: drift too.
	d = Decide(c, Observed{Now: t0, Prev: stable(rootA, "anchor"), SpecSecret: "anchor", Anchor: rootA, Bundle: []string{"CC"}, BundleFound: true, TrustedFound: true})
	if d.Drift == "" || d.Status.Phase != v1alpha1.RotationStable {
		t.Fatalf("drift %q phase %s; want drift reported", d.Drift, d.Status.Phase)
	}
}

func TestWorkloadsARestartCannotReplaceAreNamed(t *testing.T) {
	c := cfg
	c.Restarts, c.RestartTimeout = true, 10*time.Minute
	o := propagating()
	o.Pods = []*podtrust.Pod{meshed("paused-1", rootA), meshed("gone-1", rootA), meshed("slow-1", rootA), meshed("web-1", rootA)}
	o.Workloads = map[podtrust.Workload]WorkloadState{
		{Kind: "Deployment", Namespace: "app", Name: "paused"}: {Manual: "paused: kubectl rollout resume"},
		{Kind: "Deployment", Namespace: "app", Name: "slow"}:   {RestartedFor: rootB, RestartedAt: t0.Add(-time.Hour)},
		{Kind: "Deployment", Namespace: "app", Name: "web"}:    {},
	}
	d := Decide(c, o)
	if len(d.Restart) != 1 || d.Restart[0].Name != "web" || d.Status.Restarting != 1 {
		t.Fatalf("restart %v restarting %d; want web alone: the stalled one holds no slot", d.Restart, d.Status.Restarting)
	}
	for _, want := range []string{"Deployment app/paused: paused: kubectl rollout resume", "Deployment app/gone (of pod app/gone-1) is not found", "Deployment app/slow: restarted for the new root", "stalled"} {
		if !slices.ContainsFunc(d.Status.Blocked, func(b string) bool { return strings.Contains(b, want) }) {
			t.Errorf("blocked %q lacks %q", d.Status.Blocked, want)
		}
	}
}

func TestIssuerUpdateSkippedIsReported(t *testing.T) {
	switched := metav1.NewTime(t0)
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationSwitching, SigningRoot: rootB, SigningSecretName: "anchor", SwitchedAt: &switched,
		RetiringRoots: []v1alpha1.RetiringRoot{{Fingerprint: rootA}}}
	d := Decide(cfg, Observed{Now: t0.Add(time.Minute), Prev: prev, SpecSecret: "anchor", Anchor: rootB, TrustedFound: true,
		Identity: IdentityIssuer{Root: rootB, Written: t0.Add(10 * time.Second), Skipped: "issuer is not signed by a trusted root"}})
	if d.Status.Phase != v1alpha1.RotationSwitching || !strings.Contains(d.Status.Message, "IssuerUpdateSkipped: issuer is not signed by a trusted root") {
		t.Fatalf("phase %s message %q; want Switching, saying identity skipped the issuer", d.Status.Phase, d.Status.Message)
	}
}

// The trusted set is written before the status. A status write lost at a
// drain's end is decided again, with Linkerd's trust roots already without
// the retired root: that is the decision carried out, not drift.
func TestARootJustRetiredIsNoDrift(t *testing.T) {
	since := metav1.NewTime(t0)
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationDraining, SigningRoot: rootB, SigningSecretName: "anchor",
		RetiringRoots: []v1alpha1.RetiringRoot{{Fingerprint: rootA, Since: &since}}}
	o := Observed{Now: t0.Add(25 * time.Hour), Prev: prev, SpecSecret: "anchor", Anchor: rootB, TrustedFound: true,
		Trusted: []string{rootB}, Bundle: []string{rootB}, BundleFound: true, Pods: []*podtrust.Pod{meshed("web-1", rootA, rootB)}}
	d := Decide(cfg, o)
	if d.Status.Phase != v1alpha1.RotationStable || d.Drift != "" || len(d.Status.TrustRootsMissing) != 0 || d.Event == nil || d.Event.Reason == "TrustRootsDrift" {
		t.Errorf("status %+v drift %q event %+v; want Stable, no drift", d.Status, d.Drift, d.Event)
	}
	// Before the drain's end the same bundle is drift: AA is still needed.
	o.Now = t0.Add(time.Hour)
	if d := Decide(cfg, o); d.Drift == "" || d.Status.Phase != v1alpha1.RotationDraining {
		t.Errorf("AA dropped mid-drain: %+v, drift %q; want Draining with drift", d.Status, d.Drift)
	}
}

func TestARestartIsRecordedMadeAgainIfLostAndNotRepeatedWhenItsAnnotationIsStripped(t *testing.T) {
	c := cfg
	c.Restarts, c.RestartTimeout = true, time.Hour
	o := propagating()
	o.Pods = []*podtrust.Pod{meshed("web-1", rootA)}
	web := podtrust.Workload{Kind: "Deployment", Namespace: "app", Name: "web"}
	o.Workloads = map[podtrust.Workload]WorkloadState{web: {Generation: 1}}
	d := Decide(c, o)
	want := v1alpha1.RestartedWorkload{Workload: web.String(), At: metav1.NewTime(o.Now), Generation: 1}
	if len(d.Restart) != 1 || len(d.Status.Restarted) != 1 || d.Status.Restarted[0] != want {
		t.Fatalf("restart %v recorded %+v; want web restarted and recorded as %+v, in the status written before it", d.Restart, d.Status.Restarted, want)
	}
	// Still generation 1: the controller stopped before the patch (or its
	// cache has not seen it). The same write again, the record unchanged.
	o.Prev, o.Now = d.Status.DeepCopy(), o.Now.Add(10*time.Minute)
	d = Decide(c, o)
	if len(d.Restart) != 1 || d.Status.Restarting != 1 || len(d.Status.Blocked) != 0 || len(d.Status.Restarted) != 1 || d.Status.Restarted[0] != want {
		t.Fatalf("restart %v restarting %d blocked %v recorded %+v; want the same restart made again, in its own slot", d.Restart, d.Status.Restarting, d.Status.Blocked, d.Status.Restarted)
	}
	// Landed: in flight.
	o.Workloads[web] = WorkloadState{Generation: 2, RestartedFor: rootB, RestartedAt: want.At.Time}
	if d = Decide(c, o); len(d.Restart) != 0 || d.Status.Restarting != 1 || len(d.Status.Blocked) != 0 {
		t.Fatalf("restart %v restarting %d blocked %v; want web in flight", d.Restart, d.Status.Restarting, d.Status.Blocked)
	}
	// A GitOps sync stripped the annotation: never restarted twice, named.
	o.Workloads[web] = WorkloadState{Generation: 3}
	d = Decide(c, o)
	if len(d.Restart) != 0 || d.Status.Restarting != 0 || len(d.Status.Blocked) != 1 || !strings.Contains(d.Status.Blocked[0], "annotation is gone") {
		t.Fatalf("restart %v restarting %d blocked %v; want no second restart, no slot held, and web named", d.Restart, d.Status.Restarting, d.Status.Blocked)
	}
	if len(d.Status.Restarted) != 1 {
		t.Fatalf("recorded %v; want the record kept", d.Status.Restarted)
	}
	// A newer root starts the record over.
	o.Prev, o.Anchor = d.Status.DeepCopy(), "CC"
	if d = Decide(c, o); len(d.Status.Restarted) > 1 || (len(d.Status.Restarted) == 1 && !d.Status.Restarted[0].At.Time.Equal(o.Now)) {
		t.Fatalf("recorded %v for a newer root; want only this step's", d.Status.Restarted)
	}
}
