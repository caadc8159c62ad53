package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/peers"
)

type linkOptions struct {
	cluster, namespace, serviceAccount, role, linkNamespace, server string
	timeout                                                         time.Duration
	format                                                          manifestFormat
}

func newMulticluster(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "multicluster",
		Short: "Link clusters whose issuers rotate one set of roots together (docs/multicluster.md)",
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var o linkOptions
	link := &cobra.Command{
		Use:   "link",
		Short: "Let another cluster read this one's issuers: print the link Secret to apply there",
		Long: `Let another cluster's issuer read this cluster's (--context's) issuers and
Linkerd's trust roots, and nothing else: make, here, a ServiceAccount bound to a
role that can only get them (unless the chart's multicluster.enabled made them)
and its token, and print the link Secret, a kubeconfig with that token, for
the other cluster, as ` + "`linkerd multicluster link`" + ` does:

  linkerd-ca multicluster link --context east --cluster-name east | kubectl --context west apply -f -

Then name it in the other cluster's issuer, under spec.rotation.peers.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.cluster == "" {
				return usageErrorf("--cluster-name is required: the name the other cluster knows this one by (spec.rotation.peers[].name)")
			}
			if err := o.format.validate(); err != nil {
				return err
			}
			return linkCluster(cmd.Context(), g, o)
		},
	}
	f := link.Flags()
	f.StringVar(&o.cluster, "cluster-name", "", "This cluster's name, as the other cluster's issuer names it in spec.rotation.peers")
	f.StringVar(&o.namespace, "service-account-namespace", "cert-manager", "Where the reader's ServiceAccount lives here: the chart's release namespace")
	f.StringVar(&o.serviceAccount, "service-account", "linkerd-ca-issuer-peer-reader", "The reader's ServiceAccount (the chart's <release>-peer-reader)")
	f.StringVar(&o.role, "role", "linkerd-ca-issuer:peer-reader", "The reader's ClusterRole and binding (the chart's <release>:peer-reader)")
	f.StringVar(&o.linkNamespace, "link-namespace", "cert-manager", "Where the link Secret goes in the other cluster: its issuer's cluster resource namespace")
	f.StringVar(&o.server, "api-server-address", "", "This cluster's API server URL as the other cluster reaches it (default: the kubeconfig's)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "How long to wait for the token controller to fill the reader's token")
	o.format.bind(f)
	cmd.AddCommand(link)
	return cmd
}

func linkCluster(ctx context.Context, g *globals, o linkOptions) error {
	cfg, err := g.kube.clientConfig().ClientConfig()
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	server, ca := cfg.Host, cfg.CAData
	if o.server != "" {
		server = o.server
	}
	if len(ca) == 0 && cfg.CAFile != "" {
		if ca, err = os.ReadFile(cfg.CAFile); err != nil {
			return fmt.Errorf("reading the API server's CA: %w", err)
		}
	}
	c, err := g.client()
	if err != nil {
		return err
	}
	access := peers.AccessFor(o.namespace, o.serviceAccount, o.role)
	// Made by the chart, they are its: kept as they are.
	for _, obj := range []client.Object{access.ServiceAccount, access.Role, access.Binding, access.Token} {
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("creating %T %s: %w", obj, client.ObjectKeyFromObject(obj), err)
		}
	}
	token, err := waitToken(ctx, c, client.ObjectKeyFromObject(access.Token), o.timeout)
	if err != nil {
		return err
	}
	secret, err := peers.LinkSecret(o.linkNamespace, "linkerd-ca-peer-"+o.cluster, o.cluster, server, ca, token)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.stderr, "apply it in the other cluster, and add to its issuer's spec.rotation.peers:\n  - name: %s\n    kubeconfigSecretName: %s\n    issuerName: <this cluster's issuer>\n", o.cluster, secret.Name)
	return o.format.print(g.stdout, secret)
}

// waitToken is the token the token controller puts in the Secret.
func waitToken(ctx context.Context, c client.Client, key client.ObjectKey, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		var s corev1.Secret
		if err := c.Get(ctx, key, &s); err != nil && !apierrors.IsNotFound(err) {
			return "", fmt.Errorf("reading the reader's token Secret %s: %w", key, err)
		}
		if t := s.Data[corev1.ServiceAccountTokenKey]; len(t) > 0 {
			return string(t), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("the reader's token Secret %s has no token after %s: is kube-controller-manager's token controller running?", key, timeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
}
