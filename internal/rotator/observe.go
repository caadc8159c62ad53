package rotator

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/controller"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/rotation"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// observed is rotation.Observed plus the certificates behind its
// fingerprints, which the trusted set is written from.
type observed struct {
	rotation.Observed
	certs        map[string]*x509.Certificate
	trusted      *corev1.ConfigMap
	certificates []cmapi.Certificate
}

// observe reads the cluster for one issuer. Anchor Secrets are read from
// the API server (their certificates only are kept); everything else from
// the informers.
func (r *Reconciler) observe(ctx context.Context, iss v1alpha1.GenericIssuer) (*observed, error) {
	o := &observed{certs: map[string]*x509.Certificate{}}
	o.Now, o.Prev, o.Keys = r.Clock.Now(), iss.GetStatus().Rotation, map[string]string{}
	o.AcceptBehind = iss.GetAnnotations()[v1alpha1.AcceptBehindAnnotation]
	spec := r.Signer.AnchorSecret(iss)
	o.SpecSecret, o.SpecKMS = spec.Name, iss.GetSpec().KMS
	fp, err := r.readAnchor(ctx, iss, o, spec)
	if err != nil {
		return nil, err
	}
	o.Anchor = fp
	trusted := &corev1.ConfigMap{}
	switch err := r.Client.Get(ctx, r.trustedRef(iss), trusted); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return nil, err
	default:
		o.trusted, o.TrustedFound = trusted, true
		certs, _ := signer.ParseTrustBundle([]byte(trusted.Data[v1alpha1.DefaultTrustRootsKey]))
		for _, c := range certs {
			o.Trusted = append(o.Trusted, o.add(c))
		}
		o.Record = recordOf(trusted)
	}
	// The Secrets that may still hold the key signed under: the status's,
	// or, with the status lost, the one recorded beside the trusted set.
	for _, rec := range []*v1alpha1.RotationStatus{o.Prev, o.Record} {
		if rec == nil || rec.SigningSecretName == "" || rec.SigningSecretName == spec.Name {
			continue
		}
		if _, err := r.readAnchor(ctx, iss, o, types.NamespacedName{Namespace: spec.Namespace, Name: rec.SigningSecretName}); err != nil {
			return nil, err
		}
	}
	if p := o.Prev; p != nil {
		o.SigningKeyHeld = p.SigningSecretName != "" && o.Keys[p.SigningRoot] == p.SigningSecretName
	}
	if ref, key, ok := controller.TrustRootsConfigMap(iss); ok {
		cm := &corev1.ConfigMap{}
		switch err := r.Client.Get(ctx, ref, cm); {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, err
		default:
			o.BundleFound = true
		}
		// Their certificates too: a trusted set lost with its issuer is
		// rebuilt from them.
		certs, _ := signer.ParseTrustBundle([]byte(cm.Data[key]))
		for _, c := range certs {
			o.Bundle = append(o.Bundle, o.add(c))
		}
	}
	cp := controller.PolicyFor(iss, nil).ControlPlaneNamespace
	// Read from the cache once per pod revision, not once a reconcile:
	// their times and roots are the cache's, read only.
	pods, err := r.listPods(ctx, cp)
	if err != nil {
		return nil, err
	}
	o.Pods = pods
	if err := r.observeNodes(ctx, o); err != nil {
		return nil, err
	}
	if err := r.observeIdentity(ctx, iss, o); err != nil {
		return nil, err
	}
	r.observePeers(ctx, iss, o)
	o.Roots = make(map[string]rotation.Root, len(o.certs))
	for fp, c := range o.certs {
		o.Roots[fp] = rotation.Root{Key: signer.RootKey(c), NotAfter: c.NotAfter}
	}
	return o, nil
}

func (o *observed) add(c *x509.Certificate) string {
	fp := signer.Fingerprint(c)
	o.certs[fp] = c
	return fp
}

// readAnchor reads an anchor Secret's root, noting in o.Keys where its key
// is (a KMS anchor's key is in the KMS: its Secret holds the certificate).
func (r *Reconciler) readAnchor(ctx context.Context, iss v1alpha1.GenericIssuer, o *observed, ref types.NamespacedName) (string, error) {
	cert, hasKey, err := r.anchorCert(ctx, ref)
	if err != nil || cert == nil {
		return "", err
	}
	fp := o.add(cert)
	if hasKey || iss.GetSpec().KMS != nil {
		if _, seen := o.Keys[fp]; !seen {
			o.Keys[fp] = ref.Name
		}
	}
	return fp, nil
}

// anchorCert is the root an anchor Secret holds, and whether it has a key;
// nil when the Secret is missing or holds no certificate.
func (r *Reconciler) anchorCert(ctx context.Context, ref types.NamespacedName) (*x509.Certificate, bool, error) {
	var s corev1.Secret
	if err := r.APIReader.Get(ctx, ref, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("reading trust anchor Secret %s: %w", ref, err)
	}
	certPEM := s.Data[corev1.TLSCertKey]
	if len(certPEM) == 0 {
		certPEM = s.Data["ca.crt"] // a KMS anchor's Secret may hold it there
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, false, nil
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, false, nil
	}
	return cert, len(s.Data[corev1.TLSPrivateKeyKey]) > 0, nil
}
