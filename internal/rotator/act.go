package rotator

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// writeTrusted makes the trusted set hold exactly the roots decided, in
// order, with the decision recorded beside them. A root the decision keeps
// but whose certificate is nowhere to be read any more (the set was edited
// by hand) is an error, not a drop. The set has no owner reference: it must
// outlive its issuer.
func (r *Reconciler) writeTrusted(ctx context.Context, iss v1alpha1.GenericIssuer, o *observed, fps []string, st v1alpha1.RotationStatus) error {
	ref := r.trustedRef(iss)
	var want []byte
	for _, fp := range fps {
		c, ok := o.certs[fp]
		if !ok {
			return fmt.Errorf("root %s must stay trusted but its certificate is neither in the anchor Secrets, in ConfigMap %s nor in Linkerd's trust roots; restore it there", fp, ref)
		}
		want = append(want, signer.EncodeBundle([]*x509.Certificate{c})...)
	}
	rec, err := record(st)
	if err != nil {
		return err
	}
	cm := o.trusted
	if cm == nil {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}}
	} else if cm.Data[v1alpha1.DefaultTrustRootsKey] == string(want) && cm.Annotations[RecordAnnotation] == rec &&
		cm.Annotations[OwnerAnnotation] == ownerName(iss) && len(cm.OwnerReferences) == 0 {
		return nil
	} else {
		cm = cm.DeepCopy()
	}
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Labels["app.kubernetes.io/managed-by"] = "linkerd-ca-issuer"
	cm.Annotations[OwnerAnnotation], cm.Annotations[RecordAnnotation] = ownerName(iss), rec
	cm.Data = map[string]string{v1alpha1.DefaultTrustRootsKey: string(want)}
	// Garbage collection would take the set, and Linkerd's trust roots with
	// it, with the issuer: a set from before this drops its owner.
	cm.OwnerReferences = nil
	if o.trusted == nil {
		return r.Client.Create(ctx, cm, client.FieldOwner(FieldOwner))
	}
	return r.Client.Update(ctx, cm, client.FieldOwner(FieldOwner))
}

// reissue has cert-manager issue each identity issuer Certificate now, as
// `cmctl renew` does: condition Issuing=True, reason ManuallyTriggered. A
// Certificate already issuing is left alone.
func (r *Reconciler) reissue(ctx context.Context, o *observed) error {
	for i := range o.certificates {
		c := o.certificates[i].DeepCopy()
		if slices.ContainsFunc(c.Status.Conditions, func(cond cmapi.CertificateCondition) bool {
			return cond.Type == cmapi.CertificateConditionIssuing && cond.Status == cmmeta.ConditionTrue
		}) {
			continue
		}
		now := metav1.NewTime(o.Now)
		c.Status.Conditions = append(c.Status.Conditions, cmapi.CertificateCondition{
			Type: cmapi.CertificateConditionIssuing, Status: cmmeta.ConditionTrue, Reason: "ManuallyTriggered",
			Message: "Certificate re-issuance triggered by linkerd-ca-issuer's trust anchor rotation", LastTransitionTime: &now,
			ObservedGeneration: c.Generation,
		})
		if err := r.Client.Status().Update(ctx, c); err != nil && !apierrors.IsConflict(err) {
			return fmt.Errorf("re-issuing Certificate %s/%s: %w", c.Namespace, c.Name, err)
		}
	}
	return nil
}
