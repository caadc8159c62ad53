package cli

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

func newRotationSwitch(g *globals, certificate *string) *cobra.Command {
	var acceptBehind bool
	cmd := &cobra.Command{
		Use:   "switch --accept-behind",
		Short: "Switch a waiting rotation to the new root although pods are behind, breaking them until restarted",
		Long: `Record, on the issuer, the decision to switch the rotation in progress to its
new root with pods still behind: a pod that will never be replaced, a deadline
close. Those pods do not trust the new identity issuer's certificates until
they are restarted. The controller never takes this decision by itself; it
switches once Linkerd's trust roots hold the new root, and says so in a Warning
event (RotationSwitchAccepted) and status.rotation.acceptedBehind.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return rotationSwitch(cmd.Context(), g, *certificate, acceptBehind)
		},
	}
	cmd.Flags().BoolVar(&acceptBehind, "accept-behind", false, "Accept that the pods behind break until restarted (required)")
	return cmd
}

func rotationSwitch(ctx context.Context, g *globals, certificate string, acceptBehind bool) error {
	c, iss, key, err := rotatingIssuer(ctx, g, certificate)
	if err != nil {
		return err
	}
	st := iss.GetStatus().Rotation
	if st == nil || st.NextRoot == "" || (st.Phase != v1alpha1.RotationPropagating && st.Phase != v1alpha1.RotationHeld) {
		phase := "no status yet"
		if st != nil {
			phase = string(st.Phase)
		}
		return fmt.Errorf("%s %s has no rotation waiting for pods (%s): nothing to switch", iss.IssuerKind(), key, phase)
	}
	behind, err := podsBehind(ctx, c, g.linkerdNamespace, st)
	if err != nil {
		return err
	}
	names := make([]string, 0, len(behind))
	for _, p := range behind {
		names = append(names, p.Key())
	}
	if !acceptBehind {
		return usageErrorf("switching to root %s now breaks %d pod(s) until they are restarted (%s); say --accept-behind to decide so, or restart them (linkerd-ca rotation status lists them)",
			st.NextRoot, len(behind), strings.Join(names, ", "))
	}
	patch := client.MergeFrom(iss.DeepCopyObject().(client.Object))
	ann := iss.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[v1alpha1.AcceptBehindAnnotation] = st.NextRoot
	iss.SetAnnotations(ann)
	if err := c.Patch(ctx, iss, patch); err != nil {
		return fmt.Errorf("recording the decision on %s %s: %w", iss.IssuerKind(), key, err)
	}
	fmt.Fprintf(g.stdout, "recorded on %s %s (annotation %s): switch to root %s with %d pod(s) behind, which do not trust the new identity issuer until restarted:\n",
		iss.IssuerKind(), key, v1alpha1.AcceptBehindAnnotation, st.NextRoot, len(behind))
	for _, n := range names {
		fmt.Fprintf(g.stdout, "  %s\n", n)
	}
	if st.BundleGainedAt == nil {
		fmt.Fprintln(g.stdout, "the switch waits for Linkerd's trust roots to hold the new root: without it, every pod admitted from now on would break too")
	}
	return nil
}

// podsBehind are the running meshed and control-plane pods that do not hold
// the rotation's new root, as the controller counts them.
func podsBehind(ctx context.Context, c client.Client, ns string, st *v1alpha1.RotationStatus) ([]*podtrust.Pod, error) {
	var cm corev1.ConfigMap
	var bundle []string
	if err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: v1alpha1.DefaultTrustRootsConfigMap}, &cm); err == nil {
		certs, _ := signer.ParseTrustBundle([]byte(cm.Data[v1alpha1.DefaultTrustRootsKey]))
		for _, cert := range certs {
			bundle = append(bundle, signer.Fingerprint(cert))
		}
	}
	var list corev1.PodList
	if err := c.List(ctx, &list, client.MatchingLabels{podtrust.ControlPlaneNSLabel: ns}); err != nil {
		return nil, fmt.Errorf("listing meshed pods: %w", err)
	}
	var pods []*podtrust.Pod
	for i := range list.Items {
		if p, ok := podtrust.Of(&list.Items[i]); ok && p.Live() {
			pods = append(pods, &p)
		}
	}
	return rotation.Behind(pods, st.NextRoot, st.BundleGainedAt, bundle), nil
}
