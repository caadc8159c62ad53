package rotator

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// writeTrusted makes the trusted set hold exactly the roots decided, in
// order. A root the decision keeps but whose certificate is nowhere to be
// read any more (the set was edited by hand) is an error, not a drop.
func (r *Reconciler) writeTrusted(ctx context.Context, iss v1alpha1.GenericIssuer, o *observed, fps []string) error {
	ref := r.trustedRef(iss)
	var want []byte
	for _, fp := range fps {
		c, ok := o.certs[fp]
		if !ok {
			return fmt.Errorf("root %s must stay trusted but its certificate is neither in the anchor Secrets nor in ConfigMap %s; restore it there", fp, ref)
		}
		want = append(want, signer.EncodeBundle([]*x509.Certificate{c})...)
	}
	cm := o.trusted
	if cm == nil {
		cm = &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ref.Namespace, Name: ref.Name}}
	} else if cm.Data[v1alpha1.DefaultTrustRootsKey] == string(want) {
		return nil
	} else {
		cm = cm.DeepCopy()
	}
	if cm.Labels == nil {
		cm.Labels = map[string]string{}
	}
	cm.Labels["app.kubernetes.io/managed-by"] = "linkerd-ca-issuer"
	cm.Data = map[string]string{v1alpha1.DefaultTrustRootsKey: string(want)}
	if err := controllerutil.SetOwnerReference(iss, cm, r.Client.Scheme()); err != nil {
		return err
	}
	if o.trusted == nil {
		return r.Client.Create(ctx, cm, client.FieldOwner(FieldOwner))
	}
	return r.Client.Update(ctx, cm, client.FieldOwner(FieldOwner))
}

// applyStatus server-side-applies status.rotation and the Rotation
// condition under the rotation's own field manager.
func (r *Reconciler) applyStatus(ctx context.Context, iss v1alpha1.GenericIssuer, st v1alpha1.RotationStatus) error {
	if prev := iss.GetStatus().Rotation; prev != nil && equality.Semantic.DeepEqual(*prev, st) {
		return nil
	}
	fields, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&st)
	if err != nil {
		return err
	}
	status := metav1.ConditionFalse
	if st.Phase == v1alpha1.RotationStable {
		status = metav1.ConditionTrue
	}
	cond, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&metav1.Condition{
		Type: v1alpha1.ConditionRotation, Status: status, Reason: string(st.Phase), Message: st.Message,
		LastTransitionTime: st.LastTransitionTime, ObservedGeneration: iss.GetGeneration(),
	})
	if err != nil {
		return err
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"rotation": fields, "conditions": []any{cond}}}}
	u.SetGroupVersionKind(v1alpha1.GroupVersion.WithKind(iss.IssuerKind()))
	u.SetName(iss.GetName())
	u.SetNamespace(iss.GetNamespace())
	return r.Client.Status().Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(FieldOwner), client.ForceOwnership)
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

// observeWorkloads reads the restarted-for annotation of each workload
// behind, from the API server: it is what makes a restart happen once.
func (r *Reconciler) observeWorkloads(ctx context.Context, o *observed) error {
	o.RestartedFor = map[podtrust.Workload]string{}
	for _, p := range o.Pods {
		w := p.Workload
		if _, seen := o.RestartedFor[w]; seen || !w.Restartable() {
			continue
		}
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
		o.RestartedFor[w] = templateOf(obj).Annotations[podtrust.RestartedForAnnotation]
	}
	return nil
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
