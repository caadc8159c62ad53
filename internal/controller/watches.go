package controller

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/metrics"
)

// Issuers are indexed by the Secret and the ConfigMaps they depend on
// (Linkerd's trust roots, and a KMS-kept anchor's certificate), as
// namespace/name, so a change to any finds its issuers in the cache.
const (
	anchorSecretField = "linkerdca.io/trustAnchorSecret"
	trustRootsField   = "linkerdca.io/trustRootsConfigMap"
)

func (s *Signer) anchorSecretOf(o client.Object) []string {
	iss, ok := o.(v1alpha1.GenericIssuer)
	if !ok || iss.GetSpec().TrustAnchorSecretName == "" {
		return nil
	}
	return []string{s.AnchorSecret(iss).String()}
}

func (s *Signer) configMapsOf(o client.Object) []string {
	iss, ok := o.(v1alpha1.GenericIssuer)
	if !ok {
		return nil
	}
	var refs []string
	if ref, _, ok := TrustRootsConfigMap(iss); ok {
		refs = append(refs, ref.String())
	}
	if ref, ok := s.AnchorConfigMap(iss); ok {
		refs = append(refs, ref.String())
	}
	return refs
}

func (s *Signer) indexIssuers(ctx context.Context, mgr ctrl.Manager, kinds []v1alpha1.GenericIssuer) error {
	for _, obj := range kinds {
		if err := mgr.GetFieldIndexer().IndexField(ctx, obj, anchorSecretField, s.anchorSecretOf); err != nil {
			return fmt.Errorf("indexing %s by trust anchor Secret: %w", obj.IssuerKind(), err)
		}
		if err := mgr.GetFieldIndexer().IndexField(ctx, obj, trustRootsField, s.configMapsOf); err != nil {
			return fmt.Errorf("indexing %s by trust roots ConfigMap: %w", obj.IssuerKind(), err)
		}
	}
	return nil
}

// watches adds what issuer-lib does not watch to the issuer controllers: the
// anchor Secret, Linkerd's trust roots ConfigMap, time itself (an anchor
// expires, or starts to expire soon, without any object changing), and an
// issuer's deletion, which ends its metric series.
type watches struct {
	signer          *Signer
	recheckInterval time.Duration
}

func (w *watches) setup(_ context.Context, gvk schema.GroupVersionKind, mgr ctrl.Manager, b *builder.Builder) error {
	if gvk.Group != v1alpha1.GroupVersion.Group {
		b.WithEventFilter(ours) // a request controller
		return nil
	}
	obj, err := mgr.GetScheme().New(gvk)
	if err != nil {
		return fmt.Errorf("issuer kind %s: %w", gvk.Kind, err)
	}
	kind, ok := obj.(v1alpha1.GenericIssuer)
	if !ok {
		return fmt.Errorf("issuer kind %s is no GenericIssuer", gvk.Kind)
	}
	c := mgr.GetClient()
	parsed := &w.signer.parsed
	b.WatchesMetadata(&corev1.Secret{}, evicting(parsed.secretChanged, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return referencing(ctx, c, kind, anchorSecretField, client.ObjectKeyFromObject(o).String())
	})))
	b.Watches(&corev1.ConfigMap{}, evicting(parsed.configMapChanged, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return referencing(ctx, c, kind, trustRootsField, client.ObjectKeyFromObject(o).String())
	})))
	b.Watches(kind.New(), w.issuerEvents())
	if w.recheckInterval <= 0 {
		return nil
	}
	ticks := make(chan event.GenericEvent)
	b.WatchesRawSource(source.Channel(ticks, &handler.EnqueueRequestForObject{}))
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return sendRechecks(ctx, c, kind, w.recheckInterval, ticks)
	}))
}

// issuerEvents ends a deleted issuer's metric series, and drops the anchor,
// key included, of a Secret an issuer no longer names or that belonged to
// an issuer now gone.
func (w *watches) issuerEvents() handler.EventHandler {
	return handler.Funcs{
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			older, ok1 := e.ObjectOld.(v1alpha1.GenericIssuer)
			newer, ok2 := e.ObjectNew.(v1alpha1.GenericIssuer)
			if !ok1 || !ok2 {
				return
			}
			if w.signer.AnchorSecret(older) != w.signer.AnchorSecret(newer) {
				w.signer.parsed.secretChanged(w.signer.AnchorSecret(older), version{})
			}
			if w.signer.anchorKey(older) != w.signer.anchorKey(newer) {
				w.signer.parsed.secretChanged(w.signer.anchorKey(older), version{})
			}
			// The rotation moved the root signed under: re-check now, not at
			// the next backoff, so a held issuer signs as soon as it may.
			if signingRoot(older) != signingRoot(newer) {
				q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(newer)})
			}
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			if iss, ok := e.Object.(v1alpha1.GenericIssuer); ok {
				metrics.Forget(IssuerLabels(iss))
				w.signer.parsed.secretChanged(w.signer.AnchorSecret(iss), version{})
				w.signer.parsed.secretChanged(w.signer.anchorKey(iss), version{})
			}
		},
	}
}

// evicting has the parsed cache drop an object's old revision, or the
// object once deleted, before next re-checks the issuers that use it.
func evicting(changed func(types.NamespacedName, version), next handler.EventHandler) handler.EventHandler {
	return handler.Funcs{
		CreateFunc: next.Create,
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			changed(client.ObjectKeyFromObject(e.ObjectNew), version{uid: e.ObjectNew.GetUID(), resourceVersion: e.ObjectNew.GetResourceVersion()})
			next.Update(ctx, e, q)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			changed(client.ObjectKeyFromObject(e.Object), version{})
			next.Delete(ctx, e, q)
		},
		GenericFunc: next.Generic,
	}
}

// referencing maps a Secret or ConfigMap event to the issuers that use it.
// The list reads the informer cache, which fails only when the index is
// missing, a wiring mistake the unit tests catch; so a failure is logged,
// not retried, and the periodic re-check still reaches every issuer.
func referencing(ctx context.Context, c client.Reader, kind v1alpha1.GenericIssuer, field, value string) []reconcile.Request {
	reqs, err := IssuersReferencing(ctx, c, kind, field, value)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "listing issuers; they are re-checked at the next --recheck-interval", "kind", kind.IssuerKind(), "field", field, "value", value)
	}
	return reqs
}

// sendRechecks sends an event for every issuer of a kind, every interval,
// until ctx ends.
func sendRechecks(ctx context.Context, c client.Reader, kind v1alpha1.GenericIssuer, every time.Duration, out chan<- event.GenericEvent) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, r := range referencing(ctx, c, kind, "", "") {
			obj := kind.New()
			obj.SetNamespace(r.Namespace)
			obj.SetName(r.Name)
			select {
			case out <- event.GenericEvent{Object: obj}:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// IssuersReferencing lists the issuers of one kind whose index field has
// value; with an empty field, every issuer of the kind.
func IssuersReferencing(ctx context.Context, c client.Reader, kind v1alpha1.GenericIssuer, field, value string) ([]reconcile.Request, error) {
	var opts []client.ListOption
	if field != "" {
		opts = append(opts, client.MatchingFields{field: value})
	}
	list := kind.NewList()
	if err := c.List(ctx, list, opts...); err != nil {
		return nil, err
	}
	var requests []reconcile.Request
	err := meta.EachListItem(list, func(o runtime.Object) error {
		obj, ok := o.(client.Object)
		if !ok {
			return fmt.Errorf("list item %T is not an object", o)
		}
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(obj)})
		return nil
	})
	return requests, err
}
