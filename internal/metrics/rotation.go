package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// Phases are the rotation phases, each a series of the phase gauge.
var Phases = []string{"Stable", "Propagating", "Held", "Switching", "Draining"}

var (
	rotationPhase = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linkerd_ca_issuer_rotation_phase",
		Help: "1 for the phase the issuer's trust anchor rotation is in, 0 for the others.",
	}, []string{"issuer_kind", "issuer", "phase"})

	rotationDeadline = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linkerd_ca_issuer_rotation_deadline_timestamp_seconds",
		Help: "When the identity issuer in place expires while a rotation waits for pods (Unix seconds); 0 when no rotation waits.",
	}, []string{"issuer_kind", "issuer"})

	restarts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "linkerd_ca_issuer_rotation_restarts_total",
		Help: "Workloads the rotation restarted (rollout restarts) for a new root.",
	}, []string{"issuer_kind", "issuer"})

	podsBehind = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "linkerd_ca_issuer_rotation_pods_behind",
		Help: "Meshed and control-plane pods that do not hold the root being rolled out yet.",
	}, []string{"issuer_kind", "issuer"})
)

func init() {
	ctrlmetrics.Registry.MustRegister(rotationPhase, podsBehind, rotationDeadline, restarts)
}

// SetRotation records where an issuer's rotation stands; deadline is zero
// when no rotation waits for pods.
func SetRotation(kind, issuer, phase string, behind int, deadline time.Time) {
	d := 0.0
	if !deadline.IsZero() {
		d = float64(deadline.Unix())
	}
	rotationDeadline.WithLabelValues(kind, issuer).Set(d)
	for _, p := range Phases {
		v := 0.0
		if p == phase {
			v = 1
		}
		rotationPhase.WithLabelValues(kind, issuer, p).Set(v)
	}
	podsBehind.WithLabelValues(kind, issuer).Set(float64(behind))
}

func forgetRotation(labels prometheus.Labels) {
	rotationPhase.DeletePartialMatch(labels)
	podsBehind.DeletePartialMatch(labels)
	rotationDeadline.DeletePartialMatch(labels)
	restarts.DeletePartialMatch(labels)
}

// Restarted counts a workload the rotation restarted.
func Restarted(kind, issuer string) {
	restarts.WithLabelValues(kind, issuer).Inc()
}
