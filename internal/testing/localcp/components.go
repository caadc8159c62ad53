package localcp

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
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

func (cp *ControlPlane) startCertManager(ctx context.Context) error {
	kubeconfig, err := cp.writeKubeconfig("cert-manager", envtest.User{Name: CertManagerUser, Groups: []string{"system:masters"}})
	if err != nil {
		return err
	}
	args := []string{"--kubeconfig=" + kubeconfig, "--cluster-resource-namespace=cert-manager", "--v=2"}
	if cp.opts.ApproverPolicy {
		if err := cp.startApproverPolicy(ctx); err != nil {
			return err
		}
		args = append(args, builtInApproverOff)
	}
	return cp.start("cert-manager", filepath.Join(cp.opts.RepoRoot, "bin", "cert-manager-controller"), nil, args...)
}

// Scheme knows the kinds the suite uses.
func Scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}

func (cp *ControlPlane) startIssuer(ctx context.Context) error {
	kubeconfig, cfg, err := cp.addUser("issuer", envtest.User{Name: IssuerUser, Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + IssuerNamespace}})
	if err != nil {
		return err
	}
	cp.IssuerConfig, cp.issuerKubeconfig = cfg, kubeconfig
	return cp.StartIssuer(ctx, "issuer")
}

// StartIssuer starts a replica of the issuer named name ("issuer" is the
// first), or starts it again after StopIssuer, appending to its log, and
// waits until it is ready. Its metrics address lands in IssuerMetrics.
func (cp *ControlPlane) StartIssuer(ctx context.Context, name string) error {
	if cp.IssuerRunning(name) {
		// Two processes with one identity would both think they lead.
		return fmt.Errorf("replica %q is running already", name)
	}
	metrics, err := freeAddr()
	if err != nil {
		return err
	}
	probes, err := freeAddr()
	if err != nil {
		return err
	}
	args := []string{
		"--kubeconfig=" + cp.issuerKubeconfig,
		"--watch-namespaces=" + strings.Join(cp.opts.WatchNamespaces, ","),
		"--cluster-resource-namespace=" + cp.opts.ClusterResourceNamespace,
		"--metrics-bind-address=" + metrics,
		"--health-probe-bind-address=" + probes,
		"--zap-log-level=debug",
		// As the chart's default.
		"--rotation",
	}
	if cp.opts.Multicluster {
		args = append(args, "--multicluster")
	}
	if len(cp.opts.CSRRequesters) > 0 {
		args = append(args, "--enable-kubernetes-csr", "--kubernetes-csr-requesters="+strings.Join(cp.opts.CSRRequesters, ","))
	}
	args = append(args, cp.opts.IssuerArgs...)
	// As in a pod: POD_NAME, stable across a restart of the same replica.
	env := append([]string{"POD_NAMESPACE=" + IssuerNamespace, "POD_NAME=" + name}, cp.KMSEnv()...)
	if err := cp.start(name, filepath.Join(cp.opts.RepoRoot, "bin", "linkerd-ca-issuer"), env, args...); err != nil {
		return err
	}
	if cp.IssuerMetrics == nil {
		cp.IssuerMetrics = map[string]string{}
	}
	cp.IssuerMetrics[name] = metrics
	if name == "issuer" {
		cp.IssuerMetricsAddr = metrics
	}
	return waitHTTP(ctx, "http://"+probes+"/readyz", 60*time.Second)
}

// SetIssuerArgs replaces the flags added to the issuer's own at its next
// start (Options.IssuerArgs).
func (cp *ControlPlane) SetIssuerArgs(args ...string) { cp.opts.IssuerArgs = args }

// IssuerRunning reports whether a replica of the issuer runs under name.
func (cp *ControlPlane) IssuerRunning(name string) bool {
	for _, p := range cp.running() {
		if p.name == name {
			select {
			case err := <-p.done:
				p.done <- err // keep it for whoever stops it
				return false
			default:
				return true
			}
		}
	}
	return false
}

// RestartIssuerIfExited starts a replica of the issuer again if it has
// exited, as the kubelet restarts a container, and reports whether it did.
func (cp *ControlPlane) RestartIssuerIfExited(ctx context.Context, name string) (bool, error) {
	for _, p := range cp.running() {
		if p.name != name {
			continue
		}
		select {
		case <-p.done: //nolint:errcheck // it exited; why is in its log
			cp.remove(p)
			return true, cp.StartIssuer(ctx, name)
		default:
			return false, nil
		}
	}
	return false, fmt.Errorf("no replica %q", name)
}

// StopIssuer sends sig to a replica of the issuer (SIGTERM: a rolling
// update; SIGKILL: a crash) and waits until it has exited.
func (cp *ControlPlane) StopIssuer(name string, sig syscall.Signal) error {
	for _, p := range cp.running() {
		if p.name != name {
			continue
		}
		p.stopping.Store(true)
		cp.remove(p)
		_ = syscall.Kill(-p.cmd.Process.Pid, sig)
		select {
		case <-p.done: //nolint:errcheck // a stopped process's status says nothing
			return nil
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			return fmt.Errorf("%s did not exit within 30s of %s", name, sig)
		}
	}
	return fmt.Errorf("no running replica %q", name)
}
