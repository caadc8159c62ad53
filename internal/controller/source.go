package controller

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// AnchorSecret is where an issuer's trust anchor lives: beside a
// LinkerdCAIssuer, in the cluster resource namespace for a
// LinkerdCAClusterIssuer.
func (s *Signer) AnchorSecret(iss v1alpha1.GenericIssuer) types.NamespacedName {
	ns := iss.GetNamespace()
	if iss.IsClusterScoped() {
		ns = s.ClusterResourceNamespace
	}
	return types.NamespacedName{Namespace: ns, Name: iss.GetSpec().TrustAnchorSecretName}
}

// TrustRootsConfigMap is where Linkerd's identity service reads the roots
// it trusts, for an issuer, and the key of the bundle; ok is false when the
// issuer's trust roots check is off.
func TrustRootsConfigMap(iss v1alpha1.GenericIssuer) (ref types.NamespacedName, key string, ok bool) {
	tr := iss.GetSpec().TrustRoots
	if tr.Check != nil && !*tr.Check {
		return ref, "", false
	}
	ref = types.NamespacedName{Namespace: iss.GetNamespace(), Name: tr.ConfigMapName}
	if iss.IsClusterScoped() {
		ref.Namespace = PolicyFor(iss, nil).ControlPlaneNamespace
	}
	if ref.Name == "" {
		ref.Name = v1alpha1.DefaultTrustRootsConfigMap
	}
	if key = tr.Key; key == "" {
		key = v1alpha1.DefaultTrustRootsKey
	}
	return ref, key, true
}

// checkScope refuses a namespaced issuer in the cluster resource namespace.
// It would sign with any cluster issuer's anchor Secret there, without the
// control plane namespace rule, for anyone allowed to create issuers and
// Certificates in that namespace, even without leave to read its Secrets.
func (s *Signer) checkScope(iss v1alpha1.GenericIssuer) error {
	if !iss.IsClusterScoped() && iss.GetSpec().KMS != nil {
		// A KMS key is the controller's to use, not the namespace's: the
		// root certificate is public (every proxy carries it), so anyone who
		// may create an issuer in a watched namespace could name the
		// platform's key beside a copy of it and get a CA under the mesh's
		// root. The CRD refuses it at apply; this holds for objects stored
		// before that rule.
		return fmt.Errorf("%s %s/%s names a KMS key (spec.kms %s), and KMS keys sign only for %ss, which only cluster administrators create; move the issuer to a %s, or keep this namespace's own root in a Secret (spec.trustAnchorSecretName with tls.key)",
			iss.IssuerKind(), iss.GetNamespace(), iss.GetName(), iss.GetSpec().KMS, v1alpha1.ClusterIssuerKind, v1alpha1.ClusterIssuerKind)
	}
	if iss.IsClusterScoped() || iss.GetNamespace() != s.ClusterResourceNamespace {
		return nil
	}
	return fmt.Errorf("%s %s/%s is in namespace %q, the cluster resource namespace, where LinkerdCAClusterIssuers keep their trust anchors; a namespaced issuer there would sign with them for anyone who may create Certificates in it, so it is refused. Use a %s (it signs only for its spec.controlPlaneNamespace), or put the issuer and its anchor Secret in another namespace (--cluster-resource-namespace, Helm value clusterResourceNamespace, names this one)",
		iss.IssuerKind(), iss.GetNamespace(), iss.GetName(), s.ClusterResourceNamespace, v1alpha1.ClusterIssuerKind)
}

func (s *Signer) checkWatched(what string, ref types.NamespacedName) error {
	if !slices.Contains(s.WatchNamespaces, ref.Namespace) {
		return fmt.Errorf("%s %s: namespace %q is not watched by the controller (watched: %v); add it to --watch-namespaces (Helm value watchNamespaces)", what, ref, ref.Namespace, s.WatchNamespaces)
	}
	return nil
}

// readAnchor reads an issuer's trust anchor Secret and proves the anchor
// usable for the issuer's policy: parsed and checked rule by rule, then a
// trial chain under it verified. The controller caches only Secrets'
// metadata; the Secret itself is fetched and parsed once per revision, and
// proven once per revision and policy. To sign (fresh), the revision is
// confirmed with the API server rather than the informer, which can lag: a
// key is never used once its Secret has changed.
func (s *Signer) readAnchor(ctx context.Context, iss v1alpha1.GenericIssuer, p signer.Policy, fresh bool) (*signer.Anchor, error) {
	if err := s.checkScope(iss); err != nil {
		return nil, err
	}
	if ref, ok := s.AnchorConfigMap(iss); ok {
		return s.readConfigMapAnchor(ctx, iss, p, ref, fresh)
	}
	ref := s.signingSecret(iss)
	if err := s.checkWatched("trust anchor Secret", ref); err != nil {
		return nil, err
	}
	notFound := fmt.Errorf("trust anchor Secret %s not found; create it with type kubernetes.io/tls and the root CA in tls.crt and tls.key", ref)
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	var err error
	if fresh {
		m, err = s.confirmations.get(ctx, ref, func(ctx context.Context, m *metav1.PartialObjectMetadata) error {
			m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
			return s.Secrets.Get(ctx, ref, m)
		})
	} else {
		err = s.Client.Get(ctx, ref, m)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			s.parsed.secretChanged(ref, version{})
			return nil, notFound
		}
		return nil, fmt.Errorf("reading trust anchor Secret %s: %w", ref, err)
	}
	kms := s.signingKMS(iss)
	now, v := s.Clock.Now(), version{m.UID, m.ResourceVersion, kms.String()}
	anchor, proven := s.parsed.anchor(ref, v, policyKey(p))
	if anchor == nil {
		var secret corev1.Secret
		if err := s.Secrets.Get(ctx, ref, &secret); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, notFound
			}
			return nil, fmt.Errorf("reading trust anchor Secret %s: %w", ref, err)
		}
		if secret.Type != corev1.SecretTypeTLS && kms == nil {
			return nil, fmt.Errorf("trust anchor Secret %s has type %q; it must be of type %s (tls.crt and tls.key)", ref, secret.Type, corev1.SecretTypeTLS)
		}
		a, err := s.parseAnchor(ctx, kms, &secret, now)
		if err != nil {
			return nil, fmt.Errorf("trust anchor Secret %s: %w", ref, err)
		}
		anchor, v = a, version{secret.UID, secret.ResourceVersion, kms.String()}
		s.parsed.putAnchor(ref, v, anchor)
	}
	return s.proveAnchor(iss, p, "trust anchor Secret "+ref.String(), ref, v, anchor, proven, now)
}

// proveAnchor is what every anchor, wherever it is kept, must pass to sign:
// valid now, a trial chain under it verified once per revision and policy,
// and the root the rotation signs under.
func (s *Signer) proveAnchor(iss v1alpha1.GenericIssuer, p signer.Policy, what string, ref types.NamespacedName, v version, anchor *signer.Anchor, proven bool, now time.Time) (*signer.Anchor, error) {
	if err := signer.CheckAnchorValidity(anchor.Certificate, now); err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if !proven {
		if err := signer.CheckTrialChain(p, anchor, now); err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		s.parsed.prove(ref, v, policyKey(p))
	}
	if err := s.checkSigningRoot(iss, anchor); err != nil {
		return nil, err
	}
	return anchor, nil
}

// trust is what Linkerd's trust roots say of an anchor.
type trust struct {
	// caPEM is what ca.crt carries: Linkerd's whole trust roots bundle when
	// its ConfigMap exists, else the anchor alone.
	caPEM []byte
	// condition is the TrustAnchorTrusted condition.
	condition metav1.Condition
}

// blocksSigning is why an issuer must not sign with this anchor: signing
// with an anchor Linkerd's identity service does not trust would break
// every proxy.
func (t trust) blocksSigning() error {
	if t.condition.Status == metav1.ConditionFalse {
		return fmt.Errorf("%s: %s", ReasonTrustAnchorNotTrusted, t.condition.Message)
	}
	return nil
}

func trustCondition(status metav1.ConditionStatus, reason, format string, args ...any) metav1.Condition {
	return metav1.Condition{Type: ConditionTrustAnchorTrusted, Status: status, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// readTrust reads Linkerd's trust roots for an issuer. While the ConfigMap
// exists the anchor must be in it, and ca.crt becomes the whole bundle;
// without it issuance goes on with the anchor alone, so that the issuer can
// be installed before Linkerd, and the condition and a Warning event say the
// gate is off (ReasonTrustGateOff). The error is for what could not be read at all.
func (s *Signer) readTrust(ctx context.Context, iss v1alpha1.GenericIssuer, anchor *signer.Anchor) (trust, error) {
	t := trust{caPEM: anchor.PEM}
	ref, key, ok := TrustRootsConfigMap(iss)
	if !ok {
		t.condition = trustCondition(metav1.ConditionUnknown, ReasonCheckDisabled, "spec.trustRoots.check is false; ca.crt is the anchor alone")
		return t, nil
	}
	if err := s.checkWatched("trust roots ConfigMap", ref); err != nil {
		t.condition = trustCondition(metav1.ConditionUnknown, ReasonTrustRootsNotFound, "%v", err)
		return t, err
	}
	var cm corev1.ConfigMap
	if err := s.Client.Get(ctx, ref, &cm); err != nil {
		if apierrors.IsNotFound(err) {
			t.condition = trustCondition(metav1.ConditionUnknown, ReasonTrustGateOff,
				"the trust gate is off: ConfigMap %s not found, so this anchor is used without checking that Linkerd trusts it, and ca.crt is the anchor alone. Before Linkerd is installed that is expected; once it is, check spec.trustRoots.configMapName (Linkerd reads %s), since a wrong name keeps the gate off", ref, v1alpha1.DefaultTrustRootsConfigMap)
			return t, nil
		}
		err = fmt.Errorf("reading trust roots ConfigMap %s: %w", ref, err)
		t.condition = trustCondition(metav1.ConditionUnknown, ReasonTrustRootsNotFound, "%v", err)
		return t, err
	}
	untrusted := func(format string, args ...any) (trust, error) {
		t.condition = trustCondition(metav1.ConditionFalse, ReasonTrustAnchorNotTrusted, format, args...)
		return t, nil
	}
	bundle, ok := cm.Data[key]
	if !ok {
		return untrusted("ConfigMap %s has no key %q, so Linkerd trusts no root; fix the ConfigMap or spec.trustRoots.key", ref, key)
	}
	roots, err := s.parsed.bundle(ref, key, version{uid: cm.UID, resourceVersion: cm.ResourceVersion}, bundle)
	if err != nil {
		return untrusted("ConfigMap %s key %s, Linkerd's trust roots, does not parse as Linkerd requires: %v; it must hold only PEM CERTIFICATE blocks", ref, key, err)
	}
	if !signer.BundleContains(roots, anchor.Certificate) {
		return untrusted("the trust anchor %s (SHA-256 %s) is not among the roots Linkerd's identity service trusts (ConfigMap %s key %s); an issuer signed by it would break every proxy. Add the anchor to that bundle first (see docs/rotation.md), or set spec.trustRoots.check: false",
			anchor.Certificate.Subject, signer.Fingerprint(anchor.Certificate), ref, key)
	}
	t.caPEM = signer.EncodeBundle(roots)
	t.condition = trustCondition(metav1.ConditionTrue, ReasonTrusted, "the trust anchor is among the roots in ConfigMap %s key %s; ca.crt carries all %d", ref, key, len(roots))
	return t, nil
}
