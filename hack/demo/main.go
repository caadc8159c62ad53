// Command demo replays Linkerd's "automatically rotating control plane TLS
// credentials" flow with linkerd-ca-issuer on a local control plane, one
// line per step, and prints the identity issuer certificate Linkerd would
// read. By default it is the current guide's flow (root kept in
// cert-manager, a LinkerdCAClusterIssuer, trust-manager distributing the
// roots); DEMO_FLOW=original replays the original guide's namespaced one,
// and DEMO_FLOW=rotation the current one on a small mesh, then rotates its
// root.
// `make demo` runs it; DEMO_EXIT=1 exits after the summary.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

const (
	ns     = "linkerd"
	tenant = "team-a"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	flow := os.Getenv("DEMO_FLOW")
	if flow != "" && flow != "current" && flow != "original" && flow != "rotation" {
		return fmt.Errorf("DEMO_FLOW=%q: use current (the default: Linkerd's current guide), original (the original guide's namespaced issuer) or rotation (the current guide, a mesh, and its root rotated)", flow)
	}
	opts := localcp.Options{
		WatchNamespaces: []string{ns},
		Logf:            func(f string, a ...any) { fmt.Printf("   … "+f+"\n", a...) },
	}
	what := "etcd, kube-apiserver, cert-manager's controllers, trust-manager and linkerd-ca-issuer"
	if flow == "rotation" {
		rotationOptions(&opts)
		what = "etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kwok's nodes, cert-manager's controllers, trust-manager, linkerd-ca-issuer and stand-ins for Linkerd's injector and control plane"
	}
	fmt.Printf("Starting a local control plane: %s (built in bin/)\n", what)
	started := time.Now()
	cp, err := localcp.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cp.KeepDir = true
			err = fmt.Errorf("%w\nlogs: %s (cert-manager.log, trust-manager.log, issuer.log)", err, cp.Dir)
		}
		if stopErr := cp.Stop(); stopErr != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", stopErr)
		}
	}()
	fmt.Printf("   control plane up in %s\n\n", time.Since(started).Round(100*time.Millisecond))

	var secret *corev1.Secret
	switch flow {
	case "original":
		secret, err = originalGuide(ctx, cp)
	case "rotation":
		secret, err = rotationFlow(ctx, cp)
	default:
		secret, err = currentGuide(ctx, cp)
	}
	if err != nil {
		return err
	}

	fmt.Printf("\nlinkerd-ca check -L %s --secret %s (linkerd check's identity checks):\n\n", ns, secret.Name)
	if code := cli.Run(ctx, []string{"check", "--kubeconfig", cp.AdminKubeconfig, "-L", ns, "--secret", secret.Name}, os.Stdout, os.Stderr); code != 0 {
		return fmt.Errorf("the issued Secret fails linkerd's identity checks")
	}

	if flow != "rotation" {
		fmt.Println("\nThe rotation, the headline feature, on a small mesh: DEMO_FLOW=rotation make demo")
	}
	if os.Getenv("DEMO_EXIT") == "1" {
		return nil
	}
	// make demo does not build kubectl (make test and make tools do).
	kubectl := "kubectl"
	if _, err := os.Stat("bin/kubectl"); err == nil {
		kubectl = "bin/kubectl"
	}
	fmt.Printf("\nThe control plane keeps running. Try:\n\n  export KUBECONFIG=%s\n  %s get linkerdcaclusterissuers,linkerdcaissuers -A -o wide\n  %s get certificates,certificaterequests -A\n\n", cp.AdminKubeconfig, kubectl, kubectl)
	fmt.Println("Press Ctrl-C to stop it and clean up.")
	<-ctx.Done()
	fmt.Println("\nStopping.")
	return nil
}
