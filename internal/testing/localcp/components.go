package localcp

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// certManagerCRDs is deploy/crds of the cert-manager module the product
// builds against, so the CRDs always match the controllers.
func certManagerCRDs(repo string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cert-manager/cert-manager")
	cmd.Dir = repo
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating the cert-manager module for its CRDs (go list -m): %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds"), nil
}

func (cp *ControlPlane) startCertManager() error {
	kubeconfig, err := cp.writeKubeconfig("cert-manager", envtest.User{Name: "cert-manager", Groups: []string{"system:masters"}})
	if err != nil {
		return err
	}
	return cp.start("cert-manager", filepath.Join(cp.opts.RepoRoot, "bin", "cert-manager-controller"), nil,
		"--kubeconfig="+kubeconfig, "--cluster-resource-namespace=cert-manager", "--v=2")
}

func (cp *ControlPlane) startIssuer(ctx context.Context) error {
	kubeconfig, cfg, err := cp.addUser("issuer", envtest.User{Name: IssuerUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + IssuerNamespace}})
	if err != nil {
		return err
	}
	cp.IssuerConfig = cfg
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	probes, err := freeAddr()
	if err != nil {
		return err
	}
	cp.IssuerMetricsAddr = metrics
	args := []string{
		"--kubeconfig=" + kubeconfig,
		"--watch-namespaces=" + strings.Join(cp.opts.WatchNamespaces, ","),
		"--cluster-resource-namespace=" + cp.opts.ClusterResourceNamespace,
		"--metrics-bind-address=" + metrics,
		"--health-probe-bind-address=" + probes,
		"--zap-log-level=debug",
	}
	if len(cp.opts.CSRRequesters) > 0 {
		args = append(args, "--enable-kubernetes-csr", "--kubernetes-csr-requesters="+strings.Join(cp.opts.CSRRequesters, ","))
	}
	args = append(args, cp.opts.IssuerArgs...)
	if err := cp.start("issuer", filepath.Join(cp.opts.RepoRoot, "bin", "linkerd-ca-issuer"), []string{"POD_NAMESPACE=" + IssuerNamespace}, args...); err != nil {
		return err
	}
	return waitHTTP(ctx, "http://"+probes+"/readyz", 60*time.Second)
}
