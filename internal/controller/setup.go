package controller

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	issuerapi "github.com/cert-manager/issuer-lib/api/v1alpha1"
	"github.com/cert-manager/issuer-lib/controllers"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/clock"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// The controller's permissions. Secrets (trust anchors) and ConfigMaps
// (Linkerd's trust roots) are read only through Roles in the namespaces the
// controller watches (linkerd by default, and the namespace it is installed
// in for cluster issuers): never a cluster-wide grant.
//
// +kubebuilder:rbac:groups=linkerdca.io,resources=linkerdcaissuers;linkerdcaclusterissuers,verbs=get;list;watch
// +kubebuilder:rbac:groups=linkerdca.io,resources=linkerdcaissuers/status;linkerdcaclusterissuers/status,verbs=patch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=cert-manager.io,resources=certificaterequests/status,verbs=patch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests,verbs=get;list;watch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=certificatesigningrequests/status,verbs=patch
// +kubebuilder:rbac:groups=certificates.k8s.io,resources=signers,verbs=sign,resourceNames=linkerdcaissuers.linkerdca.io/*;linkerdcaclusterissuers.linkerdca.io/*
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch,namespace=linkerd
// +kubebuilder:rbac:groups="",resources=secrets;configmaps,verbs=get;list;watch,namespace=linkerd-ca-issuer
// +kubebuilder:rbac:groups=coordination.k8s.io,resources=leases,verbs=get;create;update,namespace=linkerd-ca-issuer
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch,namespace=linkerd-ca-issuer

// FieldOwner is the server-side apply field manager for status patches.
const FieldOwner = "linkerd-ca-issuer"

// DefaultMaxRetryDuration bounds how long a request is retried after an
// error that is not a policy refusal (refusals fail at once).
const DefaultMaxRetryDuration = 5 * time.Minute

// CacheOptions scopes the manager's Secret and ConfigMap informers to the
// watched namespaces, so the controller never lists or holds every Secret
// in the cluster. Of Secrets it caches metadata only (readAnchor fetches an
// anchor Secret when it changes), and a read with no informer behind it
// fails instead of quietly starting one, so no full Secret informer can
// appear. Other kinds are cached cluster-wide, without managed fields, and
// other issuers' CertificateRequests without their payloads.
func CacheOptions(watchNamespaces []string) cache.Options {
	namespaces := func() map[string]cache.Config {
		m := make(map[string]cache.Config, len(watchNamespaces))
		for _, ns := range watchNamespaces {
			m[ns] = cache.Config{}
		}
		return m
	}
	return cache.Options{
		ReaderFailOnMissingInformer: true,
		DefaultTransform:            cache.TransformStripManagedFields(),
		ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:            {Namespaces: namespaces()},
			&corev1.ConfigMap{}:         {Namespaces: namespaces()},
			&cmapi.CertificateRequest{}: {Transform: stripForeignRequests},
			&certificatesv1.CertificateSigningRequest{}: {Transform: func(in any) (any, error) {
				if csr, ok := in.(*certificatesv1.CertificateSigningRequest); ok {
					csr.ManagedFields = keepValidityWriters(csr.ManagedFields)
				}
				return in, nil
			}},
		},
	}
}

// stripForeignRequests keeps of another issuer's CertificateRequest only
// what decides that it is another issuer's: its metadata, issuerRef and
// conditions, not its CSR, certificate or CA.
func stripForeignRequests(in any) (any, error) {
	cr, ok := in.(*cmapi.CertificateRequest)
	if !ok {
		return in, nil
	}
	cr.ManagedFields = keepValidityWriters(cr.ManagedFields)
	if cr.Spec.IssuerRef.Group != v1alpha1.GroupVersion.Group {
		cr.Spec.Request = nil
		cr.Status.Certificate, cr.Status.CA = nil, nil
	}
	return cr, nil
}

// ours keeps the request controllers' queue for requests to this issuer:
// other issuers' requests never reach it.
var ours = predicate.NewPredicateFuncs(func(o client.Object) bool {
	switch r := o.(type) {
	case *cmapi.CertificateRequest:
		return r.Spec.IssuerRef.Group == v1alpha1.GroupVersion.Group
	case *certificatesv1.CertificateSigningRequest:
		return strings.HasPrefix(r.Spec.SignerName, (&v1alpha1.LinkerdCAIssuer{}).GetIssuerTypeIdentifier()+"/") ||
			strings.HasPrefix(r.Spec.SignerName, (&v1alpha1.LinkerdCAClusterIssuer{}).GetIssuerTypeIdentifier()+"/")
	}
	return true
})

// CachesSynced is the readiness check: a replica is ready once its caches
// have synced, leader or standby, so a rollout waits for a replica that
// can take over at once.
func CachesSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("caches not synced yet")
		}
		return nil
	}
}

// Setup registers the issuer, CertificateRequest and
// CertificateSigningRequest controllers with the manager.
func Setup(ctx context.Context, mgr ctrl.Manager, cfg *Options) error {
	s := &Signer{
		Client:                   mgr.GetClient(),
		Secrets:                  mgr.GetAPIReader(),
		ClusterResourceNamespace: cfg.ClusterResourceNamespace,
		WatchNamespaces:          cfg.WatchNamespaces,
		CSRRequesters:            cfg.KubernetesCSRRequesters,
		Audit:                    cfg.AuditLog,
		AnchorExpiryWarning:      cfg.AnchorExpiryWarning,
		EventRecorder:            mgr.GetEventRecorder(FieldOwner),
		Clock:                    clock.RealClock{},
		Rotation:                 cfg.Rotation,
		Keys:                     cfg.Keys,
	}
	issuer, clusterIssuer := &v1alpha1.LinkerdCAIssuer{}, &v1alpha1.LinkerdCAClusterIssuer{}
	if err := s.indexIssuers(ctx, mgr, []v1alpha1.GenericIssuer{issuer, clusterIssuer}); err != nil {
		return err
	}
	// What Sign reads from the cache gets its informer now, so that it
	// starts and syncs with the manager's cache on every replica. Left to
	// the issuer controllers' watches, it appears only once a replica leads:
	// a new leader's first signatures then read "not cached", an issuer
	// error that turns a sound issuer not Ready.
	secrets := &metav1.PartialObjectMetadata{}
	secrets.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	for _, obj := range []client.Object{&corev1.ConfigMap{}, secrets} {
		if _, err := mgr.GetCache().GetInformer(ctx, obj); err != nil {
			return fmt.Errorf("watching %T for the signer: %w", obj, err)
		}
	}
	w := &watches{signer: s, recheckInterval: cfg.RecheckInterval}
	return (&controllers.CombinedController{
		IssuerTypes:        []issuerapi.Issuer{issuer},
		ClusterIssuerTypes: []issuerapi.Issuer{clusterIssuer},
		FieldOwner:         FieldOwner,
		MaxRetryDuration:   cfg.MaxRetryDuration,
		// The request controllers take the manager's MaxConcurrentReconciles;
		// the issuer controllers take these.
		ControllerOptions: controller.Options{MaxConcurrentReconciles: cfg.MaxConcurrentReconciles},
		Check:             s.Check,
		Sign:              s.Sign,
		// Signs a request at first sight in one status write, where
		// issuer-lib's own path takes two and the validity start a third.
		IgnoreCertificateRequest: s.SignAtFirstSight,
		EventRecorder:            s.EventRecorder,
		// linkerd check and linkerd upgrade read ca.crt as the trust roots:
		// cert-manager only writes it when the request carries the CA.
		//nolint:staticcheck // deprecated in favour of trust-manager alone, which Linkerd's tools do not read
		SetCAOnCertificateRequest: true,
		// A Kubernetes CSR has no namespace to hold it to Linkerd's control
		// plane: off unless asked for, and then only for named requesters.
		DisableKubernetesCSRController: !cfg.EnableKubernetesCSR,
		PreSetupWithManager:            w.setup,
	}).SetupWithManager(ctx, mgr)
}
