package podtrust

import (
	"slices"
	"strings"
	"sync"
)

// maxBundles bounds the distinct trust bundles remembered. A mesh holds a
// handful at a time (one per set of roots it ever trusted); past the bound
// the memory starts again, it is never wrong.
const maxBundles = 64

// maxRememberedBytes bounds a remembered bundle (a dozen roots is ~10 kB):
// a larger one is parsed each time, so the memory stays under 1 MB.
const maxRememberedBytes = 16 << 10

// parsedBundle is one proxy trust bundle, kept once and parsed once:
// thousands of pods hold the same few bundles, and a rotation reads every
// pod's on each reconcile.
type parsedBundle struct {
	value string
	roots []string
	err   error
}

var bundles = struct {
	sync.Mutex
	m map[string]*parsedBundle
}{m: map[string]*parsedBundle{}}

func bundleOf(env string) *parsedBundle {
	if len(env) > maxRememberedBytes {
		b := &parsedBundle{value: env}
		b.roots, b.err = parseRoots(env)
		return b
	}
	bundles.Lock()
	defer bundles.Unlock()
	if b, ok := bundles.m[env]; ok {
		return b
	}
	if len(bundles.m) >= maxBundles {
		clear(bundles.m)
	}
	b := &parsedBundle{value: strings.Clone(env)}
	b.roots, b.err = parseRoots(env)
	bundles.m[b.value] = b
	return b
}

// ParseRoots is the fingerprints of the roots in an env value, parsed as
// strictly as Linkerd parses its trust bundle.
func ParseRoots(env string) ([]string, error) {
	b := bundleOf(env)
	return slices.Clone(b.roots), b.err
}
