package rotator

import (
	"context"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/controller"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/peers"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
)

// Cache adds to the manager's cache options what the rotation reads: meshed
// pods only (those labelled with a control plane), cluster-wide, stripped
// to their trust (podtrust.Strip), so unrelated pods cost nothing;
// cert-manager Certificates in the watched namespaces; and, with restarts
// on, every Deployment, StatefulSet and DaemonSet, stripped to what a
// restart reads (podtrust.StripWorkload): a rotation over hundreds of
// workloads then reads none of them from the API server.
func Cache(opts *cache.Options, watchNamespaces []string, restarts bool) {
	meshed, _ := labels.NewRequirement(podtrust.ControlPlaneNSLabel, selection.Exists, nil)
	namespaces := make(map[string]cache.Config, len(watchNamespaces))
	for _, ns := range watchNamespaces {
		namespaces[ns] = cache.Config{}
	}
	opts.ByObject[&corev1.Pod{}] = cache.ByObject{Label: labels.NewSelector().Add(*meshed), Transform: podtrust.Compact}
	opts.ByObject[&cmapi.Certificate{}] = cache.ByObject{Namespaces: namespaces}
	if restarts {
		for _, obj := range workloadKinds() {
			opts.ByObject[obj] = cache.ByObject{Transform: podtrust.StripWorkload}
		}
	}
}

// Setup registers a rotation controller for each issuer kind. Anchor
// Secrets of cluster issuers are in clusterResourceNamespace.
func Setup(ctx context.Context, mgr ctrl.Manager, opts Options, clusterResourceNamespace string) error {
	s := &controller.Signer{ClusterResourceNamespace: clusterResourceNamespace}
	if opts.Restarts {
		// Informers made now start, and sync, with the manager's cache:
		// made on a reconcile's first read, a missing grant would hang it.
		for _, obj := range workloadKinds() {
			if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
				return fmt.Errorf("watching %T for restarts: %w", obj, err)
			}
		}
	}
	pods, err := IndexedPods(ctx, mgr.GetCache())
	if err != nil {
		return err
	}
	var linked *peers.Reader
	if opts.Multicluster {
		linked = &peers.Reader{Local: mgr.GetAPIReader(), Namespace: clusterResourceNamespace, Scheme: mgr.GetScheme(), Clock: clock.RealClock{},
			Timeout: peerTimeout, MinInterval: peerInterval}
	}
	for _, kind := range []v1alpha1.GenericIssuer{&v1alpha1.LinkerdCAIssuer{}, &v1alpha1.LinkerdCAClusterIssuer{}} {
		r := &Reconciler{
			Kind: kind, Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Signer: s,
			Recorder: mgr.GetEventRecorder(FieldOwner), Clock: clock.RealClock{}, Config: opts.Config, Pods: pods, Peers: linked,
		}
		all := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
			return r.rotating(ctx, "")
		})
		err := ctrl.NewControllerManagedBy(mgr).
			Named("rotation-"+kind.IssuerKind()).
			For(kind).
			Watches(&corev1.Pod{}, r.podEvents()).
			Watches(&corev1.ConfigMap{}, all).
			WatchesMetadata(&corev1.Secret{}, all).
			Watches(&cmapi.Certificate{}, all).
			Complete(r)
		if err != nil {
			return err
		}
	}
	return nil
}

// rotating lists the issuers of r's kind with spec.rotation, for one
// control plane or ("") all. There are a handful; a list from the cache is
// cheaper than an index.
func (r *Reconciler) rotating(ctx context.Context, controlPlane string) []reconcile.Request {
	list := r.Kind.NewList()
	// Read only: a pod event is no reason to deep-copy every issuer's status.
	if err := r.Client.List(ctx, list.(client.ObjectList), client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing issuers")
		return nil
	}
	var out []reconcile.Request
	for _, iss := range items(list) {
		if iss.GetSpec().Rotation == nil {
			continue
		}
		if controlPlane != "" && controller.PolicyFor(iss, nil).ControlPlaneNamespace != controlPlane {
			continue
		}
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(iss)})
	}
	return out
}

func items(list v1alpha1.ObjectList) []v1alpha1.GenericIssuer {
	var out []v1alpha1.GenericIssuer
	switch l := list.(type) {
	case *v1alpha1.LinkerdCAIssuerList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	case *v1alpha1.LinkerdCAClusterIssuerList:
		for i := range l.Items {
			out = append(out, &l.Items[i])
		}
	}
	return out
}
