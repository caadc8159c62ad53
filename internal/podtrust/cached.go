package podtrust

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Cached is what the cache of meshed pods keeps of each: the metadata an
// informer and its event handlers need, and the Pod a rotation reads, read
// from the pod once per revision. A corev1.Pod, however stripped, is 1.2 kB
// of struct before its containers and statuses; at 5,000 pods that was most
// of the issuer's live heap, and the garbage collector lets the heap grow by
// as much again.
type Cached struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	Pod Pod
	// Proxied: the pod runs linkerd-proxy, so Pod holds its trust.
	Proxied bool
}

// An informer's store and event handlers take it as the pod it stands for.
var (
	_ metav1.Object  = (*Cached)(nil)
	_ runtime.Object = (*Cached)(nil)
)

// Compact is the pod cache's transform: a *corev1.Pod becomes a *Cached;
// anything else (a tombstone) passes through.
func Compact(in any) (any, error) {
	pod, ok := in.(*corev1.Pod)
	if !ok {
		return in, nil
	}
	out := &Cached{
		TypeMeta: pod.TypeMeta,
		ObjectMeta: metav1.ObjectMeta{
			Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, ResourceVersion: pod.ResourceVersion,
			CreationTimestamp: pod.CreationTimestamp, DeletionTimestamp: pod.DeletionTimestamp,
		},
	}
	p, ok := Of(pod)
	if !ok {
		out.Pod = Pod{Namespace: pod.Namespace, Name: pod.Name, ControlPlane: pod.Labels[ControlPlaneNSLabel]}
		return out, nil
	}
	// Of points into the pod for its times; the pod is garbage once this
	// returns. Its roots are the parsed bundle every pod holding it shares:
	// the bundle's text is not kept at all.
	p.Started, p.ComponentStarted, p.DeleteBy = clone(p.Started), clone(p.ComponentStarted), clone(p.DeleteBy)
	p.Finalizers = slices.Clone(p.Finalizers)
	out.Pod, out.Proxied = p, true
	return out, nil
}

// ControlPlaneOf is the control plane namespace of a pod as the cache holds
// it, or of a full pod.
func ControlPlaneOf(obj metav1.Object) string {
	if c, ok := obj.(*Cached); ok {
		return c.Pod.ControlPlane
	}
	return obj.GetLabels()[ControlPlaneNSLabel]
}

func clone(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

// DeepCopyObject copies c; Pod.Inline is shared by every pod holding the
// same bundle and read only, so it is shared by the copy too.
func (c *Cached) DeepCopyObject() runtime.Object {
	if c == nil {
		return nil
	}
	out := &Cached{TypeMeta: c.TypeMeta, Pod: c.Pod, Proxied: c.Proxied}
	c.DeepCopyInto(&out.ObjectMeta)
	out.Pod.Started, out.Pod.ComponentStarted, out.Pod.DeleteBy = clone(c.Pod.Started), clone(c.Pod.ComponentStarted), clone(c.Pod.DeleteBy)
	out.Pod.Finalizers = slices.Clone(c.Pod.Finalizers)
	return out
}
