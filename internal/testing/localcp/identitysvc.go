package localcp

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// IdentityIssuerSecret is the Secret Linkerd's identity service reads its
// issuer from (identity.externalCA).
const IdentityIssuerSecret = guide.IdentityIssuer

// identityService stands in for Linkerd's identity service
// (controller/cmd/identity) in what a rotation sees of it, since it cannot
// run here: it loads the trust roots once, when its pod starts (the roots
// its linkerd-proxy's configMapKeyRef resolved to, taken from the bundle's
// history at the pod's start), and on each change of the issuer Secret
// records event IssuerUpdated on Deployment linkerd-identity when the new
// issuer chains to those roots, or IssuerUpdateSkipped (Warning) when it
// does not, keeping the old one. It polls every 250ms.
type identityService struct {
	client       client.Client
	controlPlane string
	history      []bundleAt
	pod          string
	roots        []*x509.Certificate
	issuerRV     string
}

type bundleAt struct {
	seen  time.Time
	roots []*x509.Certificate
}

func (cp *ControlPlane) startIdentityService(ctx context.Context, controlPlane string) {
	ctx, cancel := context.WithCancel(ctx)
	cp.stops = append(cp.stops, func() error { cancel(); return nil })
	s := &identityService{client: cp.Client, controlPlane: controlPlane}
	go func() {
		for {
			if err := s.step(ctx); err != nil && ctx.Err() == nil {
				cp.opts.Logf("stand-in identity service: %v", err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(250 * time.Millisecond):
			}
		}
	}()
}

func (s *identityService) step(ctx context.Context) error {
	var cm corev1.ConfigMap
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: s.controlPlane, Name: v1alpha1.DefaultTrustRootsConfigMap}, &cm); client.IgnoreNotFound(err) != nil {
		return err
	}
	roots, _ := signer.ParseTrustBundle([]byte(cm.Data[v1alpha1.DefaultTrustRootsKey]))
	if n := len(s.history); n == 0 || !sameRoots(s.history[n-1].roots, roots) {
		s.history = append(s.history, bundleAt{seen: time.Now(), roots: roots})
	}
	var pods corev1.PodList
	if err := s.client.List(ctx, &pods, client.InNamespace(s.controlPlane), client.MatchingLabels{"linkerd.io/control-plane-component": "identity"}); err != nil {
		return err
	}
	for _, p := range pods.Items {
		if p.DeletionTimestamp != nil || p.Status.StartTime == nil || string(p.UID) == s.pod {
			continue
		}
		// A new identity pod: it loaded the bundle in effect when it started.
		s.pod, s.roots, s.issuerRV = string(p.UID), s.bundleAt(p.Status.StartTime.Time), ""
	}
	if s.pod == "" {
		return nil
	}
	var sec corev1.Secret
	if err := s.client.Get(ctx, client.ObjectKey{Namespace: s.controlPlane, Name: IdentityIssuerSecret}, &sec); err != nil || sec.ResourceVersion == s.issuerRV {
		return client.IgnoreNotFound(err)
	}
	s.issuerRV = sec.ResourceVersion
	block, _ := pem.Decode(sec.Data[corev1.TLSCertKey])
	if block == nil {
		return nil
	}
	issuer, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil
	}
	reason, typ, msg := "IssuerUpdateSkipped", corev1.EventTypeWarning, "Skipped issuer update as the certificate is not signed by the trust roots loaded at start"
	for _, r := range s.roots {
		if issuer.CheckSignatureFrom(r) == nil {
			reason, typ, msg = "IssuerUpdated", corev1.EventTypeNormal, fmt.Sprintf("Updated identity issuer, valid until %s", issuer.NotAfter.UTC().Format(time.RFC3339))
		}
	}
	now := metav1.Now()
	return s.client.Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: s.controlPlane, GenerateName: "linkerd-identity."},
		InvolvedObject: corev1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: s.controlPlane, Name: "linkerd-identity"},
		Reason:         reason, Message: msg, Type: typ, FirstTimestamp: now, LastTimestamp: now, Count: 1,
		Source: corev1.EventSource{Component: "linkerd-identity"},
	})
}

// bundleAt is the bundle in effect at t. Changes are seen up to one poll
// late, so the last one seen before t plus a second counts.
func (s *identityService) bundleAt(t time.Time) []*x509.Certificate {
	var roots []*x509.Certificate
	for _, b := range s.history {
		if b.seen.After(t.Add(time.Second)) {
			break
		}
		roots = b.roots
	}
	return roots
}

func sameRoots(a, b []*x509.Certificate) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Equal(b[i]) {
			return false
		}
	}
	return true
}
