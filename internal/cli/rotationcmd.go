package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/trustanchor"
)

func newRotation(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotation",
		Short: "See and start the trust anchor rotation of Linkerd's identity issuer (docs/rotation.md)",
		Args:  noSubcommand,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var certificate string
	cmd.PersistentFlags().StringVar(&certificate, "certificate", "linkerd-identity-issuer", "The identity issuer Certificate in the Linkerd namespace; its issuerRef names the issuer")
	var watchFlag bool
	var timeout time.Duration
	status := &cobra.Command{
		Use:   "status",
		Short: "Where the rotation stands, and the pods whose proxies do not hold the new root yet, with their workloads",
		Long: `Where the rotation stands, and the pods whose proxies do not hold the new root
yet, with their workloads.

With --watch, follow the rotation until it is Stable, as kubectl rollout status
follows a rollout: the phases so far and the time in each, the pods holding the
new root, the workloads restarting or awaiting an operator, the deadline and
what the rotation waits for. On a terminal the view is redrawn in place; on
anything else each change is one line. Exit codes: 0 Stable, 3 past the
deadline (the identity issuer in place has expired), 4 --timeout reached,
1 interrupted or the issuer unreadable.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout != 0 && !watchFlag {
				return usageErrorf("--timeout bounds --watch: add --watch (-w)")
			}
			if timeout < 0 {
				return usageErrorf("--timeout %s is negative: give how long to wait, or 0 to wait until Stable", timeout)
			}
			if watchFlag {
				c, iss, key, err := rotatingIssuer(cmd.Context(), g, certificate)
				if err != nil {
					return err
				}
				return followRotation(cmd.Context(), g, c, iss, key, timeout)
			}
			return rotationStatus(cmd.Context(), g, certificate)
		},
	}
	status.Flags().BoolVarP(&watchFlag, "watch", "w", false, "Follow the rotation until it is Stable (exit 0), past its deadline (3) or --timeout (4)")
	status.Flags().DurationVar(&timeout, "timeout", 0, "With --watch: how long to wait for Stable before exiting 4 (0: no limit)")
	var fromSecret, anchorNamespace, kms string
	var allLinked bool
	var peerContexts map[string]string
	start := &cobra.Command{
		Use:   "start",
		Short: "Start a rotation the safe way: make the next root (or take --from-secret) and point the issuer at it",
		Long: `Start a trust anchor rotation: make the next root as a new kubernetes.io/tls
Secret beside the current one (or take an existing one with --from-secret) and
point the issuer's spec.trustAnchorSecretName at it. The issuer keeps signing
under the current root until every meshed pod holds the new one; see
` + "`linkerd-ca rotation status`" + `.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if allLinked {
				if fromSecret != "" || kms != "" {
					return usageErrorf("--all-linked makes one next root for every linked cluster: it takes neither --from-secret nor --kms")
				}
				return rotationStartLinked(cmd.Context(), g, certificate, anchorNamespace, peerContexts)
			}
			return rotationStart(cmd.Context(), g, certificate, fromSecret, anchorNamespace, kms)
		},
	}
	start.Flags().StringVar(&fromSecret, "from-secret", "", "Take this kubernetes.io/tls Secret, beside the current anchor, as the next root instead of making one")
	start.Flags().StringVar(&kms, "kms", "", "Make the next root with this KMS key, aws:<key ID, key ARN or alias/name>, and point spec.kms at it (the key stays in the KMS; the Secret holds the certificate alone)")
	start.Flags().StringVar(&anchorNamespace, "anchor-namespace", "cert-manager", "Where a LinkerdCAClusterIssuer's anchor Secrets live: the controller's cluster resource namespace")
	start.Flags().BoolVar(&allLinked, "all-linked", false, "Make one next root and point this issuer and every linked cluster's (spec.rotation.peers, each through the kubeconfig context named as the peer) at it")
	start.Flags().StringToStringVar(&peerContexts, "peer-context", nil, "With --all-linked: the kubeconfig context of a peer not named as it, peer=context")
	cmd.AddCommand(status, start, newRotationSwitch(g, &certificate))
	return cmd
}

// rotatingIssuer is a client and the LinkerdCA issuer, with spec.rotation,
// that the identity issuer Certificate in the Linkerd namespace names.
func rotatingIssuer(ctx context.Context, g *globals, certificate string) (client.WithWatch, v1alpha1.GenericIssuer, client.ObjectKey, error) {
	c, err := g.client()
	if err != nil {
		return nil, nil, client.ObjectKey{}, err
	}
	iss, key, err := issuerOf(ctx, c, g.linkerdNamespace, certificate)
	return c, iss, key, err
}

// issuerOf is the LinkerdCA issuer the identity issuer Certificate names.
func issuerOf(ctx context.Context, c client.Client, ns, certificate string) (v1alpha1.GenericIssuer, client.ObjectKey, error) {
	var crt cmapi.Certificate
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: certificate}, &crt); err != nil {
		return nil, client.ObjectKey{}, fmt.Errorf("reading Certificate %s/%s: %w", ns, certificate, err)
	}
	ref := crt.Spec.IssuerRef
	iss := v1alpha1.NewIssuerOfKind(ref.Kind)
	if ref.Group != v1alpha1.GroupVersion.Group || iss == nil {
		return nil, client.ObjectKey{}, fmt.Errorf("the Certificate %s/%s names %s %q of group %q, not a LinkerdCA issuer", ns, certificate, ref.Kind, ref.Name, ref.Group)
	}
	key := client.ObjectKey{Name: ref.Name}
	if !iss.IsClusterScoped() {
		key.Namespace = ns
	}
	if err := c.Get(ctx, key, iss); err != nil {
		return nil, key, fmt.Errorf("reading %s %s: %w", iss.IssuerKind(), key, err)
	}
	if iss.GetSpec().Rotation == nil {
		return nil, key, fmt.Errorf("%s %s has no spec.rotation, so the controller does not rotate its anchor; add it (docs/rotation.md), or rotate by hand as its appendix says", iss.IssuerKind(), key)
	}
	return iss, key, nil
}

func rotationStatus(ctx context.Context, g *globals, certificate string) error {
	c, iss, key, err := rotatingIssuer(ctx, g, certificate)
	if err != nil {
		return err
	}
	st := iss.GetStatus().Rotation
	if st == nil {
		return fmt.Errorf("%s %s has no status.rotation yet: is linkerd-ca-issuer running with --rotation?", iss.IssuerKind(), key)
	}
	w := tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "issuer\t%s %s\nphase\t%s (since %s)\nsigning root\t%s (Secret %s)\n", iss.IssuerKind(), key, st.Phase, st.LastTransitionTime.UTC().Format(time.RFC3339), st.SigningRoot, st.SigningSecretName)
	if st.NextRoot != "" {
		fmt.Fprintf(w, "next root\t%s\n", st.NextRoot)
	}
	if st.PeerRoot != "" {
		fmt.Fprintf(w, "peer root\t%s (a linked cluster's: its workloads here are restarted to hold it)\n", st.PeerRoot)
	}
	for _, r := range st.RetiringRoots {
		fmt.Fprintf(w, "retiring root\t%s\n", r.Fingerprint)
	}
	if st.Deadline != nil {
		fmt.Fprintf(w, "deadline\t%s (the identity issuer in place expires)\n", st.Deadline.UTC().Format(time.RFC3339))
	}
	for _, m := range st.TrustRootsMissing {
		fmt.Fprintf(w, "missing from Linkerd's trust roots\t%s\n", m)
	}
	for _, b := range st.Blocked {
		fmt.Fprintf(w, "blocked\t%s\n", b)
	}
	fmt.Fprintf(w, "pods behind\t%d of %d\n%s\n", st.PodsBehind, st.PodsTotal, st.Message)
	if err := w.Flush(); err != nil || st.NextRoot == "" {
		return err
	}
	behind, err := podsBehind(ctx, c, g.linkerdNamespace, st)
	if err != nil {
		return err
	}
	w = tabwriter.NewWriter(g.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "\nPOD\tWORKLOAD\tHOLDS")
	for _, p := range behind {
		workload, holds := p.Workload.String(), fmt.Sprintf("%d roots inline", len(p.Inline))
		switch {
		case p.Workload.Owner != "":
			workload += ": its controller replaces the pod, not a restart"
		case !p.Workload.Restartable():
			workload = "none: delete or re-create the pod"
		}
		switch {
		case p.FromConfigMap:
			holds = "the trust roots as they were when it started"
		case p.Invalid != "":
			holds = "nothing: " + p.Invalid
		}
		fmt.Fprintf(w, "%s\t%s\t%s\n", p.Key(), workload, holds)
	}
	return w.Flush()
}

func rotationStart(ctx context.Context, g *globals, certificate, fromSecret, anchorNamespace, kms string) error {
	c, iss, key, err := rotatingIssuer(ctx, g, certificate)
	if err != nil {
		return err
	}
	var ref *v1alpha1.KMSKey
	switch {
	case kms != "" && fromSecret != "":
		return usageErrorf("--kms makes the next root with a KMS key; --from-secret takes one made already: use one")
	case kms != "":
		if ref, err = parseKMSRef(kms); err != nil {
			return err
		}
		if cur := iss.GetSpec().KMS; cur != nil && cur.AWS != nil && ref.AWS.Region == "" {
			ref.AWS.Region = cur.AWS.Region
		}
	case iss.GetSpec().KMS != nil && fromSecret == "":
		// A Secret with a key beside spec.kms is refused by the issuer:
		// the next root's key goes in the KMS too.
		return usageErrorf("%s %s keeps its root's key in a KMS (spec.kms %s): make the next root with --kms aws:<the new key> (or --from-secret with a certificate made by linkerd-ca trust-anchor create --kms)", iss.IssuerKind(), key, iss.GetSpec().KMS)
	}
	if why := underWay(iss); why != "" {
		return fmt.Errorf("%s %s is already rotating (%s); wait until it is Stable", iss.IssuerKind(), key, why)
	}
	ns := anchorNamespace
	if !iss.IsClusterScoped() {
		ns = iss.GetNamespace()
	}
	name := fromSecret
	if ref != nil {
		name = fmt.Sprintf("%s-%s", iss.GetSpec().TrustAnchorSecretName, g.now().UTC().Format("20060102150405"))
		if err := createKMSRoot(ctx, g, c, ref, types.NamespacedName{Namespace: ns, Name: name}); err != nil {
			return err
		}
	} else if name == "" {
		anchor, err := trustanchor.Create(trustanchor.DefaultCommonName, trustanchor.DefaultValidity, g.now())
		if err != nil {
			return err
		}
		name = fmt.Sprintf("%s-%s", iss.GetSpec().TrustAnchorSecretName, g.now().UTC().Format("20060102150405"))
		if err := c.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: anchor.Certificate, corev1.TLSPrivateKeyKey: anchor.Key},
		}); err != nil {
			return fmt.Errorf("creating the next root's Secret %s/%s: %w", ns, name, err)
		}
		fmt.Fprintf(g.stdout, "next root made in Secret %s/%s\n", ns, name)
	} else if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &corev1.Secret{}); err != nil {
		return fmt.Errorf("reading --from-secret %s/%s: %w", ns, name, err)
	}
	patch := client.MergeFrom(iss.DeepCopyObject().(client.Object))
	iss.GetSpec().TrustAnchorSecretName = name
	if ref != nil {
		iss.GetSpec().KMS = ref
	}
	if err := c.Patch(ctx, iss, patch); err != nil {
		return fmt.Errorf("pointing %s %s at Secret %s: %w", iss.IssuerKind(), key, name, err)
	}
	fmt.Fprintf(g.stdout, "%s %s now names Secret %s: it signs under the current root until every meshed pod holds the new one (linkerd-ca rotation status)\n", iss.IssuerKind(), key, name)
	return nil
}
