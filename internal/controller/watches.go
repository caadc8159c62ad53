package controller

import (
	"context"
	"fmt"
	"time"

	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// Issuers are indexed by the Secret and the ConfigMap they depend on, as
// namespace/name, so a change to either finds its issuers in the cache.
const (
	anchorSecretField = "linkerdca.io/trustAnchorSecret"
	trustRootsField   = "linkerdca.io/trustRootsConfigMap"
)

func (s *Signer) anchorSecretOf(o client.Object) []string {
	return []string{s.AnchorSecret(o.(issuerapi.Issuer)).String()}
}

func trustRootsOf(o client.Object) []string {
	if ref, _, ok := TrustRootsConfigMap(o.(issuerapi.Issuer)); ok {
		return []string{ref.String()}
	}
	return nil
}

func (s *Signer) indexIssuers(ctx context.Context, mgr ctrl.Manager) error {
	for _, obj := range []client.Object{&v1alpha1.LinkerdCAIssuer{}, &v1alpha1.LinkerdCAClusterIssuer{}} {
		if err := mgr.GetFieldIndexer().IndexField(ctx, obj, anchorSecretField, s.anchorSecretOf); err != nil {
			return fmt.Errorf("indexing %T by trust anchor Secret: %w", obj, err)
		}
		if err := mgr.GetFieldIndexer().IndexField(ctx, obj, trustRootsField, trustRootsOf); err != nil {
			return fmt.Errorf("indexing %T by trust roots ConfigMap: %w", obj, err)
		}
	}
	return nil
}

// watches adds what issuer-lib does not watch to the issuer controllers: the
// anchor Secret, Linkerd's trust roots ConfigMap, and time itself (an
// anchor expires, or starts to expire soon, without any object changing).
type watches struct {
	recheckInterval time.Duration
}

func (w *watches) setup(_ context.Context, gvk schema.GroupVersionKind, mgr ctrl.Manager, b *builder.Builder) error {
	if gvk.Group != v1alpha1.GroupVersion.Group {
		return nil // the request controllers need none of this
	}
	c := mgr.GetClient()
	b.Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return IssuersReferencing(ctx, c, gvk.Kind, anchorSecretField, client.ObjectKeyFromObject(o).String())
	}))
	b.Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		return IssuersReferencing(ctx, c, gvk.Kind, trustRootsField, client.ObjectKeyFromObject(o).String())
	}))
	if w.recheckInterval <= 0 {
		return nil
	}
	ticks := make(chan event.GenericEvent)
	b.WatchesRawSource(source.Channel(ticks, &handler.EnqueueRequestForObject{}))
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		return sendRechecks(ctx, c, gvk.Kind, w.recheckInterval, ticks)
	}))
}

// sendRechecks sends an event for every issuer of a kind, every interval,
// until ctx ends.
func sendRechecks(ctx context.Context, c client.Reader, kind string, every time.Duration, out chan<- event.GenericEvent) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for _, r := range IssuersReferencing(ctx, c, kind, "", "") {
			obj := newIssuer(kind)
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

func newIssuer(kind string) client.Object {
	if kind == "LinkerdCAClusterIssuer" {
		return &v1alpha1.LinkerdCAClusterIssuer{}
	}
	return &v1alpha1.LinkerdCAIssuer{}
}

// IssuersReferencing lists the issuers of one kind whose index field has
// value; with an empty field, every issuer of the kind.
func IssuersReferencing(ctx context.Context, c client.Reader, kind, field, value string) []reconcile.Request {
	var opts []client.ListOption
	if field != "" {
		opts = append(opts, client.MatchingFields{field: value})
	}
	var keys []client.ObjectKey
	switch kind {
	case "LinkerdCAIssuer":
		var list v1alpha1.LinkerdCAIssuerList
		if err := c.List(ctx, &list, opts...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing issuers", "field", field, "value", value)
			return nil
		}
		for i := range list.Items {
			keys = append(keys, client.ObjectKeyFromObject(&list.Items[i]))
		}
	case "LinkerdCAClusterIssuer":
		var list v1alpha1.LinkerdCAClusterIssuerList
		if err := c.List(ctx, &list, opts...); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing cluster issuers", "field", field, "value", value)
			return nil
		}
		for i := range list.Items {
			keys = append(keys, client.ObjectKeyFromObject(&list.Items[i]))
		}
	}
	requests := make([]reconcile.Request, 0, len(keys))
	for _, k := range keys {
		requests = append(requests, reconcile.Request{NamespacedName: k})
	}
	return requests
}
