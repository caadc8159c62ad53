package rotator

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
)

func TestAPodStuckTerminatingIsNamedWithItsNodesState(t *testing.T) {
	old, next := anchor(t), anchor(t)
	crt, idSecret := identityIssuer(t, old, start.Add(40*time.Hour))
	anchorSecret := secret("anchor", old)
	gone := metav1.NewTime(start.Add(-time.Minute))
	stuck := func(name, node string) *corev1.Pod {
		p := meshedPod(name, "web", old)
		p.Spec.NodeName, p.DeletionTimestamp, p.Finalizers = node, &gone, []string{"test/keep"}
		return p
	}
	lost := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-lost"}, Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{
		{Type: corev1.NodeReady, Status: corev1.ConditionUnknown, Reason: "NodeStatusUnknown", LastTransitionTime: metav1.NewTime(start.Add(-time.Hour))}}}}
	h := newHarness(t, rotation.Config{}, issuer("anchor"), anchorSecret, linkerdRoots(old, next), crt, idSecret, lost,
		stuck("web-1", "node-lost"), stuck("web-2", "node-deleted"))
	// The fake client keeps a pod with a deletion timestamp only while a
	// finalizer holds it; a lost node's pod has none: the reads drop it.
	h.r.Client = withoutFinalizers{h.c}
	h.reconcile()
	h.update(anchorSecret, func() { anchorSecret.Data = secret("anchor", next).Data })
	h.reconcile()
	st := h.issuer().Status.Rotation
	for _, want := range []string{
		"pod apps/web-1: terminating past its grace period (2026-12-03T11:59:00Z), on node node-lost, which is not Ready (Ready=Unknown since 2026-12-03T11:00:00Z, NodeStatusUnknown)",
		"pod apps/web-2: terminating past its grace period (2026-12-03T11:59:00Z), on node node-deleted, which is not Ready (the Node object is gone)",
	} {
		if !slices.ContainsFunc(st.Blocked, func(b string) bool { return strings.HasPrefix(b, want) }) {
			t.Errorf("blocked %q lacks %q", st.Blocked, want)
		}
	}
}

type withoutFinalizers struct{ client.Client }

func (c withoutFinalizers) List(ctx context.Context, list client.ObjectList, opts ...client.ListOption) error {
	if err := c.Client.List(ctx, list, opts...); err != nil {
		return err
	}
	if pods, ok := list.(*corev1.PodList); ok {
		for i := range pods.Items {
			pods.Items[i].Finalizers = nil
		}
	}
	return nil
}
