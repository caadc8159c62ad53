package controller

import (
	"crypto/x509"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/lru"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
)

// The cache's bounds. Anchor Secrets and trust roots ConfigMaps are named by
// issuers, which tenants may edit: without a bound, renaming one over and
// over would grow memory for the life of the process.
const (
	maxCachedAnchors = 128
	maxCachedBundles = 128
	// maxProofsPerAnchor bounds the policies (common name and lifetime
	// bounds) one anchor revision is proven for; editing an issuer's
	// maxDuration again and again cycles through them.
	maxProofsPerAnchor = 8
	maxKeysPerBundle   = 8
)

// parsed keeps what was decoded and proven from a Secret or ConfigMap for as
// long as the object is unchanged, as told by its UID and resourceVersion:
// requests then cost no PEM decoding, key parsing or trial chain. An entry
// is dropped as soon as its object changes or goes (the watches call
// secretChanged and configMapChanged), when an issuer stops naming it, and, past the bounds,
// least recently used first, so the anchor keys of deleted or rotated
// Secrets do not stay in memory.
type parsed struct {
	mu      sync.Mutex
	anchors *lru.Cache // types.NamespacedName → *anchorEntry
	bundles *lru.Cache // types.NamespacedName → *bundleEntry
}

// version identifies one revision of an object, and for an anchor Secret
// the KMS key named with it: another key is another anchor.
type version struct {
	uid             types.UID
	resourceVersion string
	key             string
}

// anchorEntry is one Secret revision's anchor, and the policies its trial
// chain was proven for: the chain depends on the issuer's names and bounds.
type anchorEntry struct {
	version
	anchor *signer.Anchor
	proven map[string]bool
}

type bundleEntry struct {
	version
	byKey map[string]bundleResult
}

type bundleResult struct {
	roots []*x509.Certificate
	err   error
}

func policyKey(p signer.Policy) string {
	return p.CommonName() + "|" + p.MinDuration.String() + "|" + p.MaxDuration.String()
}

func (c *parsed) init() {
	if c.anchors == nil {
		c.anchors, c.bundles = lru.New(maxCachedAnchors), lru.New(maxCachedBundles)
	}
}

// anchor is the anchor parsed from this revision of the Secret, if any, and
// whether it was proven for the policy. Only usable anchors are kept: a
// broken Secret is read again, and time, which can end an anchor's
// validity, is checked by the caller.
func (c *parsed) anchor(ref types.NamespacedName, v version, policy string) (*signer.Anchor, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	if e, ok := c.anchors.Get(ref); ok && e.(*anchorEntry).version == v {
		return e.(*anchorEntry).anchor, e.(*anchorEntry).proven[policy]
	}
	return nil, false
}

// putAnchor keeps a Secret revision's anchor, replacing any other revision's.
func (c *parsed) putAnchor(ref types.NamespacedName, v version, a *signer.Anchor) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	c.anchors.Add(ref, &anchorEntry{version: v, anchor: a, proven: map[string]bool{}})
}

// prove records that the Secret revision's anchor passed the trial chain
// for a policy.
func (c *parsed) prove(ref types.NamespacedName, v version, policy string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	e, ok := c.anchors.Get(ref)
	if !ok || e.(*anchorEntry).version != v {
		return
	}
	proven := e.(*anchorEntry).proven
	if len(proven) >= maxProofsPerAnchor {
		clear(proven)
	}
	proven[policy] = true
}

// secretChanged and configMapChanged drop what was kept of an object other
// than at revision v: the watches call them as soon as the informer sees a
// new revision, or a deletion (with an empty v).
func (c *parsed) secretChanged(ref types.NamespacedName, v version) { c.changed(c.anchorsOf, ref, v) }

func (c *parsed) configMapChanged(ref types.NamespacedName, v version) {
	c.changed(c.bundlesOf, ref, v)
	// A ConfigMap may hold a KMS-kept anchor's certificate.
	c.changed(c.anchorsOf, ref, v)
}

func (c *parsed) anchorsOf() *lru.Cache { return c.anchors }
func (c *parsed) bundlesOf() *lru.Cache { return c.bundles }

func (c *parsed) changed(entries func() *lru.Cache, ref types.NamespacedName, v version) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	// Of the object's revision only: the KMS key in an entry's version is
	// the issuer's, which the object's events do not carry.
	if e, ok := entries().Get(ref); ok && (versionOf(e).uid != v.uid || versionOf(e).resourceVersion != v.resourceVersion) {
		entries().Remove(ref)
	}
}

func versionOf(e any) version {
	switch e := e.(type) {
	case *anchorEntry:
		return e.version
	case *bundleEntry:
		return e.version
	}
	return version{}
}

// bundle is the trust roots parsed from this revision of the ConfigMap's
// key, parsing it on a miss. A bundle that does not parse stays so until
// the ConfigMap changes, so its error is kept too.
func (c *parsed) bundle(ref types.NamespacedName, key string, v version, pem string) ([]*x509.Certificate, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	var e *bundleEntry
	if got, ok := c.bundles.Get(ref); ok && got.(*bundleEntry).version == v {
		e = got.(*bundleEntry)
	} else {
		e = &bundleEntry{version: v, byKey: map[string]bundleResult{}}
		c.bundles.Add(ref, e)
	}
	if r, ok := e.byKey[key]; ok {
		return r.roots, r.err
	}
	roots, err := signer.ParseTrustBundle([]byte(pem))
	if len(e.byKey) >= maxKeysPerBundle {
		clear(e.byKey)
	}
	e.byKey[key] = bundleResult{roots, err}
	return roots, err
}
