package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/testpki"
)

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
	watchRound := func() (watch.Interface, error) {
		return c.Watch(ctx, &cmapi.CertificateRequestList{}, client.InNamespace(ns), client.MatchingLabels{roundKey: id})
	}
	w, err := watchRound()
	if err != nil {
		return result{}, err
	}
	defer func() { w.Stop() }()
	rewatched := 0

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
				// The API server may end a watch at any time (runs of this
				// tool saw it under load); a client watches again, and the
				// new watch's first events are every request as it is.
				if rewatched++; rewatched > 5 {
					return result{}, fmt.Errorf("watch closed %d times, after %d of %d", rewatched, len(seen), n)
				}
				fmt.Fprintf(os.Stderr, "… %s: the watch closed after %d of %d Ready; watching again\n", id, len(seen), n)
				if w, err = watchRound(); err != nil {
					return result{}, err
				}
				continue
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
