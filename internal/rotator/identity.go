package rotator

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/controller"
)

// observeIdentity reads the identity issuer Certificates this issuer signs,
// the root their Secrets chain to, and Linkerd identity's last
// IssuerUpdated event.
func (r *Reconciler) observeIdentity(ctx context.Context, iss v1alpha1.GenericIssuer, o *observed) error {
	ns := controller.PolicyFor(iss, nil).Namespace
	if ns == "" {
		ns = iss.GetNamespace()
	}
	var certs cmapi.CertificateList
	if err := r.Client.List(ctx, &certs, client.InNamespace(ns)); err != nil {
		return err
	}
	for _, c := range certs.Items {
		ref := c.Spec.IssuerRef
		if ref.Group != v1alpha1.GroupVersion.Group || ref.Kind != iss.IssuerKind() || ref.Name != iss.GetName() {
			continue
		}
		o.certificates = append(o.certificates, c)
	}
	sort.Slice(o.certificates, func(i, j int) bool { return o.certificates[i].Name < o.certificates[j].Name })
	if len(o.certificates) == 0 {
		return nil
	}
	c := o.certificates[0]
	var s corev1.Secret
	if err := r.APIReader.Get(ctx, types.NamespacedName{Namespace: c.Namespace, Name: c.Spec.SecretName}, &s); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	if block, _ := pem.Decode(s.Data[corev1.TLSCertKey]); block != nil {
		if leaf, err := x509.ParseCertificate(block.Bytes); err == nil {
			o.Identity.NotBefore, o.Identity.NotAfter = leaf.NotBefore, leaf.NotAfter
			o.Identity.Root = issuingRoot(leaf, o)
		}
	}
	o.Identity.Written = writtenAt(&s)
	if o.Prev != nil && o.Prev.Phase != v1alpha1.RotationSwitching {
		return nil
	}
	return r.observeIdentityEvents(ctx, iss, o)
}

// observeIdentityEvents reads what Linkerd's identity service last said of
// the identity issuer: loaded (IssuerUpdated) or refused
// (IssuerUpdateSkipped), since the Secret was written.
func (r *Reconciler) observeIdentityEvents(ctx context.Context, iss v1alpha1.GenericIssuer, o *observed) error {
	var events corev1.EventList
	if err := r.APIReader.List(ctx, &events, client.InNamespace(controller.PolicyFor(iss, nil).ControlPlaneNamespace),
		client.MatchingFields{"involvedObject.name": "linkerd-identity"}); err != nil {
		return fmt.Errorf("listing Linkerd identity's events: %w", err)
	}
	var skipped time.Time
	for _, e := range events.Items {
		at := e.LastTimestamp.Time
		for _, t := range []time.Time{e.EventTime.Time, e.FirstTimestamp.Time} {
			if t.After(at) {
				at = t
			}
		}
		switch e.Reason {
		case "IssuerUpdated":
			if at.After(o.Identity.Updated) {
				o.Identity.Updated = at
			}
		case "IssuerUpdateSkipped":
			if !at.Before(o.Identity.Written) && at.After(skipped) {
				skipped, o.Identity.Skipped = at, e.Message
			}
		}
	}
	return nil
}

// writtenAt is when a Secret's data was last written: the newest time of
// a managed fields entry that holds data, else its creation.
func writtenAt(s *corev1.Secret) time.Time {
	t := s.CreationTimestamp.Time
	for _, m := range s.ManagedFields {
		if m.FieldsV1 != nil && !strings.Contains(m.FieldsV1.GetRawString(), `"f:data"`) {
			continue
		}
		if m.Time != nil && m.Time.After(t) {
			t = m.Time.Time
		}
	}
	return t
}

// issuingRoot is the root the identity issuer chains to. Copies of a root
// renewed with the same key all verify it: the one signed under, else the
// anchor, is taken, so that a same-key renewal is read as the root in use
// and not as a rotation to re-issue for.
func issuingRoot(leaf *x509.Certificate, o *observed) string {
	var verify []string
	for fp, root := range o.certs {
		if leaf.CheckSignatureFrom(root) == nil {
			verify = append(verify, fp)
		}
	}
	sort.Strings(verify)
	for _, prefer := range []string{signingRootOf(o.Prev), o.Anchor} {
		if prefer != "" && slices.Contains(verify, prefer) {
			return prefer
		}
	}
	if len(verify) > 0 {
		return verify[0]
	}
	return ""
}

func signingRootOf(st *v1alpha1.RotationStatus) string {
	if st == nil {
		return ""
	}
	return st.SigningRoot
}
