//go:build e2e

// Package multicluster runs two local clusters, each with its own etcd,
// kube-apiserver, controller-manager, scheduler, kwok, cert-manager,
// trust-manager, stand-in Linkerd and the issuer's real binary, linked as
// Linkerd multicluster links them: each issuer reads the other through a
// link Secret, and the two rotate one set of roots together.
package multicluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// ns is Linkerd's control plane in both clusters; apps, the meshed
// workloads'.
const (
	ns   = "linkerd"
	apps = "apps"
	// lifetime stands in for Linkerd's 24 h proxy certificates: a retired
	// root drains within the test.
	lifetime = 15 * time.Second
)

var (
	west, east *cluster
	ctx        = context.Background()
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	if os.Getenv("USE_EXISTING_CLUSTER") == "true" {
		fmt.Println("multicluster: needs two local control planes; USE_EXISTING_CLUSTER runs none")
		return 0
	}
	start := time.Now()
	var wg sync.WaitGroup
	cps := make([]*localcp.ControlPlane, 2)
	errs := make([]error, 2)
	for i, name := range []string{"west", "east"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cps[i], errs[i] = localcp.Start(ctx, localcp.Options{
				WatchNamespaces: []string{ns}, Workloads: true, WithoutKMS: true, LinkerdNamespace: ns,
				RotationRestarts: true, Multicluster: true,
				IssuerArgs: []string{"--proxy-certificate-lifetime=" + lifetime.String(), "--rotation-restarts"},
				Logf:       func(f string, a ...any) { fmt.Printf("multicluster %s: "+f+"\n", append([]any{name}, a...)...) },
			})
		}()
	}
	wg.Wait()
	code := 1
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintln(os.Stderr, "multicluster: cannot start the two clusters:", err)
	} else {
		fmt.Printf("multicluster: two clusters up in %s\n", time.Since(start).Round(time.Millisecond))
		west, east = &cluster{name: "west", cp: cps[0], c: cps[0].Client}, &cluster{name: "east", cp: cps[1], c: cps[1].Client}
		west.peer, east.peer = east, west
		code = m.Run()
		if code != 0 {
			for _, c := range []*cluster{west, east} {
				fmt.Printf("=== %s\n%s\n", c.name, c.cp.Logs(30))
			}
		}
	}
	for _, cp := range cps {
		if cp == nil {
			continue
		}
		cp.KeepDir = os.Getenv("E2E_KEEP_DIR") != ""
		if err := cp.Stop(); err != nil {
			fmt.Fprintln(os.Stderr, "multicluster: stopping a cluster:", err)
			if code == 0 {
				code = 1
			}
		}
	}
	return code
}
