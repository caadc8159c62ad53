package rotator

import (
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// countsEvery bounds how often a status that differs only in its counts
// (pods behind, who, how many restarting) is written: a rollout changes
// them on every pod event, and each would be a write. Decisions never read
// these counts back, so a later write loses nothing.
const countsEvery = 5 * time.Second

// throttle remembers when each issuer's status was last written.
type throttle struct {
	mu   sync.Mutex
	last map[types.NamespacedName]time.Time
}

// wait is how long to hold a write of next over prev back: zero when it
// changes more than the counts, or the last write is countsEvery old.
func (t *throttle) wait(key types.NamespacedName, prev *v1alpha1.RotationStatus, next v1alpha1.RotationStatus, now time.Time) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	if prev == nil || !sameButCounts(*prev, next) {
		return 0
	}
	if since := now.Sub(t.last[key]); since < countsEvery {
		return countsEvery - since
	}
	return 0
}

func (t *throttle) wrote(key types.NamespacedName, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.last == nil {
		t.last = map[types.NamespacedName]time.Time{}
	}
	t.last[key] = now
}

func sameButCounts(a, b v1alpha1.RotationStatus) bool {
	a.PodsBehind, a.PodsTotal, a.Behind, a.Unrestartable, a.Restarting, a.Message = 0, 0, nil, nil, 0, ""
	b.PodsBehind, b.PodsTotal, b.Behind, b.Unrestartable, b.Restarting, b.Message = 0, 0, nil, nil, 0, ""
	a.Propagation, b.Propagation = withoutCounts(a.Propagation), withoutCounts(b.Propagation)
	return equality.Semantic.DeepEqual(a, b)
}

// withoutCounts is each root's propagation but its pod counts: peers read
// only whether it propagated.
func withoutCounts(in []v1alpha1.RootPropagation) []v1alpha1.RootPropagation {
	out := make([]v1alpha1.RootPropagation, len(in))
	for i, r := range in {
		r.PodsBehind, r.PodsTotal = 0, 0
		out[i] = r
	}
	return out
}
