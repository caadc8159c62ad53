package rotator

import (
	"context"
	"fmt"
	"slices"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
)

// workloadKinds are the workloads a restart patches; with restarts on, the
// cache holds each of them, stripped (podtrust.StripWorkload).
func workloadKinds() []client.Object {
	return []client.Object{&appsv1.Deployment{}, &appsv1.StatefulSet{}, &appsv1.DaemonSet{}}
}

// observeWorkloads reads, from the cache (podtrust.StripWorkload), each
// workload with pods that may be behind: the restarted-for annotation that
// makes a restart happen once, and whatever keeps a restart from replacing
// its pods. Nothing is read while the anchor is the root signed under and
// every linked cluster's root has propagated here, nor for a pod already
// holding every root it may be restarted for.
func (r *Reconciler) observeWorkloads(ctx context.Context, o *observed) error {
	o.Workloads = map[podtrust.Workload]rotation.WorkloadState{}
	need := []string{o.Anchor}
	if o.Prev != nil && o.Linked {
		for _, rp := range o.Prev.Propagation {
			if !rp.Propagated {
				need = append(need, rp.Fingerprint)
			}
		}
	}
	if o.Prev != nil && o.Prev.Phase == v1alpha1.RotationStable && o.Anchor == o.Prev.SigningRoot && len(need) == 1 {
		return nil
	}
	seen := map[podtrust.Workload]bool{}
	for _, p := range o.Pods {
		w := p.Workload
		holds := p.Inline != nil && !slices.ContainsFunc(need, func(fp string) bool { return !slices.Contains(p.Inline, fp) })
		if seen[w] || !w.Restartable() || !p.Live() || holds {
			continue
		}
		seen[w] = true
		obj, err := workloadObject(w)
		if err != nil {
			return err
		}
		if err := r.Client.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("reading %s: %w", w, err)
		}
		ann := templateOf(obj).Annotations
		ws := rotation.WorkloadState{RestartedFor: ann[podtrust.RestartedForAnnotation], Manual: manualStep(obj), Generation: obj.GetGeneration()}
		ws.RestartedAt, _ = time.Parse(time.RFC3339, ann[podtrust.RestartedAtAnnotation])
		o.Workloads[w] = ws
	}
	return nil
}

// manualStep is why a rollout restart does not replace a workload's pods,
// with the step that does; "" when it does.
func manualStep(obj client.Object) string {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		if o.Spec.Paused {
			return "paused, so a restart replaces no pod: kubectl rollout resume, or delete its pods behind"
		}
	case *appsv1.StatefulSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
			return "updateStrategy OnDelete, so a restart replaces no pod: delete its pods behind, one at a time"
		}
		if ru := o.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 {
			return fmt.Sprintf("partition %d, so a restart replaces only the pods from that ordinal up: delete the pods behind below it, or lower the partition", *ru.Partition)
		}
	case *appsv1.DaemonSet:
		if o.Spec.UpdateStrategy.Type == appsv1.OnDeleteDaemonSetStrategyType {
			return "updateStrategy OnDelete, so a restart replaces no pod: delete its pods behind, node by node"
		}
	}
	return ""
}

func workloadObject(w podtrust.Workload) (client.Object, error) {
	switch w.Kind {
	case "Deployment":
		return &appsv1.Deployment{}, nil
	case "StatefulSet":
		return &appsv1.StatefulSet{}, nil
	case "DaemonSet":
		return &appsv1.DaemonSet{}, nil
	}
	return nil, fmt.Errorf("%s cannot be restarted", w)
}

func templateOf(obj client.Object) *corev1.PodTemplateSpec {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	case *appsv1.DaemonSet:
		return &o.Spec.Template
	}
	return &corev1.PodTemplateSpec{}
}
