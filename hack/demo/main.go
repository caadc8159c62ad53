// Command demo replays Linkerd's "automatically rotating control plane TLS
// credentials" flow with linkerd-ca-issuer on a local control plane, one
// line per step, and prints the identity issuer certificate Linkerd would
// read. `make demo` runs it; DEMO_EXIT=1 exits after the summary.
package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	apiutil "github.com/cert-manager/cert-manager/pkg/api/util"
	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testpki"
)

const ns = "linkerd"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "demo failed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) (err error) {
	fmt.Println("Starting a local control plane: etcd, kube-apiserver, cert-manager's controllers and linkerd-ca-issuer (built in bin/)")
	started := time.Now()
	cp, err := localcp.Start(ctx, localcp.Options{Logf: func(f string, a ...any) { fmt.Printf("   … "+f+"\n", a...) }})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cp.KeepDir = true
			err = fmt.Errorf("%w\nlogs: %s (cert-manager.log, issuer.log)", err, cp.Dir)
		}
		if stopErr := cp.Stop(); stopErr != nil {
			fmt.Fprintln(os.Stderr, "stopping the control plane:", stopErr)
		}
	}()
	fmt.Printf("   control plane up in %s\n\n", time.Since(started).Round(100*time.Millisecond))
	c := cp.Client

	fmt.Printf("1. Namespace %s (Linkerd's control plane) exists\n", ns)

	fmt.Printf("2. Trust anchor: linkerd-ca trust-anchor create --namespace %s --name linkerd-trust-anchor\n   ", ns)
	if code := cli.Run(ctx, []string{"trust-anchor", "create", "--kubeconfig", cp.AdminKubeconfig, "--namespace", ns, "--name", "linkerd-trust-anchor"}, os.Stdout, os.Stderr); code != 0 {
		return fmt.Errorf("step 2, creating the trust anchor Secret: linkerd-ca exited %d", code)
	}

	issuer := &v1alpha1.LinkerdCAIssuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-trust-anchor"},
		Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: "linkerd-trust-anchor"},
	}
	if err := c.Create(ctx, issuer); err != nil {
		return fmt.Errorf("step 3, creating the LinkerdCAIssuer: %w", err)
	}
	ready, err := waitIssuerReady(ctx, c, issuer)
	if err != nil {
		return fmt.Errorf("step 3, LinkerdCAIssuer %s/%s not Ready: %w", ns, issuer.Name, err)
	}
	fmt.Printf("3. LinkerdCAIssuer %s/%s: Ready=%s (%s)\n", ns, issuer.Name, ready.Status, ready.Message)

	crt := testpki.SeedCertificate(ns)
	crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: "LinkerdCAIssuer", Name: issuer.Name}
	if err := c.Create(ctx, crt); err != nil {
		return fmt.Errorf("step 4, creating the Certificate: %w", err)
	}
	fmt.Printf("4. Certificate %s/%s: duration %s, renewBefore %s, commonName %s, isCA, ECDSA, usages %v → issuerRef %s/%s\n",
		ns, crt.Name, crt.Spec.Duration.Duration, crt.Spec.RenewBefore.Duration, crt.Spec.CommonName, crt.Spec.Usages,
		crt.Spec.IssuerRef.Kind, crt.Spec.IssuerRef.Name)
	if err := waitCertificateReady(ctx, c, crt); err != nil {
		return fmt.Errorf("step 4, Certificate %s/%s not Ready: %w", ns, crt.Name, err)
	}

	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: crt.Spec.SecretName}, &secret); err != nil {
		return fmt.Errorf("step 5, reading Secret %s/%s: %w", ns, crt.Spec.SecretName, err)
	}
	fmt.Printf("5. Secret %s/%s written by cert-manager:\n\n", ns, secret.Name)
	if err := summarize(&secret); err != nil {
		return fmt.Errorf("step 5: %w", err)
	}
	fmt.Printf("\n6. linkerd-ca check --namespace %s --secret %s (linkerd check's identity checks):\n\n", ns, secret.Name)
	if code := cli.Run(ctx, []string{"check", "--kubeconfig", cp.AdminKubeconfig, "--namespace", ns, "--secret", secret.Name}, os.Stdout, os.Stderr); code != 0 {
		return fmt.Errorf("step 6: the issued Secret fails linkerd's identity checks")
	}

	fmt.Printf("\nThe control plane keeps running. Try:\n\n  export KUBECONFIG=%s\n  bin/kubectl get linkerdcaissuers,certificates,certificaterequests -n %s\n\n", cp.AdminKubeconfig, ns)
	if os.Getenv("DEMO_EXIT") == "1" {
		return nil
	}
	fmt.Println("Press Ctrl-C to stop it and clean up.")
	<-ctx.Done()
	fmt.Println("\nStopping.")
	return nil
}

func waitIssuerReady(ctx context.Context, c client.Client, issuer *v1alpha1.LinkerdCAIssuer) (*metav1.Condition, error) {
	var ready *metav1.Condition
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(issuer), issuer); err != nil {
			return false, err
		}
		ready = meta.FindStatusCondition(issuer.Status.Conditions, "Ready")
		return ready != nil && ready.Status == metav1.ConditionTrue, nil
	})
	if err != nil && ready != nil {
		err = fmt.Errorf("%w (last: Ready=%s %s)", err, ready.Status, ready.Message)
	}
	return ready, err
}

func waitCertificateReady(ctx context.Context, c client.Client, crt *cmapi.Certificate) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(crt), crt); err != nil {
			return false, err
		}
		for _, cond := range crt.Status.Conditions {
			if cond.Type == cmapi.CertificateConditionReady {
				last = cond.Message
				return cond.Status == cmmeta.ConditionTrue, nil
			}
		}
		return false, nil
	})
	if err != nil && last != "" {
		err = fmt.Errorf("%w (last: %s)", err, last)
	}
	return err
}

// summarize prints what Linkerd will see in the identity issuer Secret.
func summarize(s *corev1.Secret) error {
	certs, err := pki.DecodeX509CertificateChainBytes(s.Data[corev1.TLSCertKey])
	if err != nil {
		return fmt.Errorf("tls.crt: %w", err)
	}
	roots, err := pki.DecodeX509CertificateSetBytes(s.Data["ca.crt"])
	if err != nil {
		return fmt.Errorf("ca.crt: %w", err)
	}
	key, err := pki.DecodePrivateKeyBytes(s.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		return fmt.Errorf("tls.key: %w", err)
	}
	cert := certs[0]
	pool := x509.NewCertPool()
	for _, r := range roots {
		pool.AddCert(r)
	}
	_, verifyErr := cert.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}})
	matches, _ := pki.PublicKeyMatchesCertificate(key.Public(), cert)

	rows := [][2]string{
		{"type", string(s.Type) + " (keys: " + strings.Join(keys(s.Data), ", ") + ")"},
		{"subject", cert.Subject.String()},
		{"DNS names", strings.Join(cert.DNSNames, ", ")},
		{"issuer", cert.Issuer.String()},
		{"serial", fmt.Sprintf("%x (%d bits)", cert.SerialNumber, cert.SerialNumber.BitLen())},
		{"valid", fmt.Sprintf("%s → %s (%s)", cert.NotBefore.UTC().Format(time.RFC3339), cert.NotAfter.UTC().Format(time.RFC3339), cert.NotAfter.Sub(cert.NotBefore))},
		{"CA", fmt.Sprintf("%v, path length %s", cert.IsCA, pathLen(cert))},
		{"key usage", strings.Join(keyUsages(cert.KeyUsage), ", ")},
		{"ext key usage", strings.Join(extKeyUsages(cert.ExtKeyUsage), ", ")},
		{"key", signer.DescribeKey(cert.PublicKey)},
		{"signature", cert.SignatureAlgorithm.String()},
		{"chains to ca.crt", yesNo(verifyErr == nil, verifyErr) + fmt.Sprintf(" (root %s, SHA-256 %s)", roots[0].Subject, signer.Fingerprint(roots[0]))},
		{"tls.key matches", yesNo(matches, nil)},
	}
	for _, r := range rows {
		fmt.Printf("   %-17s %s\n", r[0]+":", r[1])
	}
	if verifyErr != nil || !matches {
		return errors.New("the issued Secret is not usable by Linkerd")
	}
	return nil
}

func keys(m map[string][]byte) []string {
	var out []string
	for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if len(m[k]) > 0 {
			out = append(out, k)
		}
	}
	return out
}

func pathLen(c *x509.Certificate) string {
	if c.MaxPathLen < 0 || (c.MaxPathLen == 0 && !c.MaxPathLenZero) {
		return "unlimited"
	}
	return fmt.Sprint(c.MaxPathLen)
}

func keyUsages(ku x509.KeyUsage) []string {
	var out []string
	for _, u := range apiutil.KeyUsageStrings(ku) {
		out = append(out, string(u))
	}
	return out
}

func extKeyUsages(eku []x509.ExtKeyUsage) []string {
	var out []string
	for _, u := range apiutil.ExtKeyUsageStrings(eku) {
		out = append(out, string(u))
	}
	return out
}

func yesNo(ok bool, err error) string {
	if ok {
		return "yes"
	}
	if err != nil {
		return "NO: " + err.Error()
	}
	return "NO"
}
