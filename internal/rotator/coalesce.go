package rotator

import (
	"context"
	"time"

	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// podSettle is how long pod events gather before the rotation reconciles
// for them. A rollout is a stream of pod events (created, scheduled,
// started, ready, deleted: several per pod), and a reconcile reads the
// anchor and identity issuer Secrets from the API server: without this,
// a rotation over thousands of pods would reconcile, and read, on each. A
// reconcile then comes at most this long after the pod event that moves
// the rotation, and once per this long while they keep coming.
const podSettle = time.Second

// podEvents enqueues the rotating issuers of a pod's control plane,
// podSettle after the event: the queue keeps one entry per issuer, so the
// events in between are one reconcile.
func (r *Reconciler) podEvents() handler.EventHandler {
	type queue = workqueue.TypedRateLimitingInterface[reconcile.Request]
	add := func(ctx context.Context, pod client.Object, q queue) {
		for _, req := range r.rotating(ctx, podtrust.ControlPlaneOf(pod)) {
			q.AddAfter(req, podSettle)
		}
	}
	return handler.TypedFuncs[client.Object, reconcile.Request]{
		CreateFunc:  func(ctx context.Context, e event.TypedCreateEvent[client.Object], q queue) { add(ctx, e.Object, q) },
		UpdateFunc:  func(ctx context.Context, e event.TypedUpdateEvent[client.Object], q queue) { add(ctx, e.ObjectNew, q) },
		DeleteFunc:  func(ctx context.Context, e event.TypedDeleteEvent[client.Object], q queue) { add(ctx, e.Object, q) },
		GenericFunc: func(ctx context.Context, e event.TypedGenericEvent[client.Object], q queue) { add(ctx, e.Object, q) },
	}
}
