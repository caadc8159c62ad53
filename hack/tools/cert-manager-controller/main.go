// Command cert-manager-controller runs cert-manager's own controllers — the
// Certificate lifecycle, the request approver, and the built-in CA and
// SelfSigned issuers (Linkerd's current guide makes its trust anchor with
// the latter) —
// from the cert-manager module, with cert-manager's own defaulted controller
// configuration (request backoff, API QPS and burst, workers) as a real
// cert-manager has it, so the local control plane has the real cert-manager
// without a container image. It has no webhook and no ACME.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"
	"k8s.io/klog/v2"

	// Each controller registers itself with controllerpkg when imported.
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	_ "github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	_ "github.com/cert-manager/cert-manager/pkg/controller/issuers"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// defaults are cert-manager's controller configuration defaults, from
// internal/apis/config/controller/v1alpha1/defaults.go in the cert-manager
// module. That package is internal, and the one public package that links
// it (pkg/controller/configfile) also pulls in Venafi's client, which the
// module proxy does not serve; so the values are restated here, and
// defaults_test.go reads them from that file, so that they cannot drift
// when cert-manager is upgraded.
var defaults = struct {
	kubernetesAPIQPS                         float32
	kubernetesAPIBurst                       int
	numberOfConcurrentWorkers                int
	maxConcurrentChallenges                  int
	certificateRequestMinimumBackoffDuration time.Duration
	certificateRequestMaximumBackoffDuration time.Duration
	enableCertificateOwnerRef                bool
	clusterIssuerAmbientCredentials          bool
	issuerAmbientCredentials                 bool
}{
	kubernetesAPIQPS:                         20,
	kubernetesAPIBurst:                       50,
	numberOfConcurrentWorkers:                5,
	maxConcurrentChallenges:                  60,
	certificateRequestMinimumBackoffDuration: 1 * time.Hour,
	certificateRequestMaximumBackoffDuration: 32 * time.Hour,
	enableCertificateOwnerRef:                false,
	clusterIssuerAmbientCredentials:          true,
	issuerAmbientCredentials:                 false,
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "Path to the kubeconfig of the API server.")
	clusterResourceNamespace := flag.String("cluster-resource-namespace", "cert-manager", "Namespace of ClusterIssuer Secrets (the Helm chart's default).")
	controllers := flag.String("controllers", "*", "As cert-manager's flag: * for every controller, -<name> to leave one out "+
		"(*,-certificaterequests-approver is its chart's disableAutoApproval).")
	klog.InitFlags(flag.CommandLine)
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logf.NewContext(ctx, klog.Background(), "cert-manager-controller"), contextOptions(*kubeconfig, *clusterResourceNamespace), strings.Split(*controllers, ",")); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
		os.Exit(1)
	}
}

// contextOptions are the controllers' options as cert-manager's controller
// command builds them from its defaulted configuration.
func contextOptions(kubeconfig, clusterResourceNamespace string) controllerpkg.ContextOptions {
	opts := controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   defaults.kubernetesAPIQPS,
		KubernetesAPIBurst: defaults.kubernetesAPIBurst,
	}
	opts.ClusterResourceNamespace = clusterResourceNamespace
	opts.ClusterIssuerAmbientCredentials = defaults.clusterIssuerAmbientCredentials
	opts.IssuerAmbientCredentials = defaults.issuerAmbientCredentials
	opts.EnableOwnerRef = defaults.enableCertificateOwnerRef
	opts.CertificateRequestMinimumBackoffDuration = defaults.certificateRequestMinimumBackoffDuration
	opts.CertificateRequestMaximumBackoffDuration = defaults.certificateRequestMaximumBackoffDuration
	opts.MaxConcurrentChallenges = defaults.maxConcurrentChallenges
	return opts
}

func run(ctx context.Context, opts controllerpkg.ContextOptions, controllers []string) error {
	klog.InfoS("cert-manager's default configuration", "kubeAPIQPS", opts.KubernetesAPIQPS, "kubeAPIBurst", opts.KubernetesAPIBurst,
		"workers", defaults.numberOfConcurrentWorkers, "requestBackoff", opts.CertificateRequestMinimumBackoffDuration)
	factory, err := controllerpkg.NewContextFactory(ctx, opts)
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(controllerpkg.Known()))
	for name, construct := range controllerpkg.Known() {
		if !enabled(name, controllers) {
			klog.InfoS("controller left out", "controller", name)
			continue
		}
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("constructing %s: %w", name, err)
		}
		wg.Go(func() {
			klog.InfoS("starting controller", "controller", name)
			if err := c.Run(defaults.numberOfConcurrentWorkers, ctx); err != nil {
				errs <- fmt.Errorf("%s: %w", name, err)
			}
		})
	}
	// The controllers registered their informers while being constructed;
	// the factories they share start them all.
	shared, err := factory.Build("informers")
	if err != nil {
		return err
	}
	shared.SharedInformerFactory.Start(ctx.Done())
	shared.KubeSharedInformerFactory.Start(ctx.Done())
	shared.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())
	wg.Wait()
	close(errs)
	return <-errs
}

// enabled reads cert-manager's --controllers: a name, or * for all, less
// the names given as -<name>.
func enabled(name string, controllers []string) bool {
	on := false
	for _, c := range controllers {
		switch strings.TrimSpace(c) {
		case "*", name:
			on = true
		case "-" + name:
			return false
		}
	}
	return on
}
