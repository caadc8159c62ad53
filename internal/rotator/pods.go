package rotator

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// PodLister is what a rotation reads of a control plane's meshed pods.
type PodLister func(ctx context.Context, controlPlane string) ([]*podtrust.Pod, error)

// IndexedPods lists a control plane's pods from the informer's own store,
// where the cache keeps each pod as a podtrust.Cached (podtrust.Compact):
// no List copy of the cache's objects, no pod read again. A mesh has one
// control plane or a few, so the store is filtered rather than indexed: an
// index would keep a second set of every pod's key.
func IndexedPods(ctx context.Context, c cache.Cache) (PodLister, error) {
	inf, err := c.GetInformer(ctx, &corev1.Pod{})
	if err != nil {
		return nil, fmt.Errorf("watching meshed pods: %w", err)
	}
	shared, ok := inf.(toolscache.SharedIndexInformer)
	if !ok {
		return nil, fmt.Errorf("the pod informer is a %T, not client-go's SharedIndexInformer", inf)
	}
	return func(_ context.Context, cp string) ([]*podtrust.Pod, error) {
		objs := shared.GetStore().List()
		pods := make([]*podtrust.Pod, 0, len(objs))
		for _, o := range objs {
			if pod, ok := o.(*podtrust.Cached); ok && pod.Proxied && pod.Pod.ControlPlane == cp {
				pods = append(pods, &pod.Pod) // the cache's own: read only
			}
		}
		return pods, nil
	}, nil
}

// listPods is the pods of a control plane through r.Pods, else read from a
// client List (a test's fake client, which holds whole pods).
func (r *Reconciler) listPods(ctx context.Context, cp string) ([]*podtrust.Pod, error) {
	if r.Pods != nil {
		return r.Pods(ctx, cp)
	}
	var list corev1.PodList
	if err := r.Client.List(ctx, &list, client.MatchingLabels{podtrust.ControlPlaneNSLabel: cp}, client.UnsafeDisableDeepCopy); err != nil {
		return nil, err
	}
	pods := make([]*podtrust.Pod, 0, len(list.Items))
	for i := range list.Items {
		if p, ok := podtrust.Of(&list.Items[i]); ok {
			pods = append(pods, &p)
		}
	}
	return pods, nil
}
