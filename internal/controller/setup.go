package controller

import (
	"context"
	"fmt"
	"time"

	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	"github.com/cert-manager/issuer-lib/controllers"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// The controller's permissions. Secrets are read only through Roles in the
// namespaces the controller watches (linkerd by default, and the namespace it
// is installed in for cluster issuers): never a cluster-wide Secret grant.
//
// +kubebuilder:rbac:groups=linkerdca.io,resources=linkerdcaissuers;linkerdcaclusterissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=linkerdca.io,resources=linkerdcaissuers/status;linkerdcaclusterissuers/status,verbs=patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests/status,verbs=patch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/status,verbs=patch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,verbs=sign,resourceNames=linkerdcaissuers.linkerdca.io/*;linkerdcaclusterissuers.linkerdca.io/*
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch,namespace=linkerd
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch,namespace=linkerd-ca-issuer
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=linkerd-ca-issuer
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=linkerd-ca-issuer

// FieldOwner is the server-side apply field manager for status patches.
const FieldOwner = "linkerd-ca-issuer"

// DefaultMaxRetryDuration bounds how long a request is retried after an
// error that is not a policy refusal (refusals fail at once).
const DefaultMaxRetryDuration = 5 * time.Minute

// CacheOptions scopes the manager's Secret informer to the watched
// namespaces, so the controller never lists or holds every Secret in the
// cluster. Other kinds are cached cluster-wide.
func CacheOptions(watchNamespaces []string) cache.Options {
	namespaces := make(map[string]cache.Config, len(watchNamespaces))
	for _, ns := range watchNamespaces {
		namespaces[ns] = cache.Config{}
	}
	return cache.Options{ByObject: map[client.Object]cache.ByObject{
		&corev1.Secret{}: {Namespaces: namespaces},
	}}
}

// Setup registers the issuer, CertificateRequest and
// CertificateSigningRequest controllers with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg *Options) error {
	s := &Signer{
		Client:                   mgr.GetClient(),
		ClusterResourceNamespace: cfg.ClusterResourceNamespace,
		WatchNamespaces:          cfg.WatchNamespaces,
		EventRecorder:            mgr.GetEventRecorder(FieldOwner),
		Clock:                    clock.RealClock{},
	}
	if err := indexAnchorSecretName(ctx, mgr); err != nil {
		return err
	}
	return (&controllers.CombinedController{
		IssuerTypes:        []issuerapi.Issuer{&v1alpha1.LinkerdCAIssuer{}},
		ClusterIssuerTypes: []issuerapi.Issuer{&v1alpha1.LinkerdCAClusterIssuer{}},
		FieldOwner:         FieldOwner,
		MaxRetryDuration:   cfg.MaxRetryDuration,
		Check:              s.Check,
		Sign:               s.Sign,
		EventRecorder:      s.EventRecorder,
		// Linkerd reads ca.crt as its trust roots: cert-manager only writes
		// it when the request carries the CA.
		SetCAOnCertificateRequest: true,
		PreSetupWithManager:       s.watchAnchorSecrets,
	}).SetupWithManager(ctx, mgr)
}

// anchorSecretNameField indexes issuers by spec.trustAnchorSecretName.
const anchorSecretNameField = ".spec.trustAnchorSecretName"

func anchorSecretNameOf(o client.Object) []string {
	return []string{specOf(o.(issuerapi.Issuer)).TrustAnchorSecretName}
}

func indexAnchorSecretName(ctx context.Context, mgr ctrl.Manager) error {
	for _, obj := range []client.Object{&v1alpha1.LinkerdCAIssuer{}, &v1alpha1.LinkerdCAClusterIssuer{}} {
		if err := mgr.GetFieldIndexer().IndexField(ctx, obj, anchorSecretNameField, anchorSecretNameOf); err != nil {
			return fmt.Errorf("indexing %T by trust anchor Secret: %w", obj, err)
		}
	}
	return nil
}

// watchAnchorSecrets adds the watch issuer-lib lacks: an issuer is re-checked
// whenever its anchor Secret is created, changed or deleted.
func (s *Signer) watchAnchorSecrets(_ context.Context, gvk schema.GroupVersionKind, mgr ctrl.Manager, b *builder.Builder) error {
	if gvk.Group != v1alpha1.GroupVersion.Group {
		return nil // the request controllers need no Secret watch
	}
	b.Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, secret client.Object) []reconcile.Request {
		return s.IssuersForSecret(ctx, mgr.GetClient(), gvk.Kind, secret)
	}))
	return nil
}

// IssuersForSecret lists the issuers of one kind whose trust anchor is secret.
func (s *Signer) IssuersForSecret(ctx context.Context, c client.Reader, kind string, secret client.Object) []reconcile.Request {
	var names []client.Object
	switch kind {
	case "LinkerdCAIssuer":
		var list v1alpha1.LinkerdCAIssuerList
		if err := c.List(ctx, &list, client.InNamespace(secret.GetNamespace()), client.MatchingFields{anchorSecretNameField: secret.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing issuers for a trust anchor Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		for i := range list.Items {
			names = append(names, &list.Items[i])
		}
	case "LinkerdCAClusterIssuer":
		if secret.GetNamespace() != s.ClusterResourceNamespace {
			return nil
		}
		var list v1alpha1.LinkerdCAClusterIssuerList
		if err := c.List(ctx, &list, client.MatchingFields{anchorSecretNameField: secret.GetName()}); err != nil {
			ctrl.LoggerFrom(ctx).Error(err, "listing cluster issuers for a trust anchor Secret", "secret", client.ObjectKeyFromObject(secret))
			return nil
		}
		for i := range list.Items {
			names = append(names, &list.Items[i])
		}
	}
	requests := make([]reconcile.Request, 0, len(names))
	for _, o := range names {
		requests = append(requests, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(o)})
	}
	return requests
}
