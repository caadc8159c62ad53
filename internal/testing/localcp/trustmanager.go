package localcp

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TrustNamespace is where trust-manager reads Bundle sources from, and where
// the current Linkerd guide keeps the trust anchor: cert-manager's namespace.
const TrustNamespace = "cert-manager"

// trustManagerCRDs is deploy/crds of the trust-manager module hack/tools
// builds, so the Bundle CRD always matches the controller.
func trustManagerCRDs(repo string) (string, error) {
	return toolCRDs(repo, "github.com/cert-manager/trust-manager")
}

// toolCRDs is deploy/crds of a module hack/tools builds a controller from.
func toolCRDs(repo, module string) (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", module)
	cmd.Dir = filepath.Join(repo, "hack", "tools")
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("locating the %s module for its CRDs (go list -m in hack/tools): %w", module, err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "deploy", "crds"), nil
}

// startTrustManager runs trust-manager's real controller, reading Bundle
// sources from TrustNamespace. Nothing calls its webhook (the local control
// plane registers none), but it will not start without a serving
// certificate, so it gets a throwaway one.
func (cp *ControlPlane) startTrustManager(ctx context.Context) error {
	kubeconfig, err := cp.writeKubeconfig("trust-manager", envtest.User{Name: "trust-manager", Groups: []string{"system:masters"}})
	if err != nil {
		return err
	}
	certDir := filepath.Join(cp.Dir, "trust-manager-tls")
	if err := writeServingCert(certDir, "trust-manager"); err != nil {
		return err
	}
	ports := make([]string, 3)
	for i := range ports {
		addr, err := freeAddr()
		if err != nil {
			return err
		}
		if _, ports[i], err = net.SplitHostPort(addr); err != nil {
			return err
		}
	}
	if err := cp.start("trust-manager", filepath.Join(cp.opts.RepoRoot, "bin", "trust-manager"), nil,
		"--kubeconfig="+kubeconfig,
		"--trust-namespace="+TrustNamespace,
		"--leader-elect=false",
		"--readiness-probe-port="+ports[0],
		"--metrics-port="+ports[1],
		"--webhook-port="+ports[2],
		"--webhook-host=127.0.0.1",
		"--webhook-certificate-dir="+certDir,
	); err != nil {
		return err
	}
	return waitHTTP(ctx, "http://127.0.0.1:"+ports[0]+"/readyz", 60*time.Second)
}

// writeServingCert writes a self-signed tls.crt and tls.key for 127.0.0.1.
func writeServingCert(dir, name string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Minute), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}
