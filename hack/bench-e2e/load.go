package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

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
