// Command bench-rotation measures a trust anchor rotation at scale on the
// local control plane: a mesh of W meshed Deployments of R pods each (500 ×
// 10 by default) on kwok's nodes and Linkerd's control plane, rotated to a
// new root with the controller's restarts on, as `linkerd-ca rotation
// start` does it. It reports the API requests the issuer made for the
// rotation (client-go's rest_client_requests_total, by verb), the peak
// growth of its RSS over the rotation, and the time from the last pod
// without the new root going away to the switch. `make bench-rotation`
// runs it; docs/performance.md has the figures.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

const controlPlane = "linkerd"

func main() {
	workloads := flag.Int("workloads", 500, "Meshed Deployments.")
	replicas := flag.Int("replicas", 10, "Pods per Deployment.")
	concurrent := flag.Int("max-concurrent-restarts", 25, "The controller's --rotation-max-concurrent-restarts.")
	issuerArgs := flag.String("issuer-args", "", "More flags for the issuer, space-separated (to compare settings, or --pprof-bind-address to profile it).")
	flag.Parse()
	ctrllog.SetLogger(logr.Discard())
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *workloads, *replicas, *concurrent, strings.Fields(*issuerArgs)); err != nil {
		fmt.Fprintln(os.Stderr, "bench-rotation:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, workloads, replicas, concurrent int, issuerArgs []string) (err error) {
	cp, err := localcp.Start(ctx, localcp.Options{
		WatchNamespaces: []string{controlPlane}, Workloads: true, LinkerdNamespace: controlPlane, RotationRestarts: true,
		IssuerArgs: append([]string{"--zap-log-level=info", "--rotation-restarts", fmt.Sprintf("--rotation-max-concurrent-restarts=%d", concurrent),
			// The drain is the proxy certificate lifetime (24h by default):
			// what is measured ends at the switch.
			"--proxy-certificate-lifetime=10s"}, issuerArgs...),
		Logf: func(f string, a ...any) { fmt.Fprintf(os.Stderr, "… "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cp.KeepDir = true
			err = fmt.Errorf("%w (logs in %s)", err, cp.Dir)
		}
		_ = cp.Stop()
	}()
	c, err := client.NewWithWatch(cp.Config, client.Options{Scheme: localcp.Scheme()})
	if err != nil {
		return err
	}
	m := &mesh{c: c}
	if err := m.setUp(ctx); err != nil {
		return err
	}
	start := time.Now()
	if err := m.deploy(ctx, workloads, replicas); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "… mesh up: %d meshed pods in %d Deployments in %s\n", workloads*replicas, workloads, time.Since(start).Round(time.Second))
	if err := m.waitPhase(ctx, "Stable", "", 2*time.Minute); err != nil {
		return err
	}
	r, err := measure(ctx, cp, m)
	if err != nil {
		return err
	}
	r.print(workloads, replicas, concurrent)
	return nil
}
