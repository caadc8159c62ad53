package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"

	"github.com/linkerd-ca-issuer/linkerd-ca-issuer/internal/testing/localcp"
)

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

// apiCalls is the API server's count of requests so far, by verb and
// resource (its apiserver_request_total): writes, GETs and LISTs; a
// watch is one long request, not a call per object.
func apiCalls(ctx context.Context, cp *localcp.ControlPlane) (map[string]float64, error) {
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
		case "POST", "PUT", "PATCH", "APPLY", "DELETE", "GET", "LIST":
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
