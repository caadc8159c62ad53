package rotationwatch

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

func at(t0 time.Time, d time.Duration) metav1.Time { return metav1.NewTime(t0.Add(d)) }

func TestTimelineSpansEachPhaseSeen(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	v := &View{Issuer: "LinkerdCAClusterIssuer linkerd"}
	v.Observe(v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, LastTransitionTime: at(t0, 0)})
	v.Observe(v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating, LastTransitionTime: at(t0, 0), PodsBehind: 1})
	v.Observe(v1alpha1.RotationStatus{Phase: v1alpha1.RotationSwitching, LastTransitionTime: at(t0, 2*time.Minute+10*time.Second)})
	v.Observe(v1alpha1.RotationStatus{Phase: v1alpha1.RotationDraining, LastTransitionTime: at(t0, 2*time.Minute+13*time.Second)})
	v.Now = t0.Add(3 * time.Minute)
	if got, want := v.Timeline(), "Propagating 2m10s → Switching 3s → Draining 47s"; got != want {
		t.Errorf("timeline %q, want %q", got, want)
	}
}

func TestDeadlineCountsDownThenSaysPast(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	d := at(t0, time.Hour)
	v := &View{Now: t0}
	v.Observe(v1alpha1.RotationStatus{Phase: v1alpha1.RotationHeld, Deadline: &d})
	if got := v.Deadline(); !strings.HasPrefix(got, "deadline in 1h0m0s (2026-12-07T13:00:00Z") || v.PastDeadline() {
		t.Errorf("an hour before: %q, past %v", got, v.PastDeadline())
	}
	v.Now = t0.Add(time.Hour + time.Minute)
	if got := v.Deadline(); !strings.HasPrefix(got, "PAST THE DEADLINE by 1m0s") || !v.PastDeadline() {
		t.Errorf("a minute after: %q, past %v", got, v.PastDeadline())
	}
	v.Observe(v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable, Deadline: &d})
	if v.PastDeadline() || v.Deadline() != "" {
		t.Error("a Stable rotation has no deadline to be past")
	}
}

type recorder struct{ shown, closed int }

func (r *recorder) Show(*View)  { r.shown++ }
func (r *recorder) Close(*View) { r.closed++ }
func (r *recorder) Live() bool  { return true }

func TestFollowEnds(t *testing.T) {
	gone := errors.New("LinkerdCAClusterIssuer linkerd was deleted")
	for _, tc := range []struct {
		name    string
		updates []Update
		want    error
	}{
		{"stable", []Update{{Status: &v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable}}}, nil},
		{"a retried read, then stable", []Update{{Err: errors.New("connection refused"), Retrying: true}, {Status: &v1alpha1.RotationStatus{Phase: v1alpha1.RotationStable}}}, nil},
		{"deleted", []Update{{Status: &v1alpha1.RotationStatus{Phase: v1alpha1.RotationPropagating}}, {Err: gone}}, gone},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ch := make(chan Update, len(tc.updates))
			for _, u := range tc.updates {
				ch <- u
			}
			r := &recorder{}
			if err := Follow(context.Background(), "LinkerdCAClusterIssuer linkerd", ch, r, Options{Tick: time.Hour}); !errors.Is(err, tc.want) {
				t.Fatalf("Follow: %v, want %v", err, tc.want)
			}
			if r.closed != 1 || r.shown == 0 {
				t.Errorf("shown %d times, closed %d: want shown, closed once", r.shown, r.closed)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Follow(ctx, "x", make(chan Update), &recorder{}, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted: %v, want context.Canceled", err)
	}
}
