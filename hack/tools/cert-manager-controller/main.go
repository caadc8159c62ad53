// Command cert-manager-controller runs cert-manager's own controllers — the
// Certificate lifecycle, the request approver, and the built-in CA and
// SelfSigned issuers (Linkerd's current guide makes its trust anchor with
// the latter) —
// from the cert-manager module, so the local control plane has the real
// cert-manager without a container image. It has no webhook and no ACME.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

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

func main() {
	var opts controllerpkg.ContextOptions
	var qps float64
	flag.StringVar(&opts.Kubeconfig, "kubeconfig", "", "Path to the kubeconfig of the API server.")
	flag.StringVar(&opts.ClusterResourceNamespace, "cluster-resource-namespace", "cert-manager", "Namespace of ClusterIssuer Secrets.")
	flag.Float64Var(&qps, "kube-api-qps", 50, "API server requests per second (without API priority and fairness).")
	flag.IntVar(&opts.KubernetesAPIBurst, "kube-api-burst", 100, "API server request burst.")
	klog.InitFlags(flag.CommandLine)
	flag.Parse()
	opts.KubernetesAPIQPS = float32(qps)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(logf.NewContext(ctx, klog.Background(), "cert-manager-controller"), opts); err != nil {
		fmt.Fprintln(os.Stderr, "cert-manager-controller:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, opts controllerpkg.ContextOptions) error {
	factory, err := controllerpkg.NewContextFactory(ctx, opts)
	if err != nil {
		return fmt.Errorf("building the controller context: %w", err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(controllerpkg.Known()))
	for name, construct := range controllerpkg.Known() {
		c, err := construct(factory)
		if err != nil {
			return fmt.Errorf("constructing %s: %w", name, err)
		}
		wg.Go(func() {
			klog.InfoS("starting controller", "controller", name)
			if err := c.Run(5, ctx); err != nil {
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
