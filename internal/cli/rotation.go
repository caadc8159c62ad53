package cli

import (
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
)

const (
	checkRotation         = "the trust anchor rotation is not held or stuck"
	checkTrustRootsSynced = "Linkerd's trust roots hold every root the rotation keeps"
)

// rotationCheck passes a Stable rotation, warns while one is under way,
// and fails one that holds the issuer or is past its deadline: then the
// mesh runs on an identity issuer that nothing will renew in time.
func rotationCheck(iss v1alpha1.GenericIssuer, key client.ObjectKey, now time.Time) []identitycheck.Result {
	if iss.GetSpec().Rotation == nil {
		return nil
	}
	st := iss.GetStatus().Rotation
	name := fmt.Sprintf("%s %s", iss.IssuerKind(), key)
	fix := fmt.Sprintf("restart the pods behind (`linkerd-ca rotation status -L %s` lists them), or turn on the controller's restarts (Helm value rotation.restarts.enabled)", key.Namespace)
	if iss.IsClusterScoped() {
		fix = "restart the pods behind (`linkerd-ca rotation status` lists them), or turn on the controller's restarts (Helm value rotation.restarts.enabled)"
	}
	var drift []identitycheck.Result
	if c := meta.FindStatusCondition(iss.GetStatus().Conditions, v1alpha1.ConditionTrustRootsSynced); c != nil && c.Status == metav1.ConditionFalse {
		// Nothing switches or restarts while it lasts, and a pod admitted
		// now may not trust the identity issuer in place.
		drift = []identitycheck.Result{{Name: checkTrustRootsSynced, Status: identitycheck.Fail, Detail: fmt.Sprintf("%s: %s", name, c.Message)}}
	}
	return append(append(drift, rotationPhase(name, fix, st, now)), linkedCheck(name, iss.GetSpec().Rotation, st, now)...)
}

func rotationPhase(name, fix string, st *v1alpha1.RotationStatus, now time.Time) identitycheck.Result {
	switch {
	case st == nil:
		return identitycheck.Result{Name: checkRotation, Status: identitycheck.Warn, Detail: name + ": the rotation controller has not recorded a status yet: is it running with --rotation?"}
	case st.Phase == v1alpha1.RotationStable:
		return identitycheck.Result{Name: checkRotation, Status: identitycheck.Pass}
	case st.Deadline != nil && now.After(st.Deadline.Time):
		return identitycheck.Result{Name: checkRotation, Status: identitycheck.Fail,
			Detail: fmt.Sprintf("%s: rotation %s past its deadline %s (%d of %d pods behind): %s; %s", name, st.Phase, st.Deadline.UTC().Format(time.RFC3339), st.PodsBehind, st.PodsTotal, st.Message, fix)}
	case st.Phase == v1alpha1.RotationHeld:
		return identitycheck.Result{Name: checkRotation, Status: identitycheck.Fail,
			Detail: fmt.Sprintf("%s: %s; %s", name, st.Message, fix)}
	}
	return identitycheck.Result{Name: checkRotation, Status: identitycheck.Warn,
		Detail: fmt.Sprintf("%s: a trust anchor rotation is under way (%s, %d of %d pods behind): %s", name, st.Phase, st.PodsBehind, st.PodsTotal, st.Message)}
}
