//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// trustWatcher records, from its own informers, every meshed and
// control-plane pod's roots, every version of Linkerd's trust roots and
// every identity issuer, and checks ROTATION.md's invariants on each change:
//
//   - I1/I4: the identity issuer chains to a root every running pod holds
//     (a pod's inline roots; for a configMapKeyRef pod, the bundle in
//     effect when it started), matched as a verifier matches a root: the
//     same certificate, or an unexpired copy with its subject and key. A
//     pod that finished (Succeeded, Failed) runs no proxy and is left out;
//   - I2: a root leaves the bundle only once no leaf under it can be alive:
//     the leaf lifetime after the identity issuer stopped chaining to it, or
//     every pod created since.
//
// Observation lags the cluster by up to a second, which the bundle history
// allows for; everything else is checked as seen.
type trustWatcher struct {
	lifetime time.Duration

	mu         sync.Mutex
	pods       map[string]podtrust.Pod
	bundles    []bundleVersion
	roots      map[string]*x509.Certificate
	issuerRoot string
	// issuedUntil is when the identity issuer last stopped chaining to a root.
	issuedUntil map[string]time.Time
	violations  []string
	seen        map[string]bool
	checks      int
	// accepted are the pods the test, as the operator, decided may break
	// (linkerd-ca rotation switch --accept-behind).
	accepted map[string]bool
}

// accept records the operator's decision that pod (namespace/name) may
// break: it is the test's word, not the controller's.
func (w *trustWatcher) accept(pod string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.accepted == nil {
		w.accepted = map[string]bool{}
	}
	w.accepted[pod] = true
}

type bundleVersion struct {
	seen  time.Time
	roots []string
}

func watchTrust(ctx context.Context, lifetime time.Duration) (*trustWatcher, error) {
	w := &trustWatcher{lifetime: lifetime, pods: map[string]podtrust.Pod{}, roots: map[string]*x509.Certificate{},
		issuedUntil: map[string]time.Time{}, seen: map[string]bool{}}
	meshed := labels.SelectorFromSet(labels.Set{localcp.ControlPlaneNSLabel: nsMesh})
	c, err := cache.New(cp.Config, cache.Options{Scheme: cl.Scheme(), ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:       {Label: meshed},
		&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{nsMesh: {}}},
		&corev1.Secret{}:    {Namespaces: map[string]cache.Config{nsMesh: {}}},
	}})
	if err != nil {
		return nil, err
	}
	for _, obj := range []client.Object{&corev1.Pod{}, &corev1.ConfigMap{}, &corev1.Secret{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return nil, err
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(o any) { w.observe(o, false) },
			UpdateFunc: func(_, o any) { w.observe(o, false) },
			DeleteFunc: func(o any) {
				if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
					o = d.Obj
				}
				w.observe(o, true)
			},
		}); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the watcher's caches never synced")
	}
	return w, nil
}

func (w *trustWatcher) observe(o any, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	switch obj := o.(type) {
	case *corev1.Pod:
		key := string(obj.UID)
		// A finished pod runs no proxy: read from the pod itself, not
		// from the controller's notion of a live pod.
		finished := obj.Status.Phase == corev1.PodSucceeded || obj.Status.Phase == corev1.PodFailed
		if p, ok := podtrust.Of(obj); ok && !deleted && !finished {
			w.pods[key] = p
		} else {
			delete(w.pods, key)
		}
	case *corev1.ConfigMap:
		if obj.Name != v1alpha1.DefaultTrustRootsConfigMap {
			return
		}
		var fps []string
		if !deleted {
			certs, _ := signer.ParseTrustBundle([]byte(obj.Data[v1alpha1.DefaultTrustRootsKey]))
			for _, c := range certs {
				fp := signer.Fingerprint(c)
				w.roots[fp] = c
				fps = append(fps, fp)
			}
		}
		if n := len(w.bundles); n > 0 && slices.Equal(w.bundles[n-1].roots, fps) {
			return
		}
		if n := len(w.bundles); n > 0 {
			for _, r := range w.bundles[n-1].roots {
				// A root whose copy (same subject and key) stays loses
				// nothing: a verifier matches either.
				if !slices.ContainsFunc(fps, func(fp string) bool { return w.same(fp, r) }) {
					w.checkRetired(r, now)
				}
			}
		}
		w.bundles = append(w.bundles, bundleVersion{seen: now, roots: fps})
	case *corev1.Secret:
		if obj.Name != localcp.IdentityIssuerSecret {
			return
		}
		root := ""
		if block, _ := pem.Decode(obj.Data[corev1.TLSCertKey]); block != nil && !deleted {
			if leaf, err := x509.ParseCertificate(block.Bytes); err == nil {
				for fp, r := range w.roots {
					if leaf.CheckSignatureFrom(r) == nil {
						root = fp
					}
				}
				if root == "" {
					w.violate("I4: identity issuer %s chains to no root Linkerd's trust roots ever held", leaf.Subject)
				}
			}
		}
		if w.issuerRoot != "" && root != w.issuerRoot {
			w.issuedUntil[w.issuerRoot] = now
		}
		w.issuerRoot = root
	}
	w.checkHeld()
}

// checkHeld is I1 (and I4 at each new issuer): every pod holds the root of
// the identity issuer in place.
func (w *trustWatcher) checkHeld() {
	w.checks++
	if w.issuerRoot == "" {
		return
	}
	for _, p := range w.pods {
		if w.accepted[p.Key()] {
			continue
		}
		held, known := w.holds(p)
		if known && !slices.ContainsFunc(held, func(fp string) bool { return w.same(fp, w.issuerRoot) }) {
			w.violate("I1: pod %s holds %d roots, not %s, the identity issuer's", p.Key(), len(held), short(w.issuerRoot))
		}
	}
}

// holds is what a pod's proxy trusts; known is false for a configMapKeyRef
// proxy that has not started.
func (w *trustWatcher) holds(p podtrust.Pod) (roots []string, known bool) {
	switch {
	case p.FromConfigMap && p.Started == nil:
		return nil, false
	case p.FromConfigMap:
		// The bundle in effect at its start, allowing for a second of lag.
		for _, b := range w.bundles {
			if b.seen.After(p.Started.Add(time.Second)) {
				break
			}
			roots = b.roots
		}
		return roots, true
	}
	return p.Inline, true
}

// same says a proxy holding root a verifies what root b's key signs: the
// same root, or an unexpired copy of it with the same subject and key (a
// root renewed with rotationPolicy Never). Matched as a verifier matches,
// not by the controller's own notion of a root.
func (w *trustWatcher) same(a, b string) bool {
	if a == b {
		return true
	}
	ca, cb := w.roots[a], w.roots[b]
	return ca != nil && cb != nil && time.Now().Before(ca.NotAfter) &&
		bytes.Equal(ca.RawSubject, cb.RawSubject) && bytes.Equal(ca.RawSubjectPublicKeyInfo, cb.RawSubjectPublicKeyInfo)
}

// checkRetired is I2, when root leaves the bundle at now.
func (w *trustWatcher) checkRetired(root string, now time.Time) {
	if root == w.issuerRoot {
		w.violate("I2: root %s left the bundle while the identity issuer chains to it", short(root))
		return
	}
	until, issued := w.issuedUntil[root]
	if !issued || now.Sub(until) >= w.lifetime {
		return
	}
	for _, p := range w.pods {
		if p.Created.Before(until) && !w.accepted[p.Key()] {
			w.violate("I2: root %s left the bundle %s after the last identity issuer under it, with pod %s older than that",
				short(root), now.Sub(until).Round(time.Millisecond), p.Key())
			return
		}
	}
}

func (w *trustWatcher) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !w.seen[msg] {
		w.seen[msg] = true
		w.violations = append(w.violations, time.Now().Format("15:04:05.000")+" "+msg)
	}
}

// report is the violations so far, and how many changes were checked.
func (w *trustWatcher) report() ([]string, int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.violations), w.checks
}

func short(fp string) string {
	if len(fp) > 11 {
		return fp[:11]
	}
	return fp
}
