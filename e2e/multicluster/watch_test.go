//go:build e2e

package multicluster

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/guide"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/signer"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

// linkWatcher checks the linked clusters' invariants on every change it
// sees in either, from its own informers, independently of the issuers:
//
//   - I1: every identity issuer, in either cluster, chains to a root held
//     by every running meshed pod in both;
//   - I2: a root leaves either cluster's Linkerd trust roots only when no
//     leaf under it can be alive in any cluster: the identity issuer that
//     chained to it stopped doing so at least a proxy certificate's
//     lifetime ago, or every meshed pod of its cluster was created since.
type linkWatcher struct {
	lifetime time.Duration

	mu          sync.Mutex
	roots       map[string]*x509.Certificate
	bundles     map[string][]bundleAt
	pods        map[string]map[string]podtrust.Pod
	issuer      map[string]string
	issuerCert  map[string][]byte
	issuedUntil map[string]map[string]time.Time
	// synced: every informer has listed; before, a Secret or a pod may be
	// seen before the trust roots it is judged by.
	synced     bool
	stops      map[string]context.CancelFunc
	violations []string
	checks     int
}

type bundleAt struct {
	seen time.Time
	fps  []string
}

func watchLinked(ctx context.Context, lifetime time.Duration, clusters ...*cluster) (*linkWatcher, error) {
	w := &linkWatcher{lifetime: lifetime, roots: map[string]*x509.Certificate{}, bundles: map[string][]bundleAt{},
		pods: map[string]map[string]podtrust.Pod{}, issuer: map[string]string{}, issuerCert: map[string][]byte{}, issuedUntil: map[string]map[string]time.Time{},
		stops: map[string]context.CancelFunc{}}
	for _, k := range clusters {
		w.issuedUntil[k.name] = map[string]time.Time{}
		if err := w.watch(ctx, k); err != nil {
			return nil, err
		}
	}
	w.mu.Lock()
	w.synced = true
	w.checkIssued(time.Now())
	w.mu.Unlock()
	return w, nil
}

// watch (again) lists and watches one cluster with informers of its own.
// After the cluster's API server was down, the test calls it again: the
// old informers' watches may take their back-off to return, and meanwhile
// the watcher would judge pods long gone.
func (w *linkWatcher) watch(ctx context.Context, k *cluster) error {
	w.mu.Lock()
	if stop := w.stops[k.name]; stop != nil {
		stop()
	}
	ctx, stop := context.WithCancel(ctx)
	w.stops[k.name], w.pods[k.name] = stop, map[string]podtrust.Pod{}
	synced := w.synced
	w.synced = false
	w.mu.Unlock()
	meshed, _ := labels.NewRequirement(localcp.ControlPlaneNSLabel, selection.Exists, nil)
	c, err := cache.New(k.cp.Config, cache.Options{Scheme: localcp.Scheme(), ByObject: map[client.Object]cache.ByObject{
		&corev1.Pod{}:       {Label: labels.NewSelector().Add(*meshed)},
		&corev1.ConfigMap{}: {Namespaces: map[string]cache.Config{ns: {}}},
		&corev1.Secret{}:    {Namespaces: map[string]cache.Config{ns: {}}},
	}})
	if err != nil {
		return err
	}
	name := k.name
	for _, obj := range []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}, &corev1.Pod{}} {
		inf, err := c.GetInformer(ctx, obj)
		if err != nil {
			return err
		}
		on := func(o any, gone bool) {
			if ctx.Err() == nil {
				w.observe(name, o, gone)
			}
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc: func(o any) { on(o, false) }, UpdateFunc: func(_, o any) { on(o, false) },
			DeleteFunc: func(o any) {
				if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
					o = d.Obj
				}
				on(o, true)
			},
		}); err != nil {
			return err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return fmt.Errorf("%s: the watcher's caches did not sync", name)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.synced = synced; synced {
		w.checkIssued(time.Now())
	}
	return nil
}

func (w *linkWatcher) observe(cluster string, o any, gone bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	switch obj := o.(type) {
	case *corev1.ConfigMap:
		if obj.Name != guide.TrustRoots {
			return
		}
		certs, _ := signer.ParseTrustBundle([]byte(obj.Data[v1alpha1.DefaultTrustRootsKey]))
		var fps []string
		for _, c := range certs {
			fp := signer.Fingerprint(c)
			w.roots[fp] = c
			fps = append(fps, fp)
		}
		if gone {
			fps = nil
		}
		slices.Sort(fps)
		hist := w.bundles[cluster]
		if len(hist) > 0 {
			for _, fp := range hist[len(hist)-1].fps {
				if !slices.Contains(fps, fp) {
					w.checkRetired(now, cluster, fp)
				}
			}
		}
		seen := now
		if len(hist) == 0 {
			// As it was before the watcher: the pods that started earlier
			// were admitted with it (the test starts watching once Stable).
			seen = time.Time{}
		}
		w.bundles[cluster] = append(hist, bundleAt{seen: seen, fps: fps})
	case *corev1.Secret:
		if obj.Name != guide.IdentityIssuer {
			return
		}
		w.issuerCert[cluster] = obj.Data[corev1.TLSCertKey]
		if gone {
			w.issuerCert[cluster] = nil
		}
	case *corev1.Pod:
		p, ok := podtrust.Of(obj)
		if !ok {
			return
		}
		if gone || !p.Live() {
			delete(w.pods[cluster], p.Key())
		} else {
			w.pods[cluster][p.Key()] = p
		}
	default:
		return
	}
	if w.synced {
		w.checkIssued(now)
	}
}

// checkIssued is I1, after finding the root each identity issuer chains to
// now, and when it stopped chaining to the one before.
func (w *linkWatcher) checkIssued(now time.Time) {
	w.checks++
	for cluster, cert := range w.issuerCert {
		root := ""
		if cert != nil {
			if root = chainsTo(cert, w.roots); root == "" && w.synced {
				w.violate("%s: the identity issuer chains to no root either cluster's trust roots ever held", cluster)
			}
		}
		if prev := w.issuer[cluster]; prev != "" && prev != root {
			w.issuedUntil[cluster][prev] = now
		}
		w.issuer[cluster] = root
	}
	for issuing, root := range w.issuer {
		if root == "" {
			continue
		}
		for cluster, pods := range w.pods {
			for key, p := range pods {
				if !w.holds(cluster, p, root) {
					w.violate("I1: %s's identity issuer chains to %s, which pod %s of %s does not hold (seen at %s; pod created %s, inline roots %d, from the ConfigMap %v)",
						issuing, short(root), key, cluster, now.Format("15:04:05.000"), p.Created.Format("15:04:05"), len(p.Inline), p.FromConfigMap)
				}
			}
		}
	}
}

// holds: an inline pod holds its env's roots; one reading Linkerd's trust
// roots holds what they held when it started.
func (w *linkWatcher) holds(cluster string, p podtrust.Pod, root string) bool {
	if !p.FromConfigMap {
		return slices.Contains(p.Inline, root)
	}
	hist := w.bundles[cluster]
	var at []string
	for _, b := range hist {
		if p.Started != nil && b.seen.After(*p.Started) {
			break
		}
		at = b.fps
	}
	return slices.Contains(at, root)
}

// checkRetired is I2, for root leaving cluster's trust roots now.
func (w *linkWatcher) checkRetired(now time.Time, cluster, root string) {
	for issuing, until := range w.issuedUntil {
		if w.issuer[issuing] == root {
			w.violate("I2: root %s left %s's trust roots while %s's identity issuer still chains to it", short(root), cluster, issuing)
			continue
		}
		stopped, ok := until[root]
		if !ok || !now.Before(stopped.Add(w.lifetime)) {
			continue
		}
		for key, p := range w.pods[issuing] {
			if p.Created.Before(stopped) {
				w.violate("I2: root %s left %s's trust roots %s after %s's identity issuer stopped chaining to it, and pod %s of %s, older, may hold a leaf under it",
					short(root), cluster, now.Sub(stopped).Round(time.Millisecond), issuing, key, issuing)
				break
			}
		}
	}
}

func (w *linkWatcher) violate(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if !slices.Contains(w.violations, msg) {
		w.violations = append(w.violations, msg)
	}
}

// assert fails the test with every violation seen.
func (w *linkWatcher) assert(t *testing.T) {
	t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	t.Logf("the watcher checked the invariants over both clusters %d times", w.checks)
	for _, v := range w.violations {
		t.Error(v)
	}
}
