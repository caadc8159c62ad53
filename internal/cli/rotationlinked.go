package cli

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/trustanchor"
)

// linkedTarget is one linked cluster's issuer that --all-linked points at
// the next root.
type linkedTarget struct {
	cluster string
	c       client.Client
	iss     v1alpha1.GenericIssuer
}

// rotationStartLinked makes one next root and points this cluster's
// issuer and every linked cluster's at it, each through the kubeconfig
// context named as the peer (or --peer-context). Every issuer is read, and
// must be Stable, before anything is written: a rotation starts in all of
// them or in none. The gate does the rest: no cluster switches until every
// one has propagated the root.
func rotationStartLinked(ctx context.Context, g *globals, certificate, anchorNamespace string, contexts map[string]string) error {
	c, iss, key, err := rotatingIssuer(ctx, g, certificate)
	if err != nil {
		return err
	}
	peers := iss.GetSpec().Rotation.Peers
	if len(peers) == 0 {
		return usageErrorf("%s %s links no cluster (spec.rotation.peers): start its rotation without --all-linked", iss.IssuerKind(), key)
	}
	targets := []linkedTarget{{cluster: "this cluster", c: c, iss: iss}}
	for _, p := range peers {
		name := p.Name
		if ctxName, ok := contexts[p.Name]; ok {
			name = ctxName
		}
		k := g.kube
		k.overrides.CurrentContext = name
		pc, err := k.client()
		if err != nil {
			return fmt.Errorf("linked cluster %s (kubeconfig context %q): %w; name its context with --peer-context %s=<context>", p.Name, name, err, p.Name)
		}
		piss := v1alpha1.NewIssuerOfKind(p.IssuerKind)
		if p.IssuerKind == "" {
			piss = &v1alpha1.LinkerdCAClusterIssuer{}
		}
		pkey := client.ObjectKey{Name: p.IssuerName}
		if !piss.IsClusterScoped() {
			pkey.Namespace = p.IssuerNamespace
		}
		if err := pc.Get(ctx, pkey, piss); err != nil {
			return fmt.Errorf("linked cluster %s (kubeconfig context %q): reading %s %s: %w", p.Name, name, piss.IssuerKind(), pkey, err)
		}
		targets = append(targets, linkedTarget{cluster: "linked cluster " + p.Name, c: pc, iss: piss})
	}
	for _, t := range targets {
		switch {
		case t.iss.GetSpec().KMS != nil:
			return fmt.Errorf("%s: %s %s keeps its root's key in a KMS: rotate each cluster with linkerd-ca rotation start --kms", t.cluster, t.iss.IssuerKind(), t.iss.GetName())
		case t.iss.GetSpec().Rotation == nil:
			return fmt.Errorf("%s: %s %s has no spec.rotation", t.cluster, t.iss.IssuerKind(), t.iss.GetName())
		case underWay(t.iss) != "":
			return fmt.Errorf("%s: %s %s is already rotating (%s); wait until every linked cluster is Stable", t.cluster, t.iss.IssuerKind(), t.iss.GetName(), underWay(t.iss))
		}
	}
	anchor, err := trustanchor.Create(trustanchor.DefaultCommonName, trustanchor.DefaultValidity, g.now())
	if err != nil {
		return err
	}
	stamp := g.now().UTC().Format("20060102150405")
	for i, t := range targets {
		if err := startOne(ctx, g, t, anchor, anchorNamespace, stamp); err != nil && i > 0 {
			return fmt.Errorf("%w; the clusters before it rotate alone, which is safe (the others trust and propagate the new root before any switches): start its own rotation there (linkerd-ca rotation start) once it can be reached", err)
		} else if err != nil {
			return err
		}
	}
	fmt.Fprintf(g.stdout, "one next root in %d linked clusters: each signs under its current root until every meshed pod of every linked cluster holds the new one (linkerd-ca rotation status, in each)\n", len(targets))
	return nil
}

// startOne writes the next root beside the target's anchor and points its
// issuer at it.
func startOne(ctx context.Context, g *globals, t linkedTarget, anchor *trustanchor.PEM, anchorNamespace, stamp string) error {
	ns := anchorNamespace
	if !t.iss.IsClusterScoped() {
		ns = t.iss.GetNamespace()
	}
	name := fmt.Sprintf("%s-%s", t.iss.GetSpec().TrustAnchorSecretName, stamp)
	if err := t.c.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: anchor.Certificate, corev1.TLSPrivateKeyKey: anchor.Key},
	}); err != nil {
		return fmt.Errorf("%s: creating the next root's Secret %s/%s: %w", t.cluster, ns, name, err)
	}
	patch := client.MergeFrom(t.iss.DeepCopyObject().(client.Object))
	t.iss.GetSpec().TrustAnchorSecretName = name
	if err := t.c.Patch(ctx, t.iss, patch); err != nil {
		return fmt.Errorf("%s: pointing %s %s at Secret %s: %w", t.cluster, t.iss.IssuerKind(), t.iss.GetName(), name, err)
	}
	fmt.Fprintf(g.stdout, "%s: %s %s now names Secret %s/%s\n", t.cluster, t.iss.IssuerKind(), t.iss.GetName(), ns, name)
	return nil
}

// underWay says why an issuer's rotation is under way, or "": its status
// is not Stable, or its spec names an anchor Secret its Stable status does
// not sign from yet (a rotation just started, which the controller has not
// seen: starting another then would make a third root).
func underWay(iss v1alpha1.GenericIssuer) string {
	st := iss.GetStatus().Rotation
	switch {
	case st == nil:
		return ""
	case st.Phase != v1alpha1.RotationStable:
		return fmt.Sprintf("%s: %s", st.Phase, st.Message)
	case st.SigningSecretName != "" && st.SigningSecretName != iss.GetSpec().TrustAnchorSecretName:
		return fmt.Sprintf("started: spec.trustAnchorSecretName names Secret %s, and the controller still signs from %s", iss.GetSpec().TrustAnchorSecretName, st.SigningSecretName)
	}
	return ""
}
