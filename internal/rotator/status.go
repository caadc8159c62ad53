package rotator

import (
	"context"
	"fmt"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// applyStatus server-side-applies status.rotation, the Rotation condition
// and the TrustRootsSynced condition under the rotation's own field
// manager.
func (r *Reconciler) applyStatus(ctx context.Context, iss v1alpha1.GenericIssuer, st v1alpha1.RotationStatus) error {
	linked := peersCondition(st)
	if prev := iss.GetStatus().Rotation; prev != nil && equality.Semantic.DeepEqual(*prev, st) &&
		meta.FindStatusCondition(iss.GetStatus().Conditions, v1alpha1.ConditionTrustRootsSynced) != nil &&
		(linked == nil || meta.FindStatusCondition(iss.GetStatus().Conditions, linked.Type) != nil) {
		return nil
	}
	status := metav1.ConditionFalse
	if st.Phase == v1alpha1.RotationStable {
		status = metav1.ConditionTrue
	}
	rotation := metav1.Condition{Type: v1alpha1.ConditionRotation, Status: status, Reason: string(st.Phase), Message: st.Message, LastTransitionTime: st.LastTransitionTime}
	synced := metav1.Condition{Type: v1alpha1.ConditionTrustRootsSynced, Status: metav1.ConditionTrue, Reason: "Synced",
		Message: "Linkerd's trust roots hold every root the trusted set keeps in use"}
	if len(st.TrustRootsMissing) > 0 {
		synced.Status, synced.Reason = metav1.ConditionFalse, "Drift"
		synced.Message = "Linkerd's trust roots lack " + strings.Join(st.TrustRootsMissing, ", ") + ": make trust-manager's Bundle for them take the trusted set as its only source"
	}
	conds := []metav1.Condition{rotation, synced}
	// Left out once no peer is named: the apply then removes it.
	if linked != nil {
		conds = append(conds, *linked)
	}
	for i := 1; i < len(conds); i++ {
		if prev := meta.FindStatusCondition(iss.GetStatus().Conditions, conds[i].Type); prev != nil && prev.Status == conds[i].Status {
			conds[i].LastTransitionTime = prev.LastTransitionTime
		} else {
			conds[i].LastTransitionTime = metav1.NewTime(r.Clock.Now())
		}
	}
	return r.apply(ctx, iss, &st, conds...)
}

// peersCondition is the LinkedClustersReachable condition of an issuer
// that names peers; nil for one that names none.
func peersCondition(st v1alpha1.RotationStatus) *metav1.Condition {
	if len(st.Peers) == 0 {
		return nil
	}
	var read, unread []string
	for _, p := range st.Peers {
		if p.Reachable {
			read = append(read, p.Name)
			continue
		}
		why := fmt.Sprintf("%s (%s", p.Name, p.Error)
		if p.LastRead != nil {
			why += ", last read " + p.LastRead.UTC().Format(time.RFC3339)
		}
		unread = append(unread, why+")")
	}
	if len(unread) == 0 {
		return &metav1.Condition{Type: v1alpha1.ConditionLinkedClustersReachable, Status: metav1.ConditionTrue, Reason: "Read",
			Message: "every linked cluster was read: " + strings.Join(read, ", ")}
	}
	return &metav1.Condition{Type: v1alpha1.ConditionLinkedClustersReachable, Status: metav1.ConditionFalse, Reason: "Unreachable",
		Message: "linked cluster(s) cannot be read: " + strings.Join(unread, "; ") +
			": no switch to a new root and no retire until they are read again (the roots they kept stay trusted); signing goes on"}
}

// refuse says, in the Rotation condition alone, why the issuer's rotation
// is not run; nothing else is written, and the signer waits for a decision.
func (r *Reconciler) refuse(ctx context.Context, iss v1alpha1.GenericIssuer, reason, message string) error {
	if c := meta.FindStatusCondition(iss.GetStatus().Conditions, v1alpha1.ConditionRotation); c != nil && c.Reason == reason && c.Message == message {
		return nil
	}
	return r.apply(ctx, iss, nil, metav1.Condition{Type: v1alpha1.ConditionRotation, Status: metav1.ConditionFalse, Reason: reason,
		Message: message, LastTransitionTime: metav1.NewTime(r.Clock.Now())})
}

func (r *Reconciler) apply(ctx context.Context, iss v1alpha1.GenericIssuer, st *v1alpha1.RotationStatus, conds ...metav1.Condition) error {
	status := map[string]any{}
	if st != nil {
		fields, err := runtime.DefaultUnstructuredConverter.ToUnstructured(st)
		if err != nil {
			return err
		}
		status["rotation"] = fields
	}
	var list []any
	for i := range conds {
		conds[i].ObservedGeneration = iss.GetGeneration()
		c, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&conds[i])
		if err != nil {
			return err
		}
		list = append(list, c)
	}
	status["conditions"] = list
	u := &unstructured.Unstructured{Object: map[string]any{"status": status}}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(iss.IssuerKind()))
	u.SetName(iss.GetName())
	u.SetNamespace(iss.GetNamespace())
	return r.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership)
}
