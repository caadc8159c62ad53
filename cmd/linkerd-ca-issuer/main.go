// Command linkerd-ca-issuer is a cert-manager external issuer that signs
// Linkerd's identity issuer certificate from a trust anchor Secret.
package main

import (
	"flag"
	"fmt"
	"os"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"go.uber.org/zap/zapcore"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/anchorkey"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/anchorkey/awskms"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/controller"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotator"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/version"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "linkerd-ca-issuer:", err)
		os.Exit(1)
	}
}

func run() error {
	var opts controller.Options
	var rotation rotator.Options
	var logOpts zap.Options
	opts.BindFlags(flag.CommandLine)
	rotation.BindFlags(flag.CommandLine)
	logOpts.BindFlags(flag.CommandLine)
	showVersion := flag.Bool("version", false, "Print the version and exit.")
	flag.Parse()
	if *showVersion {
		fmt.Println("linkerd-ca-issuer", version.String())
		return nil
	}
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&logOpts)))
	// The audit trail logs at info whatever the level, and is never sampled:
	// controller-runtime samples its production logger below V(2).
	opts.AuditLog = zap.New(zap.UseFlagOptions(&logOpts), zap.Level(zapcore.Level(-2))).WithName("audit")
	if err := opts.Complete(); err != nil {
		return err
	}
	if err := rotation.Complete(); err != nil {
		return err
	}
	opts.Rotation = rotation.Enabled

	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	cfg := opts.RESTConfig(ctrl.GetConfigOrDie())
	mgrOpts, err := opts.ManagerOptions(scheme, cfg)
	if err != nil {
		return err
	}
	if rotation.Enabled {
		rotator.Cache(&mgrOpts.Cache, opts.WatchNamespaces, rotation.Restarts)
	}
	mgr, err := ctrl.NewManager(cfg, mgrOpts)
	if err != nil {
		return fmt.Errorf("creating the manager: %w", err)
	}
	ctx := ctrl.SetupSignalHandler()
	// The SDK reads its configuration when a spec.kms first needs it: an
	// install without KMS anchors needs no AWS settings.
	opts.Keys = anchorkey.Providers{AWS: &awskms.Provider{}}
	if err := controller.Setup(ctx, mgr, &opts); err != nil {
		return fmt.Errorf("setting up the controllers: %w", err)
	}
	if rotation.Enabled {
		if err := rotator.Setup(ctx, mgr, rotation, opts.ClusterResourceNamespace); err != nil {
			return fmt.Errorf("setting up the rotation controllers: %w", err)
		}
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return err
	}
	if err := mgr.AddReadyzCheck("caches", controller.CachesSynced(mgr.GetCache())); err != nil {
		return err
	}
	ctrl.Log.Info("starting", "version", version.String(), "clusterResourceNamespace", opts.ClusterResourceNamespace, "watchNamespaces", opts.WatchNamespaces)
	return mgr.Start(ctx)
}
