package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/podtrust"
	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

type result struct {
	pods                        int
	idle, rotation              map[string]float64 // the issuer's requests, by verb
	idleFor, propagated, toEnd  time.Duration
	rss0, rssPeak               int64
	lastPodGone, switchObserved time.Time
}

// measure rotates the mesh to a new root and measures the issuer: its API
// requests (and, over as long a time before, its idle ones: lease renewals,
// resyncs), its RSS sampled every 250 ms, and when the last pod without the
// new root went away against when the issuer was seen signing under it.
func measure(ctx context.Context, cp *localcp.ControlPlane, m *mesh) (*result, error) {
	r := &result{idleFor: time.Minute}
	next, root, err := m.nextRoot(ctx)
	if err != nil {
		return nil, err
	}
	before, err := requests(ctx, cp)
	if err != nil {
		return nil, err
	}
	time.Sleep(r.idleFor) // idle: also lets the informers settle and the GC run
	after, err := requests(ctx, cp)
	if err != nil {
		return nil, err
	}
	r.idle = diff(after, before)
	if r.rss0, err = cp.RSS("issuer"); err != nil {
		return nil, err
	}
	sampleCtx, stopSampling := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	sampled.Go(func() {
		for sampleCtx.Err() == nil {
			if v, err := cp.RSS("issuer"); err == nil && v > r.rssPeak {
				r.rssPeak = v
			}
			time.Sleep(250 * time.Millisecond)
		}
	})
	defer func() { stopSampling(); sampled.Wait() }()
	behind, err := watchBehind(sampleCtx, m.c, root)
	if err != nil {
		return nil, err
	}

	start := time.Now()
	if err := m.startRotation(ctx, next); err != nil {
		return nil, err
	}
	for r.switchObserved.IsZero() {
		if err := m.c.Get(ctx, client.ObjectKeyFromObject(m.iss), m.iss); err != nil {
			return nil, err
		}
		if st := m.iss.Status.Rotation; st != nil && st.SigningRoot == root {
			r.switchObserved = time.Now()
			break
		}
		if time.Since(start) > 60*time.Minute {
			return nil, fmt.Errorf("no switch within an hour: %+v", m.iss.Status.Rotation)
		}
		time.Sleep(100 * time.Millisecond)
	}
	r.propagated = r.switchObserved.Sub(start)
	r.lastPodGone, r.pods = behind()
	if err := m.waitPhase(ctx, "Stable", root, 5*time.Minute); err != nil {
		return nil, err
	}
	r.toEnd = time.Since(start)
	end, err := requests(ctx, cp)
	if err != nil {
		return nil, err
	}
	r.rotation = diff(end, after)
	return r, nil
}

// watchBehind follows the mesh's meshed pods; behind says when the last
// one without root went away (its replacements hold it), and how many pods
// were seen in all.
func watchBehind(ctx context.Context, c client.WithWatch, root string) (behind func() (time.Time, int), err error) {
	w, err := c.Watch(ctx, &corev1.PodList{}, client.MatchingLabels{localcp.ControlPlaneNSLabel: controlPlane})
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	without := map[string]bool{}
	seen := map[string]bool{}
	var last time.Time
	go func() {
		defer w.Stop()
		for ev := range w.ResultChan() {
			pod, ok := ev.Object.(*corev1.Pod)
			if !ok {
				continue
			}
			key := pod.Namespace + "/" + pod.Name
			p, _ := podtrust.Of(pod)
			if p.Component != "" {
				continue // the control plane's proxies read the roots when they start; restarted first anyway
			}
			mu.Lock()
			seen[key] = true
			had := len(without) > 0
			if ev.Type == watch.Deleted || !p.Live() || slices.Contains(p.Inline, root) {
				delete(without, key)
			} else {
				without[key] = true
			}
			if had && len(without) == 0 {
				last = time.Now()
			}
			mu.Unlock()
		}
	}()
	return func() (time.Time, int) {
		mu.Lock()
		defer mu.Unlock()
		return last, len(seen)
	}, nil
}

// requests is the issuer's client-go rest_client_requests_total, by verb.
func requests(ctx context.Context, cp *localcp.ControlPlane) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+cp.IssuerMetricsAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(raw))
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, m := range families["rest_client_requests_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" {
				out[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	return out, nil
}

func diff(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

func (r *result) print(workloads, replicas, concurrent int) {
	fmt.Printf("\nA rotation of %d meshed pods in %d Deployments (+ Linkerd's control plane), restarts on, %d at once:\n\n", workloads*replicas, workloads, concurrent)
	fmt.Println("| measure | value |")
	fmt.Println("|---|---|")
	fmt.Printf("| pods seen during the rotation (old and re-created) | %d |\n", r.pods)
	fmt.Printf("| rotation start to the switch (all restarts) | %s |\n", r.propagated.Round(time.Second))
	fmt.Printf("| rotation start to Stable (drain shortened to 10 s) | %s |\n", r.toEnd.Round(time.Second))
	if !r.lastPodGone.IsZero() {
		fmt.Printf("| last meshed pod without the new root gone → issuer seen signing under it | %s |\n", r.switchObserved.Sub(r.lastPodGone).Round(10*time.Millisecond))
	}
	fmt.Printf("| issuer RSS before → peak during the rotation | %d MiB → %d MiB (**%+.1f MiB**) |\n", r.rss0>>20, r.rssPeak>>20, float64(r.rssPeak-r.rss0)/(1<<20))
	verbs := make([]string, 0, len(r.rotation))
	for v := range r.rotation {
		verbs = append(verbs, v)
	}
	sort.Strings(verbs)
	total, idle := 0.0, 0.0
	for _, v := range verbs {
		rate := r.idle[v] / r.idleFor.Seconds()
		fmt.Printf("| issuer API requests, %s | %.0f (idle rate × duration: %.0f) |\n", v, r.rotation[v], rate*r.toEnd.Seconds())
		total += r.rotation[v]
		idle += rate * r.toEnd.Seconds()
	}
	fmt.Printf("| issuer API requests, all | **%.0f**, of which %.0f at the idle rate (lease renewals) |\n", total, idle)
}
