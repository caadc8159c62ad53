package cli

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/pairfile"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/trustanchor"
)

func newTrustAnchor(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust-anchor",
		Short: "Make Linkerd trust anchors",
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTrustAnchorCreate(g))
	return cmd
}

type anchorCreate struct {
	commonName string
	validity   time.Duration
	outDir     string
	name       string
	overwrite  bool
	dryRun     string
	kms        string
	configMap  bool
	output     manifestFormat
}

const refuseOverwrite = "%s already holds a trust anchor; replacing it would leave every proxy certificate signed under the old one untrusted. Rotate as docs/rotation.md says, or pass --overwrite if you mean it"

func newTrustAnchorCreate(g *globals) *cobra.Command {
	o := &anchorCreate{}
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Make an ECDSA P-256 root fit for Linkerd, as a kubernetes.io/tls Secret or files",
		Long: `Make an ECDSA P-256 root CA fit to be Linkerd's trust anchor, and store it as a
kubernetes.io/tls Secret (in -n, else the Linkerd namespace, never the
kubeconfig context's: a LinkerdCAClusterIssuer reads it from its cluster
resource namespace, cert-manager in Linkerd's current guide), write ca.crt and ca.key into --out-dir, or print the Secret
(--dry-run) for a GitOps repository: encrypt it (SealedSecrets, SOPS) before
you commit it, since it holds the private key.`,
		Example: `  linkerd-ca trust-anchor create -n linkerd
  linkerd-ca trust-anchor create -n cert-manager   # for a LinkerdCAClusterIssuer
  linkerd-ca trust-anchor create --dry-run -o yaml | kubeseal -o yaml > trust-anchor.sealed.yaml
  linkerd-ca trust-anchor create --out-dir ./pki`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd, g) },
	}
	f := cmd.Flags()
	f.StringVar(&o.commonName, "common-name", trustanchor.DefaultCommonName, "Subject common name of the root")
	f.DurationVar(&o.validity, "validity", trustanchor.DefaultValidity, "How long the root is valid")
	f.StringVar(&o.outDir, "out-dir", "", "Write ca.crt and ca.key (mode 0600) into this directory of their own instead of a Secret; they are replaced together, never one without the other")
	f.StringVar(&o.name, "name", "linkerd-trust-anchor", "Name of the kubernetes.io/tls Secret")
	f.BoolVar(&o.overwrite, "overwrite", false, "Replace an existing trust anchor. Everything it signed stops being trusted: see docs/rotation.md first")
	f.StringVar(&o.dryRun, "dry-run", "none", `"client" prints the Secret instead of creating it (--dry-run alone means client)`)
	f.Lookup("dry-run").NoOptDefVal = "client"
	f.StringVar(&o.kms, "kms", "", "Make the root with this KMS key, aws:<key ID, key ARN or alias/name> (region: AWS_REGION), and store only its certificate: no root key in the cluster")
	f.BoolVar(&o.configMap, "configmap", false, "With --kms: store the certificate in a ConfigMap (ca.crt) for the issuer's spec.trustAnchorConfigMapName, instead of an Opaque Secret")
	o.output.bind(f)
	return cmd
}

func (o *anchorCreate) run(cmd *cobra.Command, g *globals) error {
	switch {
	case o.dryRun != "none" && o.dryRun != "client":
		return usageErrorf("--dry-run=%s: only client is supported (the Secret is printed, nothing is sent)", o.dryRun)
	case o.dryRun == "client" && o.outDir != "":
		return usageErrorf("--dry-run prints the Secret; --out-dir writes files: use one")
	case cmd.Flags().Changed("output") && o.dryRun != "client":
		return usageErrorf("--output prints the Secret; add --dry-run")
	case o.configMap && o.outDir != "":
		return usageErrorf("--configmap stores the certificate in a ConfigMap; --out-dir writes files: use one")
	case o.configMap && o.kms == "":
		return usageErrorf("--configmap stores a certificate without its key, so the key must be in a KMS: add --kms aws:<key>")
	}
	if err := o.output.validate(); err != nil {
		return err
	}
	if o.kms != "" {
		return o.createWithKMS(cmd, g)
	}
	anchor, err := trustanchor.Create(o.commonName, o.validity, time.Now())
	if err != nil {
		return usageError{err}
	}
	if o.outDir != "" {
		return o.writeFiles(g, anchor)
	}
	// Never the context's namespace: a root key must not land in a team's
	// namespace because a kubeconfig context selects it.
	namespace := g.kube.explicitNamespace(g.linkerdNamespace)
	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: o.name},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{corev1.TLSCertKey: anchor.Certificate, corev1.TLSPrivateKeyKey: anchor.Key},
	}
	if o.dryRun == "client" {
		fmt.Fprintf(g.stderr, "%s: the Secret below holds the trust anchor's private key: encrypt it before it leaves this machine\n", Name)
		return o.output.print(g.stdout, secret)
	}
	return o.store(cmd, g, secret)
}

// writeFiles writes ca.crt and ca.key as a pair (package pairfile): a crash
// or a failed write leaves the old pair or the new one, never a root key
// beside another root's certificate, and no key through a symbolic link.
func (o *anchorCreate) writeFiles(g *globals, anchor *trustanchor.PEM) error {
	err := pairfile.Write(o.outDir, []pairfile.File{
		{Name: "ca.crt", Data: anchor.Certificate, Mode: 0o644},
		{Name: "ca.key", Data: anchor.Key, Mode: 0o600},
	}, o.overwrite)
	if exists := (*pairfile.ExistsError)(nil); errors.As(err, &exists) {
		return fmt.Errorf(refuseOverwrite, exists.Path)
	}
	if err != nil {
		return fmt.Errorf("writing the trust anchor into %s: %w", o.outDir, err)
	}
	fmt.Fprintf(g.stdout, "trust anchor %s written to %s and %s\n", o.commonName, filepath.Join(o.outDir, "ca.crt"), filepath.Join(o.outDir, "ca.key"))
	return nil
}

func (o *anchorCreate) store(cmd *cobra.Command, g *globals, secret *corev1.Secret) error {
	c, err := g.client()
	if err != nil {
		return err
	}
	ctx, ref := cmd.Context(), "Secret "+secret.Namespace+"/"+secret.Name
	err = c.Create(ctx, secret)
	switch {
	case apierrors.IsAlreadyExists(err) && !o.overwrite:
		return fmt.Errorf(refuseOverwrite, ref)
	case apierrors.IsAlreadyExists(err):
		var existing corev1.Secret
		if err := c.Get(ctx, client.ObjectKeyFromObject(secret), &existing); err != nil {
			return fmt.Errorf("reading %s: %w", ref, err)
		}
		if existing.Type != secret.Type {
			return fmt.Errorf("%s is of type %s and a Secret's type cannot change: delete it first, or choose another --name", ref, existing.Type)
		}
		existing.Data = secret.Data
		if err := c.Update(ctx, &existing); err != nil {
			return fmt.Errorf("replacing %s: %w", ref, err)
		}
	case err != nil:
		return fmt.Errorf("creating %s: %w", ref, err)
	}
	fmt.Fprintf(g.stdout, "trust anchor %s stored in %s (%s)\n", o.commonName, ref, secret.Type)
	if g.kube.overrides.Context.Namespace == "" {
		fmt.Fprintf(g.stderr, "%s: stored in the Linkerd namespace %s (no -n given); a LinkerdCAClusterIssuer reads its anchor from its cluster resource namespace instead (cert-manager in Linkerd's current guide): pass -n there\n", Name, secret.Namespace)
	}
	return nil
}
