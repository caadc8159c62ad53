package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
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
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

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
