//go:build e2e

// Package e2e replays Linkerd's identity issuer flow against a real API
// server, real cert-manager controllers and the issuer's real binary: the
// local control plane of internal/testing/localcp, or with USE_EXISTING_CLUSTER=true
// the cluster in KUBECONFIG (where cert-manager and the issuer must already
// run, watching the namespaces below).
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// csrRequester is the user whose Kubernetes CSRs the issuer signs: the
// local control plane's admin, who creates them in the suite.
const csrRequester = "admin"

// Each scenario has a namespace of its own; the issuer watches them all.
const (
	nsLinkerd  = "linkerd"
	nsRotation = "e2e-rotation"
	nsRefusals = "e2e-refusals"
	nsHealth   = "e2e-health"
	nsDenied   = "e2e-denied"
	nsPreset   = "e2e-preset"
	nsDrill    = "e2e-drill"
	nsMetrics  = "e2e-metrics"
	nsGuide    = "e2e-guide"
	nsFaults   = "e2e-faults"
	// nsMesh is the mesh's control plane: the stand-in injector's roots
	// and Linkerd's control plane Deployments.
	nsMesh = "e2e-mesh"
	// nsStuck is a second control plane's, whose rotation never propagates.
	nsStuck = "e2e-stuck"
	// nsKMS is the control plane of the issuer whose root key is in KMS.
	nsKMS = "e2e-kms"
	// nsAdmission is the control plane of the issuers the chart's
	// admission policies judge; nsAdmissionTenant, a tenant beside it.
	nsAdmission       = "e2e-admission"
	nsAdmissionTenant = "e2e-admission-tenant"
	nsCluster         = localcp.TrustNamespace
	issuerGroup       = "linkerdca.io"
)

var (
	cp  *localcp.ControlPlane
	cl  client.Client
	ctx = context.Background()
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	start := time.Now()
	var err error
	cp, err = localcp.Start(ctx, localcp.Options{
		WatchNamespaces:  []string{nsLinkerd, nsRotation, nsRefusals, nsHealth, nsDenied, nsPreset, nsDrill, nsMetrics, nsGuide, nsFaults, nsMesh, nsStuck, nsKMS, nsAdmission, nsAdmissionTenant},
		CSRRequesters:    []string{csrRequester},
		Workloads:        true,
		LinkerdNamespace: nsMesh,
		RotationRestarts: true,
		Logf:             func(f string, a ...any) { fmt.Printf("e2e: "+f+"\n", a...) },
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: cannot start the control plane:", err)
		return 1
	}
	fmt.Printf("e2e: control plane up in %s (logs in %s)\n", time.Since(start).Round(time.Millisecond), cp.Dir)
	cl = cp.Client
	// E2E_KEEP_DIR=1 keeps the processes' logs for reading after the run.
	cp.KeepDir = os.Getenv("E2E_KEEP_DIR") != ""
	if err := clearAlertStates(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: clearing the alert states:", err)
		return 1
	}
	code := m.Run()
	if code != 0 {
		fmt.Println(cp.Logs(30))
	}
	if err := cp.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: stopping the control plane:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}
