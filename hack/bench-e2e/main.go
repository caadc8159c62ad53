// Command bench-e2e measures this issuer beside cert-manager's own CA issuer
// on the local control plane, with the same trust anchor and the same
// approver: N seed-shaped CertificateRequests per round, the two issuers
// alternately for ROUNDS rounds each, then one round each under a churn of
// foreign requests (another issuer's), then the RSS growth of both
// controllers under 5,000 foreign CertificateRequests and 1,000 × 64 KiB
// foreign Secrets. `make bench-e2e` runs it; docs/performance.md has the
// figures. Absolute times on these machines are noisy: read the ratios.
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/api/v1alpha1"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

const (
	ns        = "linkerd" // watched by the issuer, like a real control plane
	foreignNS = "team-a"  // another team's requests, to another issuer
	roundKey  = "bench/round"
)

func main() {
	n := flag.Int("n", 300, "CertificateRequests per round.")
	rounds := flag.Int("rounds", 3, "Rounds per issuer, alternating.")
	memory := flag.Bool("memory", true, "Measure RSS growth under foreign load.")
	issuerArgs := flag.String("issuer-args", "", "Extra flags for the issuer, space-separated (to compare settings).")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *n, *rounds, *memory, strings.Fields(*issuerArgs)); err != nil {
		fmt.Fprintln(os.Stderr, "bench-e2e:", err)
		os.Exit(1)
	}
}

type issuerUnderTest struct {
	name string
	ref  cmmeta.IssuerReference
}

func run(ctx context.Context, n, rounds int, memory bool, issuerArgs []string) (err error) {
	cp, err := localcp.Start(ctx, localcp.Options{
		WatchNamespaces: []string{ns},
		// Info, as the chart runs it: debug logging is not what users run.
		IssuerArgs: append([]string{"--zap-log-level=info"}, issuerArgs...),
		Logf:       func(f string, a ...any) { fmt.Fprintf(os.Stderr, "… "+f+"\n", a...) },
	})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			cp.KeepDir = true
			err = fmt.Errorf("%w (logs in %s)", err, cp.Dir)
		}
		_ = cp.Stop()
	}()
	c, err := client.NewWithWatch(cp.Config, client.Options{Scheme: localcp.Scheme()})
	if err != nil {
		return err
	}
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: foreignNS}}); err != nil {
		return err
	}

	// One anchor, both issuers.
	anchor, err := testpki.NewAnchor(time.Now().Add(-time.Minute), time.Now().Add(10*365*24*time.Hour))
	if err != nil {
		return err
	}
	objs := []client.Object{
		&corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "bench-anchor"},
			Type:       corev1.SecretTypeTLS,
			Data:       map[string][]byte{corev1.TLSCertKey: anchor.CertPEM, corev1.TLSPrivateKeyKey: anchor.KeyPEM},
		},
		&cmapi.Issuer{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "cert-manager-ca"},
			Spec:       cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{CA: &cmapi.CAIssuer{SecretName: "bench-anchor"}}},
		},
		&v1alpha1.LinkerdCAIssuer{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "linkerd-ca"},
			Spec:       v1alpha1.IssuerSpec{TrustAnchorSecretName: "bench-anchor"},
		},
	}
	for _, o := range objs {
		if err := c.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %T: %w", o, err)
		}
	}
	issuers := []issuerUnderTest{
		{"cert-manager CA", cmmeta.IssuerReference{Group: "cert-manager.io", Kind: "Issuer", Name: "cert-manager-ca"}},
		{"linkerd-ca-issuer", cmmeta.IssuerReference{Group: v1alpha1.GroupVersion.Group, Kind: v1alpha1.IssuerKind, Name: "linkerd-ca"}},
	}
	csr, _, err := testpki.CSRFor(testpki.SeedCertificate(ns))
	if err != nil {
		return err
	}
	// Warm both paths: the first request of each waits for issuers to be
	// checked, which is no part of throughput.
	for _, iss := range issuers {
		if _, err := round(ctx, c, "warm-"+slug(iss.name), iss.ref, csr, 5); err != nil {
			return fmt.Errorf("warming %s: %w", iss.name, err)
		}
	}

	// What each issuer costs the API server, per request: the API server is
	// what saturates first on a small control plane.
	for _, iss := range issuers {
		before, err := apiWrites(ctx, cp)
		if err != nil {
			return err
		}
		cpuBefore, err := cpuTimes(cp)
		if err != nil {
			return err
		}
		if _, err := round(ctx, c, "calls-"+slug(iss.name), iss.ref, csr, 100); err != nil {
			return err
		}
		after, err := apiWrites(ctx, cp)
		if err != nil {
			return err
		}
		cpuAfter, err := cpuTimes(cp)
		if err != nil {
			return err
		}
		var cpu []string
		for _, p := range cpuProcesses {
			cpu = append(cpu, fmt.Sprintf("%s %s", p, ((cpuAfter[p]-cpuBefore[p])/100).Round(10*time.Microsecond)))
		}
		fmt.Printf("CPU per request, %s: %s\n", iss.name, strings.Join(cpu, ", "))
		var parts []string
		for k, v := range after {
			if d := (v - before[k]) / 100; d >= 0.05 {
				parts = append(parts, fmt.Sprintf("%s %.2f", k, d))
			}
		}
		slices.Sort(parts)
		fmt.Printf("API writes per request, %s: %s\n", iss.name, strings.Join(parts, ", "))
	}

	results := map[string][]result{}
	for r := range rounds {
		order := issuers
		if r%2 == 1 {
			order = []issuerUnderTest{issuers[1], issuers[0]}
		}
		for _, iss := range order {
			res, err := round(ctx, c, fmt.Sprintf("r%d-%s", r, slug(iss.name)), iss.ref, csr, n)
			if err != nil {
				return fmt.Errorf("%s, round %d: %w", iss.name, r+1, err)
			}
			fmt.Fprintf(os.Stderr, "… %-18s round %d: %s\n", iss.name, r+1, res)
			results[iss.name] = append(results[iss.name], res)
		}
	}
	churn := map[string]result{}
	for _, iss := range issuers {
		stopChurn, sent := foreignChurn(ctx, c, csr)
		res, err := round(ctx, c, "churn-"+slug(iss.name), iss.ref, csr, n)
		stopChurn()
		if err != nil {
			return fmt.Errorf("%s under foreign churn: %w", iss.name, err)
		}
		fmt.Fprintf(os.Stderr, "… %-18s under churn (%d foreign requests): %s\n", iss.name, sent(), res)
		churn[iss.name] = res
		if err := c.DeleteAllOf(ctx, &cmapi.CertificateRequest{}, client.InNamespace(foreignNS)); err != nil {
			return err
		}
	}

	fmt.Printf("\n%d requests a round; %d rounds each, alternating; same anchor and approver\n\n", n, rounds)
	fmt.Println("| scenario | issuer | throughput (req/s) | created at (req/s) | p50 | p99 |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, iss := range issuers {
		for i, res := range results[iss.name] {
			fmt.Printf("| round %d | %s | %.1f | %.1f | %s | %s |\n", i+1, iss.name, res.throughput, res.arrival, res.p50, res.p99)
		}
	}
	for _, iss := range issuers {
		res := churn[iss.name]
		fmt.Printf("| foreign churn | %s | %.1f | %.1f | %s | %s |\n", iss.name, res.throughput, res.arrival, res.p50, res.p99)
	}
	cm, li := median(results[issuers[0].name]), median(results[issuers[1].name])
	fmt.Printf("\nmedian round: linkerd-ca-issuer %.1f req/s, p99 %s; cert-manager CA %.1f req/s, p99 %s; throughput ratio %.2f×\n",
		li.throughput, li.p99, cm.throughput, cm.p99, li.throughput/cm.throughput)
	cc, lc := churn[issuers[0].name], churn[issuers[1].name]
	fmt.Printf("under foreign churn: linkerd-ca-issuer %.1f req/s, p99 %s; cert-manager CA %.1f req/s, p99 %s; throughput ratio %.2f×\n",
		lc.throughput, lc.p99, cc.throughput, cc.p99, lc.throughput/cc.throughput)

	if memory {
		return measureMemory(ctx, cp, csr)
	}
	return nil
}

func slug(s string) string { return strings.ReplaceAll(strings.ToLower(s), " ", "-") }

type result struct {
	throughput float64
	p50, p99   time.Duration
	// arrival is how fast the requests could be created meanwhile: on a
	// saturated control plane it bounds throughput.
	arrival float64
}

func (r result) String() string {
	return fmt.Sprintf("%.1f req/s (created at %.1f req/s), p50 %s, p99 %s", r.throughput, r.arrival, r.p50, r.p99)
}

func median(rs []result) result {
	s := slices.Clone(rs)
	slices.SortFunc(s, func(a, b result) int {
		switch {
		case a.throughput < b.throughput:
			return -1
		case a.throughput > b.throughput:
			return 1
		}
		return 0
	})
	return s[len(s)/2]
}

// round creates n CertificateRequests for one issuer from 8 clients at once,
// and times each from its creation to its Ready condition as a watch sees
// them. Throughput is n over the time from the first creation to the last
// Ready. The requests are deleted afterwards.
func round(ctx context.Context, c client.WithWatch, id string, ref cmmeta.IssuerReference, csr []byte, n int) (result, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	w, err := c.Watch(ctx, &cmapi.CertificateRequestList{}, client.InNamespace(ns), client.MatchingLabels{roundKey: id})
	if err != nil {
		return result{}, err
	}
	defer w.Stop()

	var mu sync.Mutex
	created := make(map[string]time.Time, n)
	names := make(chan string, n)
	for i := range n {
		names <- fmt.Sprintf("%s-%d", id, i)
	}
	close(names)
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for name := range names {
				cr := seedRequest(ns, name, ref, csr)
				cr.Labels = map[string]string{roundKey: id}
				if err := c.Create(ctx, cr); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				created[name] = time.Now()
				mu.Unlock()
			}
		})
	}

	latencies := make([]time.Duration, 0, n)
	var last time.Time
	seen := map[string]bool{}
	for len(seen) < n {
		select {
		case err := <-errs:
			return result{}, err
		case <-ctx.Done():
			return result{}, fmt.Errorf("%d of %d Ready: %w", len(seen), n, ctx.Err())
		case ev, ok := <-w.ResultChan():
			if !ok {
				return result{}, fmt.Errorf("watch closed after %d of %d", len(seen), n)
			}
			if ev.Type != watch.Added && ev.Type != watch.Modified {
				continue
			}
			cr := ev.Object.(*cmapi.CertificateRequest)
			if seen[cr.Name] {
				continue
			}
			for _, cond := range cr.Status.Conditions {
				if cond.Type != cmapi.CertificateRequestConditionReady {
					continue
				}
				if cond.Reason == cmapi.CertificateRequestReasonFailed || cond.Reason == cmapi.CertificateRequestReasonDenied {
					return result{}, fmt.Errorf("%s: %s", cr.Name, cond.Message)
				}
				if cond.Status == cmmeta.ConditionTrue {
					now := time.Now()
					mu.Lock()
					at, ok := created[cr.Name]
					mu.Unlock()
					if !ok {
						at = now // Ready before Create returned: no latency to speak of
					}
					seen[cr.Name], last = true, now
					latencies = append(latencies, now.Sub(at))
				}
			}
		}
	}
	wg.Wait()
	var lastCreated time.Time
	for _, at := range created {
		if at.After(lastCreated) {
			lastCreated = at
		}
	}
	slices.Sort(latencies)
	res := result{
		arrival:    float64(n) / lastCreated.Sub(start).Seconds(),
		throughput: float64(n) / last.Sub(start).Seconds(),
		p50:        latencies[len(latencies)/2].Round(time.Millisecond),
		p99:        latencies[len(latencies)*99/100].Round(time.Millisecond),
	}
	return res, c.DeleteAllOf(context.Background(), &cmapi.CertificateRequest{}, client.InNamespace(ns), client.MatchingLabels{roundKey: id})
}

func seedRequest(namespace, name string, ref cmmeta.IssuerReference, csr []byte) *cmapi.CertificateRequest {
	seed := testpki.SeedCertificate(namespace)
	return &cmapi.CertificateRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name},
		Spec: cmapi.CertificateRequestSpec{
			Request: csr, IsCA: true, Usages: seed.Spec.Usages, Duration: seed.Spec.Duration, IssuerRef: ref,
		},
	}
}

// foreignRef is an issuer neither controller serves.
var foreignRef = cmmeta.IssuerReference{Group: "foreign.example.com", Kind: "ForeignIssuer", Name: "other"}

// foreignChurn creates requests for another issuer from 2 clients until
// stopped (bounded at 20,000), and reports how many it made.
func foreignChurn(ctx context.Context, c client.Client, csr []byte) (stop func(), sent func() int64) {
	ctx, cancel := context.WithCancel(ctx)
	var count atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil && count.Load() < 20000; i++ {
				cr := seedRequest(foreignNS, fmt.Sprintf("foreign-%d-%d-%d", time.Now().UnixNano(), w, i), foreignRef, csr)
				if c.Create(ctx, cr) == nil {
					count.Add(1)
				}
			}
		})
	}
	return func() { cancel(); wg.Wait() }, count.Load
}

// measureMemory reports the RSS growth of both controllers under foreign
// load, one load at a time, each on top of the last: 5,000 CertificateRequests
// for another issuer, 1,000 Secrets of 64 KiB in the namespace the issuer
// watches, and 5,000 pods of no mesh (the issuer runs with --rotation, the
// chart's default, whose pod informer lists only meshed pods).
func measureMemory(ctx context.Context, cp *localcp.ControlPlane, csr []byte) error {
	c := cp.Client
	payload := make([]byte, 64<<10)
	_, _ = rand.Read(payload)
	loads := []struct {
		name string
		n    int
		obj  func(int) client.Object
	}{
		{"5,000 foreign CertificateRequests", 5000, func(i int) client.Object {
			return seedRequest(foreignNS, fmt.Sprintf("foreign-mem-%d", i), foreignRef, csr)
		}},
		{"1,000 × 64 KiB foreign Secrets (watched namespace)", 1000, func(i int) client.Object {
			return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: fmt.Sprintf("foreign-%d", i)}, Data: map[string][]byte{"blob": payload}}
		}},
		{"5,000 unrelated pods", 5000, func(i int) client.Object {
			return &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Namespace: foreignNS, Name: fmt.Sprintf("unrelated-%d", i), Labels: map[string]string{"app": "unrelated"}},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example/app:1", Env: []corev1.EnvVar{{Name: "PAYLOAD", Value: strings.Repeat("x", 1024)}}}}},
			}
		}},
	}
	rss := func() (map[string]int64, error) {
		time.Sleep(15 * time.Second) // let the informers settle and the GC run
		out := map[string]int64{}
		for _, p := range []string{"issuer", "cert-manager"} {
			v, err := cp.RSS(p)
			if err != nil {
				return nil, err
			}
			out[p] = v
		}
		return out, nil
	}
	last, err := rss()
	if err != nil {
		return err
	}
	fmt.Println("\nRSS growth under foreign load, each load on top of the previous:")
	fmt.Println()
	fmt.Println("| load added | issuer | cert-manager |")
	fmt.Println("|---|---|---|")
	fmt.Printf("| none | %d MiB | %d MiB |\n", last["issuer"]>>20, last["cert-manager"]>>20)
	for _, l := range loads {
		if err := createConcurrently(ctx, l.n, l.obj, c); err != nil {
			return fmt.Errorf("%s: %w", l.name, err)
		}
		now, err := rss()
		if err != nil {
			return err
		}
		mib := func(p string) float64 { return float64(now[p]-last[p]) / (1 << 20) }
		fmt.Printf("| %s | %+.1f MiB | %+.1f MiB |\n", l.name, mib("issuer"), mib("cert-manager"))
		last = now
	}
	fmt.Printf("| (after all) | %d MiB | %d MiB |\n", last["issuer"]>>20, last["cert-manager"]>>20)
	return nil
}

var cpuProcesses = []string{"kube-apiserver", "etcd", "cert-manager", "issuer"}

func cpuTimes(cp *localcp.ControlPlane) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	for _, p := range cpuProcesses {
		t, err := cp.CPUTime(p)
		if err != nil {
			return nil, err
		}
		out[p] = t
	}
	return out, nil
}

// apiWrites is the API server's count of writes so far, by verb and
// resource (its apiserver_request_total).
func apiWrites(ctx context.Context, cp *localcp.ControlPlane) (map[string]float64, error) {
	cs, err := kubernetes.NewForConfig(cp.Config)
	if err != nil {
		return nil, err
	}
	raw, err := cs.RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, m := range families["apiserver_request_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		switch l["verb"] {
		case "POST", "PUT", "PATCH", "APPLY", "DELETE":
		default:
			continue
		}
		key := l["verb"] + " " + l["resource"]
		if l["subresource"] != "" {
			key += "/" + l["subresource"]
		}
		out[key] += m.GetCounter().GetValue()
	}
	return out, nil
}

func createConcurrently(ctx context.Context, n int, obj func(int) client.Object, c client.Client) error {
	idx := make(chan int, n)
	for i := range n {
		idx <- i
	}
	close(idx)
	var wg sync.WaitGroup
	var first atomic.Value
	for range 8 {
		wg.Go(func() {
			for i := range idx {
				if err := c.Create(ctx, obj(i)); err != nil {
					first.CompareAndSwap(nil, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err, ok := first.Load().(error); ok {
		return err
	}
	return nil
}
