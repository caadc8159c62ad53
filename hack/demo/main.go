// Command demo replays Linkerd's "automatically rotating control plane TLS
// credentials" flow with linkerd-ca-issuer on a local control plane, one
// line per step, and prints the identity issuer certificate Linkerd would
// read. By default it is the current guide's flow (root kept in
// cert-manager, a LinkerdCAClusterIssuer, trust-manager distributing the
// roots); DEMO_FLOW=original replays the original guide's namespaced one.
// `make demo` runs it; DEMO_EXIT=1 exits after the summary.
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
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
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
	if flow != "" && flow != "current" && flow != "original" {
		return fmt.Errorf("DEMO_FLOW=%q: use current (the default: Linkerd's current guide) or original (the original guide's namespaced issuer)", flow)
	}
	fmt.Println("Starting a local control plane: etcd, kube-apiserver, cert-manager's controllers, trust-manager and linkerd-ca-issuer (built in bin/)")
	started := time.Now()
	cp, err := localcp.Start(ctx, localcp.Options{
		WatchNamespaces: []string{ns},
		Logf:            func(f string, a ...any) { fmt.Printf("   … "+f+"\n", a...) },
	})
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
	if flow == "original" {
		secret, err = originalGuide(ctx, cp)
	} else {
		secret, err = currentGuide(ctx, cp)
	}
	if err != nil {
		return err
	}

	fmt.Printf("\nlinkerd-ca check -L %s --secret %s (linkerd check's identity checks):\n\n", ns, secret.Name)
	if code := cli.Run(ctx, []string{"check", "--kubeconfig", cp.AdminKubeconfig, "-L", ns, "--secret", secret.Name}, os.Stdout, os.Stderr); code != 0 {
		return fmt.Errorf("the issued Secret fails linkerd's identity checks")
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

// currentGuide is Linkerd's current guide: the root made by cert-manager
// and kept in its namespace, a LinkerdCAClusterIssuer, trust-manager's
// Bundle, then a tenant's attempt to get a mesh CA from the same issuer.
func currentGuide(ctx context.Context, cp *localcp.ControlPlane) (*corev1.Secret, error) {
	c := cp.Client
	var nsObj corev1.Namespace
	if err := c.Get(ctx, client.ObjectKey{Name: ns}, &nsObj); err != nil {
		return nil, err
	}
	nsObj.Labels = map[string]string{guide.ControlPlaneLabel: "true"}
	if err := c.Update(ctx, &nsObj); err != nil {
		return nil, fmt.Errorf("step 1, labelling namespace %s: %w", ns, err)
	}
	fmt.Printf("1. Namespace %s (Linkerd's control plane), labelled %s=true\n", ns, guide.ControlPlaneLabel)

	anchorCrt := guide.TrustAnchorCertificate(guide.TrustAnchor)
	if err := createAll(ctx, c, guide.SelfSignedRootIssuer(), anchorCrt); err != nil {
		return nil, fmt.Errorf("step 2, the trust anchor: %w", err)
	}
	if err := waitCertificateReady(ctx, c, anchorCrt); err != nil {
		return nil, fmt.Errorf("step 2, Certificate %s/%s not Ready: %w", guide.TrustNamespace, anchorCrt.Name, err)
	}
	fmt.Printf("2. Trust anchor: ClusterIssuer %s (selfSigned) → Certificate %s/%s (CN %s, ECDSA P-256, isCA, %s)\n"+
		"   The root key stays in %s: `linkerd uninstall` deletes %s.\n",
		guide.RootIssuer, guide.TrustNamespace, anchorCrt.Name, anchorCrt.Spec.CommonName, anchorCrt.Spec.Duration.Duration, guide.TrustNamespace, ns)

	issuer := guide.ClusterIssuer(guide.TrustAnchor, ns)
	if err := c.Create(ctx, issuer); err != nil {
		return nil, fmt.Errorf("step 3, creating the LinkerdCAClusterIssuer: %w", err)
	}
	ready, err := waitIssuer(ctx, c, issuer, "Ready", metav1.ConditionTrue)
	if err != nil {
		return nil, fmt.Errorf("step 3, LinkerdCAClusterIssuer %s not Ready: %w", issuer.Name, err)
	}
	fmt.Printf("3. LinkerdCAClusterIssuer %s (anchor %s/%s, signs only for namespace %s): Ready=%s (%s)\n",
		issuer.Name, guide.TrustNamespace, guide.TrustAnchor, ns, ready.Status, ready.Message)

	if err := c.Create(ctx, guide.Bundle()); err != nil {
		return nil, fmt.Errorf("step 4, creating the Bundle: %w", err)
	}
	trusted, err := waitIssuer(ctx, c, issuer, v1alpha1.ConditionTrustAnchorTrusted, metav1.ConditionTrue)
	if err != nil {
		return nil, fmt.Errorf("step 4, the anchor never became trusted: %w", err)
	}
	fmt.Printf("4. trust-manager Bundle %s: the trusted set the issuer keeps (ConfigMap %s/%s) → ConfigMap %s/%s (key ca-bundle.crt)\n   TrustAnchorTrusted=%s: %s\n",
		guide.TrustRoots, guide.TrustNamespace, guide.TrustedRoots, ns, guide.TrustRoots, trusted.Status, trusted.Message)

	crt := guide.IdentityIssuerCertificate(ns, guide.IdentityIssuer)
	if err := c.Create(ctx, crt); err != nil {
		return nil, fmt.Errorf("step 5, creating the Certificate: %w", err)
	}
	describeCertificate(5, crt)
	if err := waitCertificateReady(ctx, c, crt); err != nil {
		return nil, fmt.Errorf("step 5, Certificate %s/%s not Ready: %w", ns, crt.Name, err)
	}
	secret, err := showSecret(ctx, c, 6, crt)
	if err != nil {
		return nil, err
	}

	fmt.Printf("\n7. Linkerd reads it when installed with:\n\n"+
		"   helm install linkerd-control-plane linkerd/linkerd-control-plane -n %s \\\n"+
		"     --set identity.externalCA=true --set identity.issuer.scheme=kubernetes.io/tls\n", ns)

	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: tenant}}); err != nil {
		return nil, fmt.Errorf("step 8, creating namespace %s: %w", tenant, err)
	}
	stolen := guide.IdentityIssuerCertificate(ns, "my-own-mesh-ca")
	stolen.Namespace = tenant
	if err := c.Create(ctx, stolen); err != nil {
		return nil, fmt.Errorf("step 8, creating the tenant's Certificate: %w", err)
	}
	refusal, err := waitRequestFailed(ctx, c, stolen)
	if err != nil {
		return nil, fmt.Errorf("step 8, the tenant's request was not refused: %w", err)
	}
	fmt.Printf("\n8. A tenant asks the same cluster issuer for a mesh CA: Certificate %s/%s → refused:\n   %s\n", tenant, stolen.Name, refusal)
	return secret, nil
}

// originalGuide is the original guide: the anchor Secret and a namespaced
// LinkerdCAIssuer beside the control plane.
func originalGuide(ctx context.Context, cp *localcp.ControlPlane) (*corev1.Secret, error) {
	c := cp.Client
	fmt.Printf("1. Namespace %s (Linkerd's control plane) exists\n", ns)

	fmt.Printf("2. Trust anchor: linkerd-ca trust-anchor create --namespace %s --name linkerd-trust-anchor\n   ", ns)
	if code := cli.Run(ctx, []string{"trust-anchor", "create", "--kubeconfig", cp.AdminKubeconfig, "-n", ns, "--name", "linkerd-trust-anchor"}, os.Stdout, os.Stderr); code != 0 {
		return nil, fmt.Errorf("step 2, creating the trust anchor Secret: linkerd-ca exited %d", code)
	}

	issuer := &v1alpha1.LinkerdCAIssuer{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-trust-anchor"},
		Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: "linkerd-trust-anchor"},
	}
	if err := c.Create(ctx, issuer); err != nil {
		return nil, fmt.Errorf("step 3, creating the LinkerdCAIssuer: %w", err)
	}
	ready, err := waitIssuer(ctx, c, issuer, "Ready", metav1.ConditionTrue)
	if err != nil {
		return nil, fmt.Errorf("step 3, LinkerdCAIssuer %s/%s not Ready: %w", ns, issuer.Name, err)
	}
	fmt.Printf("3. LinkerdCAIssuer %s/%s: Ready=%s (%s)\n", ns, issuer.Name, ready.Status, ready.Message)

	// The guide's Certificate (48h, renewed at 25h), signed by the namespaced
	// issuer instead of the cluster one.
	crt := guide.IdentityIssuerCertificate(ns, guide.IdentityIssuer)
	crt.Spec.IssuerRef = cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: issuer.Name}
	if err := c.Create(ctx, crt); err != nil {
		return nil, fmt.Errorf("step 4, creating the Certificate: %w", err)
	}
	describeCertificate(4, crt)
	if err := waitCertificateReady(ctx, c, crt); err != nil {
		return nil, fmt.Errorf("step 4, Certificate %s/%s not Ready: %w", ns, crt.Name, err)
	}
	return showSecret(ctx, c, 5, crt)
}

func createAll(ctx context.Context, c client.Client, objs ...client.Object) error {
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s: %w", client.ObjectKeyFromObject(o), err)
		}
	}
	return nil
}

func describeCertificate(step int, crt *cmapi.Certificate) {
	rotation := ""
	if crt.Spec.PrivateKey != nil && crt.Spec.PrivateKey.RotationPolicy != "" {
		rotation = ", rotationPolicy " + string(crt.Spec.PrivateKey.RotationPolicy)
	}
	fmt.Printf("%d. Certificate %s/%s: duration %s, renewBefore %s, commonName %s, isCA, ECDSA%s, usages %v → issuerRef %s/%s\n",
		step, crt.Namespace, crt.Name, crt.Spec.Duration.Duration, crt.Spec.RenewBefore.Duration, crt.Spec.CommonName, rotation, crt.Spec.Usages,
		crt.Spec.IssuerRef.Kind, crt.Spec.IssuerRef.Name)
}

func showSecret(ctx context.Context, c client.Client, step int, crt *cmapi.Certificate) (*corev1.Secret, error) {
	var secret corev1.Secret
	if err := c.Get(ctx, client.ObjectKey{Namespace: crt.Namespace, Name: crt.Spec.SecretName}, &secret); err != nil {
		return nil, fmt.Errorf("step %d, reading Secret %s/%s: %w", step, crt.Namespace, crt.Spec.SecretName, err)
	}
	fmt.Printf("%d. Secret %s/%s written by cert-manager:\n\n", step, secret.Namespace, secret.Name)
	if err := summarize(&secret); err != nil {
		return nil, fmt.Errorf("step %d: %w", step, err)
	}
	return &secret, nil
}

// waitIssuer waits for one of an issuer's conditions to reach status.
func waitIssuer(ctx context.Context, c client.Client, issuer v1alpha1.GenericIssuer, condition string, status metav1.ConditionStatus) (*metav1.Condition, error) {
	var cond *metav1.Condition
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := c.Get(ctx, client.ObjectKeyFromObject(issuer), issuer); err != nil {
			return false, err
		}
		cond = meta.FindStatusCondition(issuer.GetStatus().Conditions, condition)
		return cond != nil && cond.Status == status, nil
	})
	if err != nil && cond != nil {
		err = fmt.Errorf("%w (last: %s=%s %s)", err, condition, cond.Status, cond.Message)
	}
	return cond, err
}

// waitRequestFailed waits for a Certificate's request to fail, and returns
// why.
func waitRequestFailed(ctx context.Context, c client.Client, crt *cmapi.Certificate) (string, error) {
	var message string
	err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		var list cmapi.CertificateRequestList
		if err := c.List(ctx, &list, client.InNamespace(crt.Namespace)); err != nil {
			return false, err
		}
		for _, cr := range list.Items {
			for _, cond := range cr.Status.Conditions {
				if cr.Annotations[cmapi.CertificateNameKey] == crt.Name && cond.Type == cmapi.CertificateRequestConditionReady && cond.Reason == cmapi.CertificateRequestReasonFailed {
					message = cond.Message
					return len(cr.Status.Certificate) == 0, nil
				}
			}
		}
		return false, nil
	})
	return message, err
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
