package controller

import (
	"crypto/x509"
	"sync"

	"k8s.io/apimachinery/pkg/types"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// parsed keeps what was decoded and proven from a Secret or ConfigMap for as
// long as the object is unchanged, as told by its UID and resourceVersion:
// requests then cost no PEM decoding, key parsing or trial chain. An entry
// is replaced as soon as its object changes; there is one per object (and
// policy), so it holds no more than the issuers' own sources.
type parsed struct {
	mu      sync.Mutex
	anchors map[anchorKey]anchorEntry
	bundles map[bundleKey]bundleEntry
}

// version identifies one revision of an object.
type version struct {
	uid             types.UID
	resourceVersion string
}

// anchorKey is a Secret proven for one policy: the trial chain depends on
// the issuer's names and bounds.
type anchorKey struct {
	secret types.NamespacedName
	policy string
}

type anchorEntry struct {
	version
	anchor *signer.Anchor
}

type bundleKey struct {
	configMap types.NamespacedName
	key       string
}

type bundleEntry struct {
	version
	roots []*x509.Certificate
	err   error
}

func policyKey(p signer.Policy) string {
	return p.CommonName() + "|" + p.MinDuration.String() + "|" + p.MaxDuration.String()
}

// anchor is the anchor proven from this revision of the Secret, if any.
// Only usable anchors are kept: a broken Secret is read again, and time,
// which can end an anchor's validity, is checked by the caller.
func (c *parsed) anchor(ref types.NamespacedName, p signer.Policy, v version) *signer.Anchor {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.anchors[anchorKey{ref, policyKey(p)}]; ok && e.version == v {
		return e.anchor
	}
	return nil
}

func (c *parsed) putAnchor(ref types.NamespacedName, p signer.Policy, v version, a *signer.Anchor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.anchors == nil {
		c.anchors = map[anchorKey]anchorEntry{}
	}
	c.anchors[anchorKey{ref, policyKey(p)}] = anchorEntry{v, a}
}

// bundle is the trust roots parsed from this revision of the ConfigMap's
// key, parsing it on a miss. A bundle that does not parse stays so until
// the ConfigMap changes, so its error is kept too.
func (c *parsed) bundle(ref types.NamespacedName, key string, v version, pem string) ([]*x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := bundleKey{ref, key}
	if e, ok := c.bundles[k]; ok && e.version == v {
		return e.roots, e.err
	}
	roots, err := signer.ParseTrustBundle([]byte(pem))
	if c.bundles == nil {
		c.bundles = map[bundleKey]bundleEntry{}
	}
	c.bundles[k] = bundleEntry{v, roots, err}
	return roots, err
}
