package rotator

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
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

// observeWorkloads reads each workload with pods that may be behind: the
// restarted-for annotation that makes a restart happen once, and whatever
// keeps a restart from replacing its pods. Nothing is read while the
// anchor is the root signed under, nor for a pod already holding it: the
// reads are one GET each, and a mesh of hundreds of workloads is not read
// on every event of a Stable rotation.
func (r *Reconciler) observeWorkloads(ctx context.Context, o *observed) error {
	o.Workloads = map[podtrust.Workload]rotation.WorkloadState{}
	if o.Prev != nil && o.Prev.Phase == v1alpha1.RotationStable && o.Anchor == o.Prev.SigningRoot {
		return nil
	}
	seen := map[podtrust.Workload]bool{}
	for _, p := range o.Pods {
		w := p.Workload
		if seen[w] || !w.Restartable() || !p.Live() || slices.Contains(p.Inline, o.Anchor) {
			continue
		}
		seen[w] = true
		obj, err := workloadObject(w)
		if err != nil {
			return err
		}
		if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: w.Namespace, Name: w.Name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				continue
			}
			return fmt.Errorf("reading %s: %w", w, err)
		}
		ann := templateOf(obj).Annotations
		ws := rotation.WorkloadState{RestartedFor: ann[podtrust.RestartedForAnnotation], Manual: manualStep(obj)}
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
