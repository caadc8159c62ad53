package controller

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/anchorkey"
)

// Options are the controller's command-line settings.
type Options struct {
	// Keys opens the KMS keys of issuers with spec.kms (not a flag).
	Keys anchorkey.Opener

	MetricsAddr             string
	ProbeAddr               string
	LeaderElect             bool
	LeaderElectionNamespace string
	// LeaseDuration, RenewDeadline and RetryPeriod time the leader election:
	// a standby takes over within LeaseDuration of a leader that died, at
	// once from one that stepped down.
	LeaseDuration time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// LeaderElectionIdentity holds the lease: the pod's name (POD_NAME), so
	// that a container restarted in its pod takes its lease back at once
	// rather than wait for it to expire. Empty: controller-runtime's
	// hostname and a random suffix.
	LeaderElectionIdentity   string
	ClusterResourceNamespace string
	WatchNamespaces          []string
	MaxRetryDuration         time.Duration
	AnchorExpiryWarning      time.Duration
	RecheckInterval          time.Duration
	// EnableKubernetesCSR turns on signing of Kubernetes
	// CertificateSigningRequests, for KubernetesCSRRequesters only.
	EnableKubernetesCSR     bool
	KubernetesCSRRequesters []string
	// MaxConcurrentReconciles is how many requests (and issuers) are worked
	// on at once.
	MaxConcurrentReconciles int
	// KubeAPIQPS and KubeAPIBurst bound the client's request rate.
	KubeAPIQPS   float64
	KubeAPIBurst int
	// PprofAddr serves net/http/pprof when set.
	PprofAddr string
	// Rotation: the rotation controller runs beside (internal/rotator).
	Rotation bool
	// AuditLog receives one line per signature and per refusal. It must not
	// be sampled, as controller-runtime's production logger is: an audit
	// trail that drops lines under load is none. Unset, the request's
	// logger is used.
	AuditLog logr.Logger

	watchNamespaces string
	csrRequesters   string
}

// BindFlags registers the options as flags with their defaults.
func (o *Options) BindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.MetricsAddr, "metrics-bind-address", ":8080", "Address the Prometheus metrics endpoint binds to; 0 disables it.")
	fs.StringVar(&o.ProbeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	fs.BoolVar(&o.LeaderElect, "leader-elect", true, "Elect a leader so that only one replica signs at a time.")
	fs.DurationVar(&o.LeaseDuration, "leader-election-lease-duration", 15*time.Second, "How long a standby waits for a leader that stopped renewing before it takes over.")
	fs.DurationVar(&o.RenewDeadline, "leader-election-renew-deadline", 10*time.Second, "How long the leader keeps trying to renew before it steps down.")
	fs.DurationVar(&o.RetryPeriod, "leader-election-retry-period", 2*time.Second, "How often candidates try to acquire or renew the lease.")
	fs.StringVar(&o.LeaderElectionNamespace, "leader-election-namespace", "", "Namespace of the leader election Lease (default: the namespace the controller runs in).")
	fs.StringVar(&o.ClusterResourceNamespace, "cluster-resource-namespace", "", "Namespace LinkerdCAClusterIssuers read their trust anchor Secret from (default: the namespace the controller runs in).")
	fs.StringVar(&o.watchNamespaces, "watch-namespaces", v1alpha1.DefaultControlPlaneNamespace, "Comma-separated namespaces whose Secrets LinkerdCAIssuers may use as trust anchors; the cluster resource namespace is always added.")
	fs.DurationVar(&o.MaxRetryDuration, "max-retry-duration", DefaultMaxRetryDuration, "How long a request is retried after errors that are not policy refusals before it is failed.")
	fs.DurationVar(&o.AnchorExpiryWarning, "anchor-expiry-warning", DefaultAnchorExpiryWarning, "Warn (event, status.trustAnchor.expiringSoon) when a trust anchor expires within this long.")
	fs.DurationVar(&o.RecheckInterval, "recheck-interval", time.Hour, "How often every issuer is re-checked even if nothing changed (anchors expire on their own).")
	fs.IntVar(&o.MaxConcurrentReconciles, "max-concurrent-reconciles", DefaultMaxConcurrentReconciles, "Requests (and issuers) worked on at once.")
	fs.Float64Var(&o.KubeAPIQPS, "kube-api-qps", DefaultKubeAPIQPS, "Requests per second the client may make to the API server.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", DefaultKubeAPIBurst, "Requests the client may make to the API server in a burst.")
	fs.StringVar(&o.PprofAddr, "pprof-bind-address", "", "Address net/http/pprof binds to; empty disables it.")
	fs.BoolVar(&o.EnableKubernetesCSR, "enable-kubernetes-csr", false, "Sign Kubernetes CertificateSigningRequests (signerName linkerdcaissuers.linkerdca.io/… or linkerdcaclusterissuers.linkerdca.io/…) from --kubernetes-csr-requesters. Off by default: such a request has no namespace to hold it to Linkerd's control plane.")
	fs.StringVar(&o.csrRequesters, "kubernetes-csr-requesters", "", "Comma-separated user names (spec.username of the CSR, e.g. system:serviceaccount:linkerd:bootstrap) whose Kubernetes CSRs may be signed; required with --enable-kubernetes-csr.")
}

// Complete fills the defaults that depend on where the controller runs and
// checks the result.
func (o *Options) Complete() error {
	ns := podNamespace()
	if o.ClusterResourceNamespace == "" {
		o.ClusterResourceNamespace = ns
	}
	if o.LeaderElectionNamespace == "" {
		o.LeaderElectionNamespace = ns
	}
	if o.LeaderElectionIdentity == "" {
		o.LeaderElectionIdentity = os.Getenv("POD_NAME")
	}
	if o.ClusterResourceNamespace == "" || (o.LeaderElect && o.LeaderElectionNamespace == "") {
		return errors.New("cannot tell which namespace the controller runs in: set POD_NAMESPACE, or --cluster-resource-namespace (and --leader-election-namespace)")
	}
	if o.MaxRetryDuration <= 0 {
		return fmt.Errorf("--max-retry-duration must be positive, got %s", o.MaxRetryDuration)
	}
	if o.LeaderElect && (o.LeaseDuration <= o.RenewDeadline || o.RenewDeadline <= o.RetryPeriod || o.RetryPeriod <= 0) {
		return fmt.Errorf("leader election needs --leader-election-lease-duration > --leader-election-renew-deadline > --leader-election-retry-period > 0, got %s, %s, %s",
			o.LeaseDuration, o.RenewDeadline, o.RetryPeriod)
	}
	if o.MaxConcurrentReconciles < 1 {
		return fmt.Errorf("--max-concurrent-reconciles must be at least 1, got %d", o.MaxConcurrentReconciles)
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst < 1 {
		return fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive, got %g and %d", o.KubeAPIQPS, o.KubeAPIBurst)
	}
	if o.RecheckInterval < time.Minute {
		return fmt.Errorf("--recheck-interval must be at least 1m, got %s", o.RecheckInterval)
	}
	o.WatchNamespaces = splitList(o.watchNamespaces + "," + o.ClusterResourceNamespace)
	o.KubernetesCSRRequesters = splitList(o.csrRequesters)
	switch {
	case o.EnableKubernetesCSR && len(o.KubernetesCSRRequesters) == 0:
		return errors.New("--enable-kubernetes-csr needs --kubernetes-csr-requesters: a Kubernetes CSR has no namespace, so name the users whose CSRs may be signed")
	case !o.EnableKubernetesCSR && len(o.KubernetesCSRRequesters) > 0:
		return errors.New("--kubernetes-csr-requesters is set but Kubernetes CSRs are off; add --enable-kubernetes-csr, or drop the requesters")
	}
	return nil
}

// splitList is a comma-separated flag's items, trimmed, empty ones and
// repeats dropped.
func splitList(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(n); n != "" && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// The throughput defaults, measured with make bench-e2e (docs/performance.md).
const (
	DefaultMaxConcurrentReconciles = 16
	DefaultKubeAPIQPS              = 200
	DefaultKubeAPIBurst            = 400
)

// RESTConfig is cfg with the client's rate limits.
func (o *Options) RESTConfig(cfg *rest.Config) *rest.Config {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = float32(o.KubeAPIQPS), o.KubeAPIBurst
	return cfg
}

// GracefulShutdownTimeout bounds the controller's stop after SIGTERM.
const GracefulShutdownTimeout = 10 * time.Second

// leaderElectionID names the Lease.
const leaderElectionID = "linkerd-ca-issuer-leader"

// ManagerOptions are the controller-runtime manager settings the options
// imply, with the Secret cache scoped to the watched namespaces; cfg is what
// the leader election lock talks to the API server with.
func (o *Options) ManagerOptions(scheme *runtime.Scheme, cfg *rest.Config) (ctrl.Options, error) {
	opts := ctrl.Options{
		Scheme:                  scheme,
		Cache:                   CacheOptions(o.WatchNamespaces),
		Controller:              config.Controller{MaxConcurrentReconciles: o.MaxConcurrentReconciles},
		PprofBindAddress:        o.PprofAddr,
		Metrics:                 metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:  o.ProbeAddr,
		LeaderElection:          o.LeaderElect,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: o.LeaderElectionNamespace,
		LeaseDuration:           &o.LeaseDuration,
		RenewDeadline:           &o.RenewDeadline,
		RetryPeriod:             &o.RetryPeriod,
		// Step down promptly on SIGTERM so that a rollout's new leader takes
		// over without waiting for the lease to expire. The manager stops
		// its controllers first, so nothing signs after the release.
		LeaderElectionReleaseOnCancel: true,
		// A stop that hangs (a request in flight, events still to send)
		// ends well inside the kubelet's 30 s grace period, so the lease is
		// released rather than left to expire after a SIGKILL.
		GracefulShutdownTimeout: ptr.To(GracefulShutdownTimeout),
	}
	if o.LeaderElect && o.LeaderElectionIdentity != "" {
		lock, err := resourcelock.NewFromKubeconfig(resourcelock.LeasesResourceLock, o.LeaderElectionNamespace, leaderElectionID,
			resourcelock.ResourceLockConfig{Identity: o.LeaderElectionIdentity}, cfg, o.RenewDeadline)
		if err != nil {
			return opts, fmt.Errorf("leader election lock: %w", err)
		}
		opts.LeaderElectionResourceLockInterface = lock
	}
	return opts, nil
}

// podNamespace is the namespace the controller runs in: POD_NAMESPACE (the
// Helm chart sets it from the downward API), else the service account's.
func podNamespace() string {
	if ns := os.Getenv("POD_NAMESPACE"); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}
