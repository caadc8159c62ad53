package rotator

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
)

// observeNodes looks at the node of each pod still there past its grace
// period, to say what holds it: a node that is not Ready has no kubelet to
// stop it, and only a force delete removes it. Such pods are few (a lost
// node's), so their nodes are read from the API server, not cached.
func (r *Reconciler) observeNodes(ctx context.Context, o *observed) error {
	for _, p := range o.Pods {
		if p.DeleteBy == nil || !o.Now.After(*p.DeleteBy) || p.NodeName == "" || len(p.Finalizers) > 0 || !p.Live() {
			continue
		}
		if _, seen := o.Nodes[p.NodeName]; seen {
			continue
		}
		if o.Nodes == nil {
			o.Nodes = map[string]string{}
		}
		var node corev1.Node
		switch err := r.APIReader.Get(ctx, types.NamespacedName{Name: p.NodeName}, &node); {
		case apierrors.IsNotFound(err):
			o.Nodes[p.NodeName] = "the Node object is gone"
		case err != nil:
			return fmt.Errorf("reading node %s of pod %s: %w", p.NodeName, p.Key(), err)
		default:
			o.Nodes[p.NodeName] = notReady(&node)
		}
	}
	return nil
}

// notReady is why a node is not Ready, "" when it is.
func notReady(node *corev1.Node) string {
	for _, c := range node.Status.Conditions {
		if c.Type != corev1.NodeReady {
			continue
		}
		if c.Status == corev1.ConditionTrue {
			return ""
		}
		why := fmt.Sprintf("Ready=%s since %s", c.Status, c.LastTransitionTime.UTC().Format(time.RFC3339))
		if c.Reason != "" {
			why += ", " + c.Reason
		}
		return why
	}
	return "no Ready condition: its kubelet never reported"
}
