package cli

import (
	"crypto/x509"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/identitycheck"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

func newTrustRoots(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "trust-roots",
		Short: "Render Linkerd's trust roots",
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newTrustRootsRender(g))
	return cmd
}

type rootsRender struct {
	files   []string
	secrets []string
	name    string
	output  manifestFormat
}

func newTrustRootsRender(g *globals) *cobra.Command {
	o := &rootsRender{}
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Print the linkerd-identity-trust-roots ConfigMap from one or more trust anchors",
		Long: `Print the ConfigMap Linkerd 2.11+ reads its trust roots from
(linkerd-identity-trust-roots, key ca-bundle.crt, in the Linkerd namespace),
holding every anchor given, in the order given: for a bootstrap, or for each
step of a rotation (old and new, then new alone; see docs/rotation.md).

Each anchor must be a CA certificate Linkerd accepts (ECDSA P-256 or RSA,
valid now); duplicates are dropped. Nothing is sent to the cluster, but
--from-secret reads anchors from it.`,
		Example: `  linkerd-ca trust-roots render --from-file ca.crt > trust-roots.yaml
  linkerd-ca trust-roots render --from-secret cert-manager/linkerd-trust-anchor --from-file new-ca.crt`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return o.run(cmd, g) },
	}
	f := cmd.Flags()
	f.StringArrayVarP(&o.files, "from-file", "f", nil, "PEM file of one or more trust anchors (repeatable)")
	f.StringArrayVar(&o.secrets, "from-secret", nil, "Secret NAMESPACE/NAME whose tls.crt is a trust anchor, read from the cluster (repeatable)")
	f.StringVar(&o.name, "name", v1alpha1.DefaultTrustRootsConfigMap, "Name of the ConfigMap")
	o.output.bind(f)
	return cmd
}

func (o *rootsRender) run(cmd *cobra.Command, g *globals) error {
	if err := o.output.validate(); err != nil {
		return err
	}
	if len(o.files) == 0 && len(o.secrets) == 0 {
		return usageErrorf("give at least one anchor: --from-file or --from-secret")
	}
	var anchors []*x509.Certificate
	add := func(source string, pemData []byte) error {
		certs, err := signer.ParseTrustBundle(pemData)
		if err != nil {
			return fmt.Errorf("%s: %w", source, err)
		}
		for _, c := range certs {
			if err := fitAsAnchor(c); err != nil {
				return fmt.Errorf("%s: %s: %w", source, c.Subject, err)
			}
			if !signer.BundleContains(anchors, c) {
				anchors = append(anchors, c)
			}
		}
		return nil
	}
	for _, path := range o.files {
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if err := add(path, data); err != nil {
			return err
		}
	}
	if len(o.secrets) > 0 {
		c, err := g.client()
		if err != nil {
			return err
		}
		for _, ref := range o.secrets {
			ns, name, ok := strings.Cut(ref, "/")
			if !ok || ns == "" || name == "" {
				return usageErrorf("--from-secret %q: use NAMESPACE/NAME", ref)
			}
			var s corev1.Secret
			if err := c.Get(cmd.Context(), client.ObjectKey{Namespace: ns, Name: name}, &s); err != nil {
				return fmt.Errorf("reading Secret %s: %w", ref, err)
			}
			if err := add("Secret "+ref+" tls.crt", s.Data[corev1.TLSCertKey]); err != nil {
				return err
			}
		}
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: g.linkerdNamespace, Name: o.name},
		Data:       map[string]string{v1alpha1.DefaultTrustRootsKey: string(signer.EncodeBundle(anchors))},
	}
	return o.output.print(g.stdout, cm)
}

// fitAsAnchor refuses what Linkerd would refuse as a trust root, with the
// words of linkerd check's anchor checks.
func fitAsAnchor(c *x509.Certificate) error {
	if !c.IsCA {
		return fmt.Errorf("not a CA certificate; a trust anchor is the root the identity issuer is signed by")
	}
	for _, r := range identitycheck.Anchors([]*x509.Certificate{c}, time.Now()) {
		if r.Status == identitycheck.Fail {
			return fmt.Errorf("%s: %s", r.Name, r.Detail)
		}
	}
	return nil
}
