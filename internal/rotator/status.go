package rotator

import (
	"context"
	"strings"

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
	if prev := iss.GetStatus().Rotation; prev != nil && equality.Semantic.DeepEqual(*prev, st) &&
		meta.FindStatusCondition(iss.GetStatus().Conditions, v1alpha1.ConditionTrustRootsSynced) != nil {
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
	if prev := meta.FindStatusCondition(iss.GetStatus().Conditions, v1alpha1.ConditionTrustRootsSynced); prev != nil && prev.Status == synced.Status {
		synced.LastTransitionTime = prev.LastTransitionTime
	} else {
		synced.LastTransitionTime = metav1.NewTime(r.Clock.Now())
	}
	return r.apply(ctx, iss, &st, rotation, synced)
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
