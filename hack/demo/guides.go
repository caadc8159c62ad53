package main

import (
	"context"
	"fmt"
	"os"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/cli"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

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
