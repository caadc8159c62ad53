package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/anchorkey"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/anchorkey/awskms"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/pairfile"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/trustanchor"
)

// parseKMSRef reads --kms: aws:<key ID, key ARN or alias>.
func parseKMSRef(s string) (*v1alpha1.KMSKey, error) {
	provider, key, ok := strings.Cut(s, ":")
	if !ok || provider != "aws" || key == "" {
		return nil, usageErrorf("--kms %q: give aws:<key ID, key ARN or alias/name>; AWS KMS is the one provider so far", s)
	}
	return &v1alpha1.KMSKey{AWS: &v1alpha1.AWSKMSKey{KeyID: key}}, nil
}

func (g *globals) keyOpener() anchorkey.Opener {
	if g.keys != nil {
		return g.keys
	}
	return anchorkey.Providers{AWS: &awskms.Provider{}}
}

// createWithKMS makes the root with a KMS key, which signs it once, and
// keeps only its certificate: tls.crt of an Opaque Secret (a
// kubernetes.io/tls one must hold a key), or ca.crt in --out-dir.
func (o *anchorCreate) createWithKMS(cmd *cobra.Command, g *globals) error {
	ref, err := parseKMSRef(o.kms)
	if err != nil {
		return err
	}
	key, err := g.keyOpener().Open(cmd.Context(), ref)
	if err != nil {
		return err
	}
	certPEM, err := trustanchor.CreateWith(key, o.commonName, o.validity, time.Now())
	if err != nil {
		return usageError{err}
	}
	hint := fmt.Sprintf("%s: name the key on the issuer too: spec.kms.aws.keyID: %s (and spec.kms.aws.region if it is not the controller's AWS_REGION)\n", Name, ref.AWS.KeyID)
	if o.outDir != "" {
		if err := pairfile.Write(o.outDir, []pairfile.File{{Name: "ca.crt", Data: certPEM, Mode: 0o644}}, o.overwrite); err != nil {
			return fmt.Errorf("writing the trust anchor into %s: %w", o.outDir, err)
		}
		fmt.Fprintf(g.stdout, "trust anchor %s (key %s) written to %s/ca.crt\n", o.commonName, ref, o.outDir)
		return nil
	}
	if o.configMap {
		return o.storeCertificateConfigMap(cmd, g, ref, certPEM)
	}
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: g.kube.explicitNamespace(g.linkerdNamespace), Name: o.name},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{corev1.TLSCertKey: certPEM},
	}
	if o.dryRun == "client" {
		fmt.Fprint(g.stderr, hint)
		return o.output.print(g.stdout, secret)
	}
	if err := o.store(cmd, g, secret); err != nil {
		return err
	}
	fmt.Fprint(g.stderr, hint)
	return nil
}

// createKMSRoot makes a root with a KMS key and keeps its certificate alone
// in an Opaque Secret: the next root of a rotation whose key is in a KMS.
func createKMSRoot(ctx context.Context, g *globals, c client.Client, ref *v1alpha1.KMSKey, at types.NamespacedName) error {
	key, err := g.keyOpener().Open(ctx, ref)
	if err != nil {
		return err
	}
	certPEM, err := trustanchor.CreateWith(key, trustanchor.DefaultCommonName, trustanchor.DefaultValidity, g.now())
	if err != nil {
		return usageError{err}
	}
	if err := c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: at.Namespace, Name: at.Name}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM}}); err != nil {
		return fmt.Errorf("creating the next root's Secret %s: %w", at, err)
	}
	fmt.Fprintf(g.stdout, "next root made with KMS key %s, its certificate in Secret %s\n", ref, at)
	return nil
}

const checkKMSKey = "the trust anchor's key is in its KMS and matches the anchor"

// kmsCheck names the KMS key of an issuer with spec.kms and says whether it
// works: the controller opens it and checks it against the anchor's
// certificate on every anchor revision, and a key that is missing, of
// another spec, disabled or not the certificate's keeps the issuer not
// Ready with the reason.
func kmsCheck(iss v1alpha1.GenericIssuer, key fmt.Stringer) []identitycheck.Result {
	kms := iss.GetSpec().KMS
	if kms == nil {
		return nil
	}
	name := fmt.Sprintf("%s %s", iss.IssuerKind(), key)
	if cond := meta.FindStatusCondition(iss.GetStatus().Conditions, "Ready"); cond == nil || cond.Status != metav1.ConditionTrue {
		why := "no Ready condition yet"
		if cond != nil {
			why = cond.Message
		}
		return []identitycheck.Result{{Name: checkKMSKey, Status: identitycheck.Fail, Detail: fmt.Sprintf("%s signs with %s: %s", name, kms, why)}}
	}
	return []identitycheck.Result{{Name: checkKMSKey, Status: identitycheck.Pass, Detail: fmt.Sprintf("%s signs with %s, whose public key is the anchor's", name, kms)}}
}

// storeCertificateConfigMap keeps the KMS root's certificate in a ConfigMap
// (ca.crt), as the issuer's spec.trustAnchorConfigMapName reads it: with
// the key in the KMS nothing about the anchor is secret.
func (o *anchorCreate) storeCertificateConfigMap(cmd *cobra.Command, g *globals, ref *v1alpha1.KMSKey, certPEM []byte) error {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: g.kube.explicitNamespace(g.linkerdNamespace), Name: o.name},
		Data:       map[string]string{"ca.crt": string(certPEM)},
	}
	hint := fmt.Sprintf("%s: name both on the issuer: spec.trustAnchorConfigMapName: %s and spec.kms.aws.keyID: %s\n", Name, o.name, ref.AWS.KeyID)
	if o.dryRun == "client" {
		fmt.Fprint(g.stderr, hint)
		return o.output.print(g.stdout, cm)
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	what := "ConfigMap " + cm.Namespace + "/" + cm.Name
	err = c.Create(cmd.Context(), cm)
	switch {
	case apierrors.IsAlreadyExists(err) && !o.overwrite:
		return fmt.Errorf(refuseOverwrite, what)
	case apierrors.IsAlreadyExists(err):
		var existing corev1.ConfigMap
		if err := c.Get(cmd.Context(), client.ObjectKeyFromObject(cm), &existing); err != nil {
			return fmt.Errorf("reading %s: %w", what, err)
		}
		existing.Data = cm.Data
		if err := c.Update(cmd.Context(), &existing); err != nil {
			return fmt.Errorf("replacing %s: %w", what, err)
		}
	case err != nil:
		return fmt.Errorf("creating %s: %w", what, err)
	}
	fmt.Fprintf(g.stdout, "trust anchor %s (key %s) stored in %s\n", o.commonName, ref, what)
	fmt.Fprint(g.stderr, hint)
	return nil
}
