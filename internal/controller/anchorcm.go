package controller

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// AnchorConfigMap is the ConfigMap holding the certificate of an anchor
// whose key is in a KMS (spec.trustAnchorConfigMapName), where the anchor
// Secret would be; ok is false for an issuer that names a Secret.
func (s *Signer) AnchorConfigMap(iss v1alpha1.GenericIssuer) (ref types.NamespacedName, ok bool) {
	name := iss.GetSpec().TrustAnchorConfigMapName
	if name == "" {
		return ref, false
	}
	ref = s.AnchorSecret(iss)
	ref.Name = name
	return ref, true
}

// anchorKey is where readAnchor keeps an issuer's anchor in the parsed
// cache. A Secret and a ConfigMap of one name share the key, but never an
// entry: an entry is used only at its object's UID.
func (s *Signer) anchorKey(iss v1alpha1.GenericIssuer) types.NamespacedName {
	if ref, ok := s.AnchorConfigMap(iss); ok {
		return ref
	}
	return s.signingSecret(iss)
}

// readConfigMapAnchor is readAnchor for an anchor whose certificate is in a
// ConfigMap and whose key is in a KMS. ConfigMaps are cached whole; to sign
// (fresh) the revision is read from the API server, as an anchor Secret's
// is, so that a replaced certificate is never signed under.
func (s *Signer) readConfigMapAnchor(ctx context.Context, iss v1alpha1.GenericIssuer, p signer.Policy, ref types.NamespacedName, fresh bool) (*signer.Anchor, error) {
	what := "trust anchor ConfigMap " + ref.String()
	if err := s.checkWatched("trust anchor ConfigMap", ref); err != nil {
		return nil, err
	}
	kms := iss.GetSpec().KMS
	if kms == nil {
		// The CRD refuses it; an object written around the schema is not.
		return nil, fmt.Errorf("%s holds a certificate only, and spec.kms names no key to sign with; set spec.kms, or name a Secret with the key in spec.trustAnchorSecretName", what)
	}
	var reader client.Reader = s.Client
	if fresh {
		reader = s.Secrets
	}
	var cm corev1.ConfigMap
	if err := reader.Get(ctx, ref, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			s.parsed.secretChanged(ref, version{})
			return nil, fmt.Errorf("%s not found; create it with the root's certificate in ca.crt (linkerd-ca trust-anchor create --kms %s --configmap)", what, kms)
		}
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	now, v := s.Clock.Now(), version{cm.UID, cm.ResourceVersion, kms.String()}
	anchor, proven := s.parsed.anchor(ref, v, policyKey(p))
	if anchor == nil {
		certPEM := cm.Data["ca.crt"]
		if certPEM == "" {
			certPEM = cm.Data[corev1.TLSCertKey]
		}
		a, err := s.openKMSAnchor(ctx, kms, []byte(certPEM), now)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		anchor = a
		s.parsed.putAnchor(ref, v, anchor)
	}
	return s.proveAnchor(iss, p, what, ref, v, anchor, proven, now)
}
