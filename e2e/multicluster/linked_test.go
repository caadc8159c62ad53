//go:build e2e

package multicluster

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/discovery"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// TestLinkedClustersRotateTogether links west and east, each with its own
// root, and rotates west's alone, under a watcher over both: east restarts
// its own workloads for west's new root, west's switch waits for east's
// pods to hold it (one Deployment paused there), and for east to be
// readable again when its API server is down; the old root leaves both
// clusters' trust roots only once drained. Each issuer is killed in a
// phase of its own. Then both rotate at once, and last each side removes
// the link mid-rotation.
func TestLinkedClustersRotateTogether(t *testing.T) {
	clusters := []*cluster{west, east}
	for _, k := range clusters {
		k.setUp(t)
	}
	for _, k := range clusters {
		k.link(t)
	}
	w1, e1 := west.anchorRoot(t), east.anchorRoot(t)
	start := time.Now()
	for _, k := range clusters {
		k.waitRotation(t, 90*time.Second, "Stable, its peer read", func(st *v1alpha1.RotationStatus) error {
			if st.Phase != v1alpha1.RotationStable || len(st.Peers) != 1 || !st.Peers[0].Reachable {
				return fmt.Errorf("peers %+v", st.Peers)
			}
			return nil
		})
		eventually(t, 60*time.Second, k.name+": Linkerd's trust roots hold both clusters' roots", func() error { return hasAll(k.trustRoots(t), w1, e1) })
	}
	t.Logf("linked: each cluster's trust roots hold both roots %s after the link Secrets", time.Since(start).Round(time.Millisecond))
	// A pod reading Linkerd's trust roots holds the peer's root only if it
	// started after they gained it, as far as the controller can tell: from
	// the second after it first saw them hold it.
	var gained time.Time
	for _, k := range clusters {
		peerRoot := map[*cluster]string{west: e1, east: w1}[k]
		st := k.waitRotation(t, 60*time.Second, "the peer's root seen in Linkerd's trust roots", func(st *v1alpha1.RotationStatus) error {
			i := slices.IndexFunc(st.Propagation, func(r v1alpha1.RootPropagation) bool { return r.Fingerprint == peerRoot })
			if i < 0 || st.Propagation[i].BundleGainedAt == nil {
				return fmt.Errorf("propagation %+v", st.Propagation)
			}
			return nil
		})
		for _, r := range st.Propagation {
			if r.Fingerprint == peerRoot && r.BundleGainedAt.After(gained) {
				gained = r.BundleGainedAt.Time
			}
		}
	}
	time.Sleep(time.Until(gained.Add(time.Second)))
	for _, k := range clusters {
		k.meshUp(t)
	}
	watchCtx, stopWatching := context.WithCancel(ctx)
	defer stopWatching()
	w, err := watchLinked(watchCtx, lifetime, west, east)
	if err != nil {
		t.Fatal(err)
	}
	asserted := false
	defer func() {
		if !asserted {
			w.assert(t)
		}
	}()
	for _, k := range clusters {
		if code, out, errOut := k.linkerdCA("check"); !strings.Contains(out+errOut, "linked cluster "+k.peer.name+": read") {
			t.Errorf("%s: linkerd-ca check (exit %d) does not report %s read:\n%s%s", k.name, code, k.peer.name, out, errOut)
		}
	}

	// A rotation started in west alone: east trusts its new root and
	// restarts its own workloads for it, but one is paused; west waits for
	// east's pods to hold it.
	east.pause(t, "api", true)
	rotated := time.Now()
	if code, out, errOut := west.linkerdCA("rotation", "start"); code != 0 {
		t.Fatalf("west: linkerd-ca rotation start: exit %d\n%s%s", code, out, errOut)
	}
	w2 := west.anchorRoot(t)
	if w2 == w1 {
		t.Fatal("west's issuer still names its first root")
	}
	both := kubeconfig(t, west, east)
	if code, out := east.linkerdCAIn(both, "rotation", "start", "--all-linked"); code == 0 || !strings.Contains(out, "linked cluster west: ") || !strings.Contains(out, "is already rotating") {
		t.Errorf("east: rotation start --all-linked while west rotates: exit %d, want a refusal naming west:\n%s", code, out)
	}
	if east.anchorRoot(t) != e1 {
		t.Error("a refused --all-linked changed east's anchor")
	}
	eventually(t, 90*time.Second, "east's trust roots gain west's new root", func() error { return hasAll(east.trustRoots(t), w2) })
	west.waitRotation(t, within(3*time.Minute), "every pod of west holding the new root, waiting for east", func(st *v1alpha1.RotationStatus) error {
		if st.SigningRoot != w1 {
			return fmt.Errorf("switched to %s before east propagated it", short(st.SigningRoot))
		}
		if !strings.Contains(st.Message, "the switch waits for the linked clusters: peer east has not propagated it") {
			return fmt.Errorf("not waiting for east")
		}
		return nil
	})
	propagatedHere := time.Since(rotated)
	east.waitRotation(t, within(3*time.Minute), "restarting its workloads for west's new root, api paused", func(st *v1alpha1.RotationStatus) error {
		if st.PeerRoot != w2 || st.SigningRoot != e1 || st.Phase != v1alpha1.RotationStable {
			return fmt.Errorf("peer root %q, signing %s", short(st.PeerRoot), short(st.SigningRoot))
		}
		if !slices.ContainsFunc(st.Blocked, func(b string) bool { return strings.Contains(b, "Deployment apps/api: paused") }) || st.PodsBehind != int32(replicas) {
			return fmt.Errorf("%d behind, blocked %v; want api's %d pods behind, named paused", st.PodsBehind, st.Blocked, replicas)
		}
		return nil
	})
	eastRestarted := time.Since(rotated)
	webFor, webAt := east.restartedFor(t, "web")
	if webFor != w2 {
		t.Fatalf("east's web was restarted for %q, want west's new root %s", short(webFor), short(w2))
	}
	// Killed while it waits on the other: neither switches, neither
	// restarts a workload again.
	west.crash(t, "waiting for east")
	east.crash(t, "restarting its workloads for west's root")
	west.waitRotation(t, 90*time.Second, "waiting for east again", func(st *v1alpha1.RotationStatus) error {
		if st.SigningRoot != w1 || !strings.Contains(st.Message, "peer east has not propagated it") {
			return fmt.Errorf("signing under %s", short(st.SigningRoot))
		}
		return nil
	})
	east.waitRotation(t, 90*time.Second, "still restarting for west's root", func(st *v1alpha1.RotationStatus) error {
		if st.PeerRoot != w2 || st.PodsBehind != int32(replicas) {
			return fmt.Errorf("peer root %q, %d behind", short(st.PeerRoot), st.PodsBehind)
		}
		return nil
	})
	if gotFor, gotAt := east.restartedFor(t, "web"); gotFor != webFor || gotAt != webAt {
		t.Errorf("east's web restarted again after the crash: %s at %s, was at %s", short(gotFor), gotAt, webAt)
	}

	// East's API server down: west names it, and still does not switch.
	down := make(chan error, 1)
	go func() { down <- east.cp.RestartAPIServer(ctx, 20*time.Second) }()
	st := west.waitRotation(t, 90*time.Second, "east unreachable, named", func(st *v1alpha1.RotationStatus) error {
		if len(st.Peers) != 1 || st.Peers[0].Reachable || !strings.Contains(st.Message, "peer east cannot be read") {
			return fmt.Errorf("peers %+v", st.Peers)
		}
		return nil
	})
	if st.SigningRoot != w1 {
		t.Errorf("west switched to %s with east unreachable", short(st.SigningRoot))
	}
	if c := meta.FindStatusCondition(west.issuer(t).Status.Conditions, v1alpha1.ConditionLinkedClustersReachable); c == nil || c.Status != metav1.ConditionFalse || !strings.Contains(c.Message, "east (") {
		t.Errorf("west: condition %s = %+v with east down; want False naming east", v1alpha1.ConditionLinkedClustersReachable, c)
	}
	if code, out, errOut := west.linkerdCA("check"); code == 0 || !strings.Contains(out+errOut, "linked cluster east cannot be read") {
		t.Errorf("west: linkerd-ca check with east down: exit %d, want a failure naming east:\n%s%s", code, out, errOut)
	}
	if err := <-down; err != nil {
		t.Fatal(err)
	}
	// East's issuer lost its lease and exited, as controller-runtime makes
	// it; the kubelet would start it again, and again, until discovery
	// answers it: a new API server serves the issuer's user a moment after
	// it answers an admin (its authorizer's caches fill first).
	eventually(t, 60*time.Second, "east's API server serving discovery to the issuer", func() error {
		_, _, err := discovery.NewDiscoveryClientForConfigOrDie(east.cp.IssuerConfig).ServerGroupsAndResources()
		return err
	})
	// The watcher lists east again rather than wait out its informers'
	// back-off: nothing in east changed while it was down.
	if err := w.watch(watchCtx, east); err != nil {
		t.Fatal(err)
	}
	for attempt := 1; ; attempt++ {
		_, err := east.cp.RestartIssuerIfExited(ctx, "issuer")
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatal(err)
		}
		t.Logf("east's issuer did not start (%v): started again, as a kubelet would", err)
	}
	west.waitRotation(t, 90*time.Second, "east read again", func(st *v1alpha1.RotationStatus) error {
		if len(st.Peers) != 1 || !st.Peers[0].Reachable {
			return fmt.Errorf("peers %+v", st.Peers)
		}
		return nil
	})
	if c := meta.FindStatusCondition(west.issuer(t).Status.Conditions, v1alpha1.ConditionLinkedClustersReachable); c == nil || c.Status != metav1.ConditionTrue {
		t.Errorf("west: condition %s = %+v with east read again; want True", v1alpha1.ConditionLinkedClustersReachable, c)
	}

	// The operator resumes east's api: east's issuer restarts it, east
	// propagates the root, and west switches, re-issues and drains the old
	// root from both.
	restarted := time.Now()
	east.pause(t, "api", false)
	east.waitRotation(t, within(2*time.Minute), "west's new root propagated here", func(st *v1alpha1.RotationStatus) error {
		i := slices.IndexFunc(st.Propagation, func(r v1alpha1.RootPropagation) bool { return r.Fingerprint == w2 })
		if i < 0 || !st.Propagation[i].Propagated {
			return fmt.Errorf("propagation %+v", st.Propagation)
		}
		return nil
	})
	propagatedThere := time.Since(restarted)
	switched := west.waitRotation(t, within(2*time.Minute), "switched to the new root", func(st *v1alpha1.RotationStatus) error {
		if st.SigningRoot != w2 {
			return fmt.Errorf("signing under %s", short(st.SigningRoot))
		}
		return nil
	})
	switchedAt := time.Now()
	west.crash(t, "switched ("+string(switched.Phase)+")")
	west.waitRotation(t, within(3*time.Minute), "Stable under the new root", func(st *v1alpha1.RotationStatus) error {
		if st.Phase != v1alpha1.RotationStable || st.SigningRoot != w2 {
			return fmt.Errorf("not Stable under %s", short(w2))
		}
		return nil
	})
	for _, k := range clusters {
		eventually(t, 90*time.Second, k.name+": the old root gone from Linkerd's trust roots, the new one and east's kept", func() error {
			roots := k.trustRoots(t)
			if slices.Contains(roots, w1) {
				return fmt.Errorf("still holds %s", short(w1))
			}
			return hasAll(roots, w2, e1)
		})
	}
	drained := time.Now()
	t.Logf("west's rotation: its own pods held the new root, waiting for east, %s after the start; east's issuer had restarted all but the paused Deployment for it %s after the start; east's pods all held it %s after the resume; switched (%s) %s later; Stable and drained from both clusters %s after the switch",
		propagatedHere.Round(time.Second), eastRestarted.Round(time.Second), propagatedThere.Round(time.Second), switched.Phase, switchedAt.Sub(restarted.Add(propagatedThere)).Round(time.Second), drained.Sub(switchedAt).Round(time.Second))

	// Stable, a peer costs a few requests a minute: read every 30 s, two
	// GETs (its issuer, its trust roots), never a tight loop.
	before, trustedBefore := map[*cluster]float64{}, map[*cluster]string{}
	for _, k := range clusters {
		before[k], trustedBefore[k] = requestsTo(t, k, k.peer), k.trustedVersion(t)
	}
	time.Sleep(time.Minute)
	for _, k := range clusters {
		perMinute := requestsTo(t, k, k.peer) - before[k]
		// Nor does a read that changes nothing write the trusted set here
		// (each write wakes the controller, and would again).
		if v := k.trustedVersion(t); v != trustedBefore[k] {
			t.Errorf("%s's trusted set was written in a minute of Stable (resourceVersion %s → %s)", k.name, trustedBefore[k], v)
		}
		t.Logf("%s's issuer sent %s's API server %.0f requests in a minute of Stable", k.name, k.peer.name, perMinute)
		if perMinute > 10 {
			t.Errorf("%s's issuer sent %s %.0f requests in a minute of Stable, want a few (4: two GETs every 30 s)", k.name, k.peer.name, perMinute)
		}
	}

	// Rotated all at once: one next root for both; each restarts its own
	// pods, waits for the other's, switches and drains.
	allStart := time.Now()
	if code, out := west.linkerdCAIn(both, "rotation", "start", "--all-linked"); code != 0 || !strings.Contains(out, "one next root in 2 linked clusters") {
		t.Fatalf("west: rotation start --all-linked: exit %d\n%s", code, out)
	}
	shared := west.anchorRoot(t)
	if east.anchorRoot(t) != shared || shared == w2 || shared == e1 {
		t.Fatalf("--all-linked: west names %s, east %s; want one new root", short(shared), short(east.anchorRoot(t)))
	}
	east.waitRotation(t, within(2*time.Minute), "propagating the shared root", func(st *v1alpha1.RotationStatus) error {
		if st.NextRoot != shared {
			return fmt.Errorf("next root %q", short(st.NextRoot))
		}
		return nil
	})
	east.crash(t, "propagating the shared root")
	for _, k := range clusters {
		k.waitRotation(t, within(4*time.Minute), "Stable under the shared root", func(st *v1alpha1.RotationStatus) error {
			if st.Phase != v1alpha1.RotationStable || st.SigningRoot != shared {
				return fmt.Errorf("not Stable under %s", short(shared))
			}
			return nil
		})
	}
	for _, k := range clusters {
		eventually(t, 90*time.Second, k.name+": Linkerd's trust roots hold the shared root alone", func() error {
			if roots := k.trustRoots(t); !slices.Equal(roots, []string{shared}) {
				return fmt.Errorf("holds %v", roots)
			}
			return nil
		})
	}
	t.Logf("--all-linked: both clusters Stable under one shared root, the old ones drained, %s after the start", time.Since(allStart).Round(time.Second))

	// Unlinked, the clusters no longer trust each other's roots: the
	// watcher's invariants across the link end here.
	stopWatching()
	w.assert(t)
	asserted = true
	unlinkMidRotation(t, shared)
}

// requestsTo is how many requests from's issuer has sent to's API server,
// from client-go's rest_client_requests_total on its metrics endpoint.
func requestsTo(t *testing.T, from, to *cluster) float64 {
	t.Helper()
	u, err := url.Parse(to.cp.Config.Host)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + from.cp.IssuerMetricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	n := 0.0
	for _, m := range families["rest_client_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "host" && l.GetValue() == u.Host {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}
