package rotator

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

func TestThrottleHoldsBackOnlyCounts(t *testing.T) {
	var th throttle
	key := types.NamespacedName{Name: "i"}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	prev := &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, SigningRoot: "A", NextRoot: "B", PodsBehind: 10, PodsTotal: 10}
	counts := *prev
	counts.PodsBehind, counts.Behind, counts.Message = 9, []string{"app/x"}, "9 of 10"
	if w := th.wait(key, prev, counts, now); w != 0 {
		t.Fatalf("never written: held back %s", w)
	}
	th.wrote(key, now)
	if w := th.wait(key, prev, counts, now.Add(time.Second)); w != 4*time.Second {
		t.Fatalf("counts a second after a write: held back %s, want 4s", w)
	}
	if w := th.wait(key, prev, counts, now.Add(countsEvery)); w != 0 {
		t.Fatalf("counts %s after a write: held back %s", countsEvery, w)
	}
	phase := counts
	phase.Phase = v1alpha1.RotationSwitching
	if w := th.wait(key, prev, phase, now.Add(time.Second)); w != 0 {
		t.Fatalf("a phase change was held back %s", w)
	}
	gained := counts
	gained.SwitchedAt = nil
	gained.RetiringRoots = []v1alpha1.RetiringRoot{{Fingerprint: "A"}}
	if w := th.wait(key, prev, gained, now.Add(time.Second)); w != 0 {
		t.Fatalf("a change of roots was held back %s", w)
	}
	// A linked issuer's propagation: its pod counts are counts; a root
	// propagated, which peers read, is not.
	prev.Propagation = []v1alpha1.RootPropagation{{Fingerprint: "E", PodsBehind: 10, PodsTotal: 10}}
	counts.Propagation = []v1alpha1.RootPropagation{{Fingerprint: "E", PodsBehind: 3, PodsTotal: 10}}
	if w := th.wait(key, prev, counts, now.Add(time.Second)); w != 4*time.Second {
		t.Fatalf("propagation counts a second after a write: held back %s, want 4s", w)
	}
	counts.Propagation = []v1alpha1.RootPropagation{{Fingerprint: "E", PodsTotal: 10, Propagated: true}}
	if w := th.wait(key, prev, counts, now.Add(time.Second)); w != 0 {
		t.Fatalf("a root propagated was held back %s", w)
	}
}

// TestTheRecordLeavesOutWhatEveryReadChanges: the record beside the trusted
// set holds no peers and no propagation, which change with every read and
// pod: it would rewrite the set, and wake the controller, each time. Nor
// the peer root restarted for, which goes with the restart records.
func TestTheRecordLeavesOutWhatEveryReadChanges(t *testing.T) {
	now := metav1.Now()
	st := v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, SigningRoot: "A", PeerRoot: "F",
		Peers:       []v1alpha1.PeerStatus{{Name: "east", Reachable: true, Roots: []string{"E"}, LastRead: &now}},
		Propagation: []v1alpha1.RootPropagation{{Fingerprint: "E", PodsBehind: 1, PodsTotal: 2}}}
	rec, err := record(st)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rec, "east") || strings.Contains(rec, "propagation") || strings.Contains(rec, "peerRoot") || !strings.Contains(rec, `"signingRoot":"A"`) {
		t.Errorf("record %s", rec)
	}
}

func TestResyncBacksOffWhereEventsMoveTheRotation(t *testing.T) {
	for _, tc := range []struct {
		phase    v1alpha1.RotationPhase
		restarts bool
		want     time.Duration
	}{
		{v1alpha1.RotationSwitching, false, resync},
		{v1alpha1.RotationPropagating, true, resync},
		{v1alpha1.RotationHeld, true, resync},
		{v1alpha1.RotationPropagating, false, 5 * time.Minute},
		{v1alpha1.RotationDraining, true, 5 * time.Minute},
	} {
		if got := resyncFor(tc.phase, tc.restarts); got != tc.want {
			t.Errorf("%s, restarts %v: resync %s, want %s", tc.phase, tc.restarts, got, tc.want)
		}
	}
}
