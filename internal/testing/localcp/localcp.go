// Package localcp brings up a real, local control plane for the e2e suite
// and the demo: etcd and kube-apiserver through envtest, cert-manager's own
// controllers and this project's issuer binary as subprocesses, each with the
// identity and permissions it would have in a cluster; with
// Options.Workloads, also kube-controller-manager, kube-scheduler and kwok,
// so that Deployments run. The binaries come from bin/, built by the
// Makefile from the Go module proxy.
//
// With USE_EXISTING_CLUSTER=true it attaches to the cluster in KUBECONFIG
// instead, where cert-manager and the issuer are already installed.
package localcp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
)

// IssuerNamespace is where the issuer runs and holds its leader election
// Lease.
const IssuerNamespace = "linkerd-ca-issuer"

// IssuerUser is the identity the issuer binary runs as: the user name of
// the chart's ServiceAccount.
const IssuerUser = "system:serviceaccount:" + IssuerNamespace + ":" + ReleaseName

// Options shape the control plane.
type Options struct {
	// RepoRoot holds bin/ and config/; found from the working directory when
	// empty.
	RepoRoot string
	// WatchNamespaces are where LinkerdCAIssuers may live; the issuer gets
	// the chart's Secret and ConfigMap Role in each. linkerd when empty.
	WatchNamespaces []string
	// ClusterResourceNamespace is where LinkerdCAClusterIssuers read their
	// anchor: TrustNamespace (cert-manager) when empty, as in Linkerd's
	// current guide.
	ClusterResourceNamespace string
	// CSRRequesters, when set, turn on Kubernetes CSR signing for them.
	CSRRequesters []string
	// IssuerArgs are added to the issuer's flags, after the suite's own
	// (a repeated flag's last value wins).
	IssuerArgs []string
	// Workloads makes the control plane a cluster that runs workloads:
	// kube-controller-manager, kube-scheduler, kwok's fake nodes, the
	// stand-in for Linkerd's proxy injector and Linkerd's control plane
	// Deployments (cluster.go, injector.go, linkerd.go). The demo does
	// without them.
	Workloads bool
	// WithoutKMS leaves local-kms out of a Workloads cluster (the demo's).
	WithoutKMS bool
	// LinkerdNamespace is the mesh's control plane namespace with
	// Workloads: where the stand-in injector reads the trust roots, and
	// where Linkerd's control plane Deployments run. linkerd when empty.
	LinkerdNamespace string
	// RotationRestarts grants the issuer the chart's restart RBAC
	// (rotation.restarts.enabled); --rotation-restarts is the tests' to set.
	RotationRestarts bool
	// Multicluster: --multicluster, and the chart's multicluster.enabled.
	Multicluster bool
	// ApproverPolicy runs cert-manager with its built-in approver off and
	// approver-policy approving, as the chart's values say (approverpolicy.go).
	ApproverPolicy bool
	// Logf reports progress; nil is silent.
	Logf func(format string, args ...any)
}

// ControlPlane is a running control plane and what runs against it.
type ControlPlane struct {
	// Config and Client act as cluster admin.
	Config *rest.Config
	Client client.Client
	// Existing is true when attached to a cluster with USE_EXISTING_CLUSTER.
	Existing bool
	// Dir holds kubeconfigs and process logs; removed by Stop.
	Dir string
	// AdminKubeconfig is a kubeconfig file for kubectl.
	AdminKubeconfig string
	// IssuerConfig authenticates as IssuerUser (local only).
	IssuerConfig *rest.Config
	// IssuerMetricsAddr is the issuer's metrics endpoint (local only).
	IssuerMetricsAddr string
	// IssuerMetrics are the metrics endpoints of the issuer's replicas, by
	// name (local only).
	IssuerMetrics map[string]string
	// Outages are RestartAPIServer's.
	Outages []Outage
	// KeepDir leaves Dir in place on Stop, for logs worth reading.
	KeepDir          bool
	issuerKubeconfig string

	env *envtest.Environment
	// procs is read by tests running in parallel while one restarts the
	// issuer: only through running, add and remove.
	procsMu sync.Mutex
	procs   []*process
	// stops end what runs in the test process (the stand-in injector).
	stops []func() error
	kms   *localKMS
	opts  Options
}

// Start brings the control plane up. On error, everything already started
// is stopped again.
func Start(ctx context.Context, opts Options) (cp *ControlPlane, err error) {
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if len(opts.WatchNamespaces) == 0 {
		opts.WatchNamespaces = []string{v1alpha1.DefaultControlPlaneNamespace}
	}
	if opts.ClusterResourceNamespace == "" {
		opts.ClusterResourceNamespace = TrustNamespace
	}
	if opts.LinkerdNamespace == "" {
		opts.LinkerdNamespace = v1alpha1.DefaultControlPlaneNamespace
	}
	if opts.RepoRoot == "" {
		if opts.RepoRoot, err = repoRoot(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "linkerd-ca-issuer-e2e-")
	if err != nil {
		return nil, err
	}
	cp = &ControlPlane{Dir: dir, opts: opts, Existing: os.Getenv("USE_EXISTING_CLUSTER") == "true"}
	defer func() {
		if err != nil {
			err = errors.Join(err, cp.Stop())
			cp = nil
		}
	}()

	cp.env = &envtest.Environment{
		Scheme:                Scheme(),
		BinaryAssetsDirectory: filepath.Join(opts.RepoRoot, "bin"),
		ErrorIfCRDPathMissing: true,
	}
	if !cp.Existing {
		bins := []string{"etcd", "kube-apiserver", "cert-manager-controller", "trust-manager", "linkerd-ca-issuer", "helm"}
		if opts.Workloads {
			bins = append(bins, clusterBinaries(opts)...)
		}
		for _, bin := range bins {
			if _, err := os.Stat(filepath.Join(opts.RepoRoot, "bin", bin)); err != nil {
				return cp, fmt.Errorf("bin/%s is missing; build it with 'make tools build' (the e2e and demo targets do): %w", bin, err)
			}
		}
		cmCRDs, err := certManagerCRDs(opts.RepoRoot)
		if err != nil {
			return cp, err
		}
		tmCRDs, err := trustManagerCRDs(opts.RepoRoot)
		if err != nil {
			return cp, err
		}
		cp.env.CRDDirectoryPaths = []string{cmCRDs, tmCRDs, filepath.Join(opts.RepoRoot, "config", "crd", "bases")}
		if opts.ApproverPolicy {
			apCRDs, err := approverPolicyCRDs(opts.RepoRoot)
			if err != nil {
				return cp, err
			}
			cp.env.CRDDirectoryPaths = append(cp.env.CRDDirectoryPaths, apCRDs)
		}
	}
	opts.Logf("starting etcd and kube-apiserver")
	if cp.Config, err = cp.env.Start(); err != nil {
		return cp, fmt.Errorf("starting the control plane: %w", err)
	}
	if cp.Client, err = client.New(cp.Config, client.Options{Scheme: cp.env.Scheme}); err != nil {
		return cp, err
	}
	if cp.Existing {
		cp.AdminKubeconfig = os.Getenv("KUBECONFIG")
	} else if cp.AdminKubeconfig, err = cp.writeKubeconfig("admin", envtest.User{Name: "admin", Groups: []string{"system:masters"}}); err != nil {
		return cp, err
	}
	for _, ns := range append([]string{IssuerNamespace, TrustNamespace, opts.ClusterResourceNamespace}, opts.WatchNamespaces...) {
		if err := cp.ensureNamespace(ctx, ns); err != nil {
			return cp, err
		}
	}
	if cp.Existing {
		return cp, nil
	}

	if opts.Workloads {
		opts.Logf("starting kube-controller-manager, kube-scheduler and kwok")
		if err := cp.startCluster(ctx); err != nil {
			return cp, err
		}
		opts.Logf("starting the stand-in for Linkerd's proxy injector, and Linkerd's control plane Deployments")
		if err := cp.ensureNamespace(ctx, opts.LinkerdNamespace); err != nil {
			return cp, err
		}
		if err := cp.startInjector(ctx, opts.LinkerdNamespace); err != nil {
			return cp, err
		}
		if err := cp.createAll(ctx, LinkerdControlPlane(opts.LinkerdNamespace)...); err != nil {
			return cp, err
		}
		cp.startIdentityService(ctx, opts.LinkerdNamespace)
	}
	opts.Logf("granting the issuer the RBAC its Helm chart renders")
	if err := cp.bindIssuerRBAC(ctx); err != nil {
		return cp, err
	}
	opts.Logf("starting cert-manager's controllers")
	if err := cp.startCertManager(ctx); err != nil {
		return cp, err
	}
	opts.Logf("starting trust-manager")
	if err := cp.startTrustManager(ctx); err != nil {
		return cp, err
	}
	opts.Logf("starting the issuer")
	if err := cp.startIssuer(ctx); err != nil {
		return cp, err
	}
	return cp, nil
}

// Stop ends every process, the control plane, and removes Dir.
func (cp *ControlPlane) Stop() error {
	var errs []error
	for _, stop := range cp.stops {
		errs = append(errs, stop())
	}
	procs := cp.running()
	for i := len(procs) - 1; i >= 0; i-- {
		errs = append(errs, procs[i].stop())
	}
	if cp.env != nil {
		errs = append(errs, cp.env.Stop())
	}
	if !cp.KeepDir {
		errs = append(errs, os.RemoveAll(cp.Dir))
	}
	return errors.Join(errs...)
}
